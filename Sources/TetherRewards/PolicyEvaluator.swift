import Foundation
import TetherModel

/// Held-out accuracy of a policy: `accuracy` is pass@1 — with K samples per prompt, the mean over
/// prompts of (correct samples)/K, the unbiased estimator of pass@1 (Chen et al. 2021, eq. 1 with
/// k = 1); with greedy decoding K is 1.
public struct PolicyEvaluation: Codable, Equatable, Sendable {
    public var accuracy: Double
    public var meanReward: Double
    /// Prompts evaluated.
    public var n: Int
    public var samples: Int
    public var temperature: Double

    enum CodingKeys: String, CodingKey {
        case accuracy
        case meanReward = "mean_reward"
        case n, samples, temperature
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
    /// correct when the breakdown says so (`RewardBreakdown.isCorrect`: its `correct` component, else
    /// a reward of at least 1).
    public static func evaluate(model: LlamaModel, tokenizer: Tokenizer, prompts: [TaskPrompt],
                                verifier: (TaskPrompt) throws -> any Verifier, samples: Int = 1, temperature: Float = 0,
                                maxNewTokens: Int = 8, seed: UInt64 = 0, batchSize: Int = 64) throws -> PolicyEvaluation {
        let k = temperature > 0 ? max(1, samples) : 1
        var correct = 0.0, reward = 0.0
        let sampling = SamplingParameters(temperature: temperature, eosTokenId: tokenizer.eosId)
        var start = 0
        while start < prompts.count {
            let chunk = Array(prompts[start..<min(prompts.count, start + max(1, batchSize / k))])
            var flat: [[Int]] = []
            for p in chunk {
                let tokens = try p.promptIds(tokenizer)
                for _ in 0..<k { flat.append(tokens) }
            }
            let completions = try model.generate(prompts: flat, maxNewTokens: maxNewTokens, sampling: sampling,
                                                 seed: seed &+ UInt64(start))
            for (j, c) in completions.enumerated() {
                let p = chunk[j / k]
                let b = try verifier(p).checkedScore(completion: try text(of: c.tokens, tokenizer: tokenizer), for: p)
                reward += Double(b.reward)
                if b.isCorrect { correct += 1 }
            }
            start += chunk.count
        }
        let total = Double(max(1, prompts.count * k))
        return PolicyEvaluation(accuracy: correct / total, meanReward: reward / total, n: prompts.count, samples: k,
                                temperature: Double(temperature))
    }
}
