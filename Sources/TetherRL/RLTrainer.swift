import Foundation
import TetherKernels
import TetherModel

/// Scores completion `completion` (sampled tokens, `<eos>` included when sampled) of prompt `index`
/// of the batch. Throwing stops the step before any update: a reward that cannot be trusted
/// (NaN, a broken verifier) is never trained on.
public typealias RLScorer = (_ promptIndex: Int, _ completion: [Int]) throws -> RLScore

/// The single-process RL trainer: each step samples G completions for each of P prompts with the
/// KV cache, scores them, and hands the batch to `PolicyUpdate.step`, the update the cluster
/// learner runs too. On-policy and synchronous: the behaviour policy of a batch is the policy at
/// the start of its step (GRPO, DeepSeekMath §4.1; PPO, Schulman et al. 2017).
///
/// I/O free: prompts come in, metrics go out; checkpoints are the caller's (`state`/`restore`).
public final class RLTrainer {
    public let update: PolicyUpdate
    public let padToken: Int
    /// Completed steps (= policy version).
    public private(set) var step = 0

    public var policy: LlamaModel { update.policy }
    public var reference: LlamaModel? { update.reference }
    public var critic: ScalarHeadModel? { update.critic }
    public var optimizer: AdamW { update.optimizer }
    public var options: RLTrainerOptions { update.options }

    public init(policy: LlamaModel, reference: LlamaModel?, critic: ScalarHeadModel? = nil, options: RLTrainerOptions,
                padToken: Int = 0) throws {
        if (options.algorithm.kl?.beta ?? 0) != 0 && reference == nil {
            throw RLError.missingInput(name: "a reference model", neededBy: "the KL penalty")
        }
        update = try PolicyUpdate(policy: policy, reference: reference, critic: critic, options: options)
        self.padToken = padToken
        policy.prepareDecoding()
    }

    /// Continues from a checkpoint: the step count and the AdamW moments.
    public func restore(step: Int, optimizerState: OptimizerState?) throws {
        self.step = step
        if let s = optimizerState { try optimizer.restore(step: s.step, firstMoment: s.firstMoment, secondMoment: s.secondMoment) }
    }

    /// AdamW's moments for `optimizer.safetensors`; lent, not copied.
    public func optimizerState() -> any OptimizerMoments {
        optimizer
    }

    /// The sampling seed of a step: a pure function of the run seed and the step, so a resumed run
    /// draws what the uninterrupted run would have.
    public func samplingSeed(step: Int) -> UInt64 { options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(step) &* 0xBF58_476D_1CE4_E5B9 }

    // MARK: The step

    /// Samples and scores G completions for each prompt, then updates the policy on them.
    public func step(prompts: [RLPrompt], scorer: RLScorer) throws -> PolicyUpdateMetrics {
        let t0 = Date()
        let batch = try rollout(prompts: prompts, scorer: scorer)
        let rolloutSeconds = Date().timeIntervalSince(t0)
        var m = try update.step(batch)
        step += 1
        m.rolloutSeconds = rolloutSeconds
        return m
    }

    /// Samples the batch (KV-cache generate from the current policy) and scores it. Behaviour
    /// log-probs are the sampler's untruncated temperature-1 log-probs, what the learner's forward
    /// recomputes, so the first update's ratio is 1.
    public func rollout(prompts: [RLPrompt], scorer: RLScorer) throws -> RolloutBatch {
        let G = options.groupSize
        var flat: [[Int]] = []
        var groupIDs: [Int] = []
        for (i, p) in prompts.enumerated() {
            for _ in 0..<G { flat.append(p.tokens); groupIDs.append(i) }
        }
        let completions = try policy.generate(prompts: flat, maxNewTokens: options.maxNewTokens, sampling: options.sampling,
                                              seed: samplingSeed(step: step))
        var rewards: [Float] = [], correct: [Bool?] = []
        for (k, c) in completions.enumerated() {
            let s = try scorer(groupIDs[k], c.tokens)
            guard s.reward.isFinite else { throw RLError.nonFinite(name: "rewards", index: k, value: s.reward) }
            rewards.append(s.reward)
            correct.append(s.correct)
        }
        return try RolloutBatch(promptTokens: flat, completionTokens: completions.map(\.tokens),
                                behaviourLogProbs: completions.flatMap(\.rawLogProbs), rewards: rewards, groupIDs: groupIDs,
                                policyVersions: Array(repeating: step, count: flat.count), correct: correct)
    }
}
