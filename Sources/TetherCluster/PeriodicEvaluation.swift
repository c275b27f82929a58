import Foundation
import TetherModel
import TetherRewards

/// Held-out accuracy measured during a run, every `run.eval_every_steps` versions and at the last:
/// greedy (the policy's mode) and sampled at temperature 1 (what the policy does when it samples,
/// the quantity GRPO raises; pass@1 over `run.eval_samples` samples per problem), on
/// `run.eval_prompts` problems of the held-out split, which no training prompt can be.
///
/// It costs generation time on whoever runs it: the cluster learner runs it on its step thread
/// between two updates, so the next update waits for it (the actors keep sampling within the
/// staleness budget meanwhile). Hence a bounded number of problems and samples, set in config.
public struct PeriodicEvaluation: Sendable {
    public let prompts: [TaskPrompt]
    public let everySteps: Int
    public let samples: Int
    public let maxNewTokens: Int
    /// The sampled pass draws the same random numbers at every evaluation (common random numbers),
    /// so differences between versions are the policy's, not the sampler's.
    public let seed: UInt64
    /// What scores the completions (`RunTask.evaluationScorer`); nil: the task's verifier.
    public let scorer: (any Verifier)?

    public struct Result: Sendable {
        public var version: Int
        public var greedy: PolicyEvaluation
        public var sampled: PolicyEvaluation?
        public var seconds: Double

        /// metrics.jsonl / TensorBoard scalars; `eval/accuracy` is the greedy accuracy, as
        /// `tether train` has always written it.
        public var scalars: [String: Double] {
            typealias K = MetricsRecord.Key
            var s: [String: Double] = [K.version: Double(version), K.evalAccuracy: greedy.accuracy,
                                       "eval/mean_reward": greedy.meanReward, "eval/prompts": Double(greedy.n), "eval/seconds": seconds]
            if let sampled { s[K.evalSampledAccuracy] = sampled.accuracy }
            return s
        }

        public var summary: String {
            var text = String(format: "held-out accuracy at version %d: greedy %.3f", version, greedy.accuracy)
            if let sampled { text += String(format: ", sampled (T = %g, %d per problem) %.3f", sampled.temperature, sampled.samples, sampled.accuracy) }
            return text + String(format: " (%d problems, %.1f s)", greedy.n, seconds)
        }
    }

    /// The `run.eval_*` settings on `heldOut` (`RunTask.heldOutPrompts(count: run.eval_prompts)`); every
    /// `everySteps` versions instead of `run.eval_every_steps` when given. Nil when the cadence is 0
    /// or there are no held-out prompts. `scorer`: `RunTask.evaluationScorer(config:)`.
    public init?(config: RunConfig, heldOut: [TaskPrompt], everySteps: Int? = nil, scorer: (any Verifier)? = nil) {
        let r = config.run
        let every = everySteps ?? r.evalEverySteps
        guard every > 0, !heldOut.isEmpty else { return nil }
        prompts = heldOut
        self.everySteps = every
        samples = r.evalSamples
        maxNewTokens = config.rollout.maxNewTokens
        seed = UInt64(truncatingIfNeeded: r.seed) ^ 0xE7A1_5EED
        self.scorer = scorer
    }

    public func isDue(version: Int, totalSteps: Int) -> Bool {
        version % everySteps == 0 || version == totalSteps
    }

    /// Greedy, then `samples` per problem at temperature 1, through `RunTask.evaluate` (the one
    /// evaluator: prompts framed and answers scored as in training).
    public func run(version: Int, model: LlamaModel, task: RunTask) throws -> Result {
        let start = Date()
        let greedy = try task.evaluate(model: model, prompts: prompts, maxNewTokens: maxNewTokens, seed: seed, scorer: scorer)
        let sampled = samples > 0
            ? try task.evaluate(model: model, prompts: prompts, samples: samples, temperature: 1, maxNewTokens: maxNewTokens, seed: seed,
                                scorer: scorer)
            : nil
        return Result(version: version, greedy: greedy, sampled: sampled, seconds: Date().timeIntervalSince(start))
    }
}
