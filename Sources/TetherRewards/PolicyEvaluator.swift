import Foundation
import TetherModel

/// Accuracy of a policy on a set of problems, the one schema `tether eval`, `tether train` and the
/// cluster's evaluations print and log. With K samples per problem (greedy: K = 1):
/// `accuracy` is the mean over all n·K samples of correct (the unbiased estimator of pass@1, Chen
/// et al. 2021, eq. 1 with k = 1), `pass_at_k` the fraction of problems with at least one correct
/// sample among their K (eq. 1 with k = n_samples = K, where the estimator is the direct count).
public struct PolicyEvaluation: Codable, Equatable, Sendable {
    public var accuracy: Double
    public var passAtK: Double
    /// Correct samples, of n·samples.
    public var correct: Int
    public var meanReward: Double
    /// Problems evaluated, each once.
    public var n: Int
    public var samples: Int
    public var temperature: Double

    enum CodingKeys: String, CodingKey {
        case accuracy, correct, n, samples, temperature
        case passAtK = "pass_at_k"
        case meanReward = "mean_reward"
    }

    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }
}

public enum PolicyEvaluator {
    /// Decodes sampled tokens up to (not including) `<eos>`.
    public static func text(of completion: [Int], tokenizer: Tokenizer) throws -> String {
        let cut = tokenizer.eosId.flatMap { completion.firstIndex(of: $0) }.map { Array(completion[..<$0]) } ?? completion
        return try tokenizer.decode(cut)
    }

    /// Samples `samples` completions per prompt (greedy when `temperature` is 0) and scores each
    /// with the prompt's verifier (`checkedScore`: a non-finite reward is an error). A completion is
    /// correct when its reward is 1 (the exact-answer verifiers give 1 or 0). `promptTokens` frames
    /// a prompt as training does (default: `Tokenizer.taskPromptIds`, the chat template when the
    /// checkpoint has one).
    public static func evaluate(model: LlamaModel, tokenizer: Tokenizer, prompts: [TaskPrompt],
                                verifier: (TaskPrompt) throws -> any Verifier, samples: Int = 1, temperature: Float = 0,
                                maxNewTokens: Int = 8, seed: UInt64 = 0, batchSize: Int = 64,
                                promptTokens: ((TaskPrompt) throws -> [Int])? = nil) throws -> PolicyEvaluation {
        let k = temperature > 0 ? max(1, samples) : 1
        var correct = 0, solved = 0, reward = 0.0
        let sampling = SamplingParameters(temperature: temperature, eosTokenId: tokenizer.eosId)
        var start = 0
        while start < prompts.count {
            let chunk = Array(prompts[start..<min(prompts.count, start + max(1, batchSize / k))])
            var flat: [[Int]] = []
            for p in chunk {
                let tokens = try promptTokens?(p) ?? tokenizer.taskPromptIds(p.prompt)
                for _ in 0..<k { flat.append(tokens) }
            }
            let completions = try model.generate(prompts: flat, maxNewTokens: maxNewTokens, sampling: sampling,
                                                 seed: seed &+ UInt64(start))
            for (i, p) in chunk.enumerated() {
                let v = try verifier(p)
                var right = 0
                for c in completions[i * k ..< (i + 1) * k] {
                    let b = try v.checkedScore(completion: try text(of: c.tokens, tokenizer: tokenizer), for: p)
                    reward += Double(b.reward)
                    if b.reward >= 1 - 1e-6 { right += 1 }
                }
                correct += right
                if right > 0 { solved += 1 }
            }
            start += chunk.count
        }
        let total = Double(max(1, prompts.count * k))
        return PolicyEvaluation(accuracy: Double(correct) / total, passAtK: Double(solved) / Double(max(1, prompts.count)),
                                correct: correct, meanReward: reward / total, n: prompts.count, samples: k,
                                temperature: Double(temperature))
    }
}
