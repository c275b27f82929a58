import Foundation
import TetherModel
import TetherRewards

/// Greedy accuracy on the task's held-out split (problems no training prompt can be, by hash),
/// the before/after figure of `scripts/run-demo`.
public enum HeldOutEvaluation {
    public struct Result: Sendable {
        public var correct: Int
        public var total: Int
        public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
    }

    public static func evaluate(model: LlamaModel, task: ClusterTask, count: Int, maxNewTokens: Int) throws -> Result {
        let prompts = try task.heldOutPrompts(count: count)
        var correct = 0
        let chunk = 64
        for start in stride(from: 0, to: prompts.count, by: chunk) {
            let part = Array(prompts[start ..< min(prompts.count, start + chunk)])
            let tokens = try part.map { try task.promptTokens($0) }
            let completions = try model.generate(
                prompts: tokens, maxNewTokens: maxNewTokens,
                sampling: SamplingParameters(temperature: 0, eosTokenId: task.tokenizer.eosId), seed: 0)
            for (p, c) in zip(part, completions) {
                if try task.score(completionTokens: c.tokens, for: p).isCorrect { correct += 1 }
            }
        }
        return Result(correct: correct, total: prompts.count)
    }
}
