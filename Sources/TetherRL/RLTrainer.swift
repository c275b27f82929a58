import Foundation
import TetherKernels
import TetherModel

/// Scores completion `completion` (sampled tokens, `<eos>` included when sampled) of prompt `index`
/// of the batch. Throwing stops the step before any update: a reward that cannot be trusted
/// (NaN, a broken verifier) is never trained on.
public typealias RLScorer = (_ promptIndex: Int, _ completion: [Int]) throws -> RLScore

/// The single-process RL trainer: for each step, sample G completions for each of P prompts with
/// the KV cache, score them, compute advantages (`RLObjective.prepare`), then take
/// `epochsPerBatch × minibatches` AdamW steps on `RLObjective.evaluate`'s loss through the
/// model's `sequenceLogProbs` / `backward(dLogProbs:dEntropy:)`. On-policy and synchronous: the
/// behaviour policy of a batch is the policy at the start of its step, so the objective is PPO's
/// clipped ratio to it (GRPO, DeepSeekMath §4.1; PPO, Schulman et al. 2017).
///
/// I/O free: prompts come in, metrics go out; checkpoints are the caller's (`state`/`restore`).
public final class RLTrainer {
    public let policy: LlamaModel
    /// The frozen reference of the KL term (nil when β = 0).
    public let reference: LlamaModel?
    /// PPO's value model (nil for the group estimators).
    public let critic: ScalarHeadModel?
    public let optimizer: AdamW
    public let criticOptimizer: AdamW?
    private let criticHeadOptimizer: AdamW?
    public let options: RLTrainerOptions
    public let padToken: Int
    /// Completed steps (= policy version).
    public private(set) var step = 0

    public init(policy: LlamaModel, reference: LlamaModel?, critic: ScalarHeadModel? = nil, options: RLTrainerOptions,
                padToken: Int = 0) throws {
        let needsReference = (options.algorithm.kl?.beta ?? 0) != 0
        if needsReference && reference == nil { throw RLError.missingInput(name: "a reference model", neededBy: "the KL penalty") }
        if options.algorithm.algorithm == .ppo && critic == nil { throw RLError.missingInput(name: "a critic", neededBy: "PPO") }
        if let reference, reference.config != policy.config {
            throw RLError.invalidArgument("the reference model's configuration differs from the policy's")
        }
        self.policy = policy
        self.reference = needsReference ? reference : nil
        self.critic = options.algorithm.algorithm == .ppo ? critic : nil
        self.options = options
        self.padToken = padToken
        optimizer = AdamW(layout: policy.layout, hyperparameters: options.adamW)
        if let c = self.critic {
            criticOptimizer = AdamW(layout: c.backbone.layout, hyperparameters: options.adamW)
            criticHeadOptimizer = AdamW(parameterCount: c.head.count, hyperparameters: options.adamW)
        } else {
            criticOptimizer = nil
            criticHeadOptimizer = nil
        }
    }

    /// Continues from a checkpoint: the step count and the AdamW moments.
    public func restore(step: Int, optimizerState: OptimizerState?) throws {
        self.step = step
        if let s = optimizerState { try optimizer.restore(step: s.step, firstMoment: s.firstMoment, secondMoment: s.secondMoment) }
    }

    public func optimizerState() -> OptimizerState {
        OptimizerState(step: optimizer.step, firstMoment: optimizer.firstMoment.toArray(), secondMoment: optimizer.secondMoment.toArray())
    }

    /// The sampling seed of a step: a pure function of the run seed and the step, so a resumed run
    /// draws what the uninterrupted run would have.
    public func samplingSeed(step: Int) -> UInt64 { options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(step) &* 0xBF58_476D_1CE4_E5B9 }

    // MARK: The step

    /// Samples and scores G completions for each prompt, then updates the policy on them.
    public func step(prompts: [RLPrompt], scorer: RLScorer) throws -> RLStepMetrics {
        let t0 = Date()
        let (batch, correct) = try rollout(prompts: prompts, scorer: scorer)
        let t1 = Date()
        var m = try update(on: batch, promptCount: prompts.count)
        let t2 = Date()
        m.rolloutSeconds = t1.timeIntervalSince(t0)
        m.updateSeconds = t2.timeIntervalSince(t1)
        let known = correct.compactMap { $0 }
        m.accuracy = known.isEmpty ? nil : Double(known.filter { $0 }.count) / Double(known.count)
        return m
    }

    /// Samples the batch (KV-cache generate from the current policy) and scores it. Behaviour
    /// log-probs are the sampler's untruncated temperature-1 log-probs, what the learner's forward
    /// recomputes, so the first update's ratio is 1.
    public func rollout(prompts: [RLPrompt], scorer: RLScorer) throws -> (batch: RolloutBatch, correct: [Bool?]) {
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
        let batch = try RolloutBatch(promptTokens: flat, completionTokens: completions.map(\.tokens),
                                     behaviourLogProbs: completions.flatMap(\.rawLogProbs), rewards: rewards, groupIDs: groupIDs,
                                     policyVersions: Array(repeating: step, count: flat.count))
        return (batch, correct)
    }

    /// Advantages once, then `epochsPerBatch × minibatches` optimizer steps; `step` advances by one.
    public func update(on batch: RolloutBatch, promptCount: Int) throws -> RLStepMetrics {
        let config = options.algorithm
        let refLogProbs = try reference.map { try completionLogProbs(of: $0, batch) }
        let values = try critic.map { try completionValues(of: $0, batch) }
        let prepared = try RLObjective.prepare(batch, config: config, refLogProbs: refLogProbs, values: values)

        var clip = 0.0, ess = 0.0, loss = 0.0, valueLoss = 0.0, gradNorm = 0.0, updates = 0
        var firstKL: Double?, firstEntropy = 0.0
        let groupsPerMinibatch = promptCount / options.minibatches
        for _ in 0..<options.epochsPerBatch {
            for mb in 0..<options.minibatches {
                let groups = Set((mb * groupsPerMinibatch)..<((mb + 1) * groupsPerMinibatch))
                let indices = batch.groupIDs.indices.filter { groups.contains(batch.groupIDs[$0]) }
                let sub = try RLBatchSlice(batch: batch, prepared: prepared, refLogProbs: refLogProbs, indices: indices)
                policy.zeroGradients()
                critic?.zeroGradients()
                let out = try lossAndGradients(sub.batch, prepared: sub.prepared, refLogProbs: sub.refLogProbs)
                let d = out.policy.diagnostics
                if updates == 0 { firstKL = d.refKL; firstEntropy = d.entropyMean ?? 0 }
                clip += d.clipFraction
                ess += d.effectiveSampleFraction
                loss += Double(out.policy.loss)
                valueLoss += Double(out.value?.loss ?? 0)
                gradNorm += Double(GradientClipping.clipGlobalNorm(policy.gradients, maxNorm: options.maxGradientNorm))
                let lr = options.learningRate
                optimizer.update(parameters: policy.parameters, gradients: policy.gradients, learningRate: lr)
                if let critic, let co = criticOptimizer, let ho = criticHeadOptimizer {
                    GradientClipping.clipGlobalNorm(critic.backbone.gradients, maxNorm: options.maxGradientNorm)
                    GradientClipping.clipGlobalNorm(critic.headGradient, maxNorm: options.maxGradientNorm)
                    co.update(parameters: critic.backbone.parameters, gradients: critic.backbone.gradients, learningRate: lr)
                    ho.update(parameters: critic.head, gradients: critic.headGradient, learningRate: lr)
                }
                updates += 1
            }
        }
        step += 1
        let n = Double(max(updates, 1))
        let r = batch.rewards.map(Double.init)
        let mean = r.reduce(0, +) / Double(r.count)
        let std = (r.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(r.count)).squareRoot()
        var flatGroups = 0
        for g in 0..<promptCount {
            let rs = batch.groupIDs.indices.filter { batch.groupIDs[$0] == g }.map { batch.rewards[$0] }
            if let f = rs.first, rs.allSatisfy({ $0 == f }) { flatGroups += 1 }
        }
        return RLStepMetrics(
            step: step, rewardMean: mean, rewardStd: std, accuracy: nil, kl: firstKL, entropy: firstEntropy,
            clipFraction: clip / n, effectiveSampleFraction: ess / n,
            responseLength: Double(batch.layout.tokenCount) / Double(batch.sequenceCount),
            zeroAdvantageGroupFraction: Double(flatGroups) / Double(max(promptCount, 1)),
            loss: loss / n, valueLoss: critic == nil ? nil : valueLoss / n, gradientNorm: gradNorm / n,
            learningRate: options.learningRate, sampledTokens: batch.layout.tokenCount, rolloutSeconds: 0, updateSeconds: 0)
    }

    // MARK: Loss through the model

    /// The full loss of `batch` at the current weights, with its gradient ADDED into
    /// `policy.gradients` (and the critic's): policy forward (log-probs, entropy), critic forward
    /// (PPO), `RLObjective.evaluate`, then the backward passes. Public so that tests can check the
    /// gradient against finite differences of `totalLoss`.
    public func lossAndGradients(_ batch: RolloutBatch, prepared: PreparedBatch, refLogProbs: [Float]?,
                                 backward: Bool = true) throws -> RLLossOutput {
        let map = TokenIndexMap(batch)
        let lp = try policy.sequenceLogProbs(map.tokens, entropy: true)
        let logProbs = map.gather(lp.logProbs, rowStride: lp.positions)
        let entropy = map.gather(lp.entropy!, rowStride: lp.positions)
        var values: [Float]? = nil
        var criticTokens: TokenBatch? = nil
        if let critic {
            let tb = map.tokens
            criticTokens = tb
            values = map.gather(try critic.scores(tb), rowStride: tb.length)
        }
        let outputs = PolicyOutputs(logProbs: logProbs, entropy: entropy, refLogProbs: refLogProbs, values: values)
        let out = try RLObjective.evaluate(batch, prepared: prepared, outputs: outputs, config: options.algorithm)
        guard backward else { return out }
        policy.backward(dLogProbs: map.scatter(out.dLogProbs, rowStride: lp.positions, rows: lp.batch),
                        dEntropy: out.dEntropy.map { map.scatter($0, rowStride: lp.positions, rows: lp.batch) })
        if let critic, let v = out.value, let tb = criticTokens {
            let scaled = v.dValues.map { $0 * options.valueCoefficient }
            critic.backward(dScores: map.scatter(scaled, rowStride: tb.length, rows: tb.batch))
        }
        return out
    }

    /// log π(completion token) under `model` for every completion token of `batch`, flat.
    public func completionLogProbs(of model: LlamaModel, _ batch: RolloutBatch) throws -> [Float] {
        let map = TokenIndexMap(batch)
        let lp = try model.sequenceLogProbs(map.tokens)
        return map.gather(lp.logProbs, rowStride: lp.positions)
    }

    /// V(s_t) of the state before each completion token, flat.
    public func completionValues(of critic: ScalarHeadModel, _ batch: RolloutBatch) throws -> [Float] {
        let map = TokenIndexMap(batch)
        return map.gather(try critic.scores(map.tokens), rowStride: map.tokens.length)
    }
}

/// Where each flat completion token of a batch sits in the padded `[batch, T]` token matrix of
/// prompt + completion. Completion token k of sequence s is predicted at position P_s + k − 1
/// (the log-prob row of `sequenceLogProbs`, and the hidden state a critic reads V from).
struct TokenIndexMap {
    let tokens: TokenBatch
    let promptLengths: [Int]
    let layout: SequenceLayout

    init(_ batch: RolloutBatch) {
        tokens = TokenBatch(sequences: zip(batch.promptTokens, batch.completionTokens).map { $0 + $1 })
        promptLengths = batch.promptTokens.map(\.count)
        layout = batch.layout
    }

    func gather(_ perPosition: [Float], rowStride: Int) -> [Float] {
        var out = [Float](repeating: 0, count: layout.tokenCount)
        for s in 0..<layout.sequenceCount {
            let base = s * rowStride + promptLengths[s] - 1
            for (k, t) in layout.range(of: s).enumerated() { out[t] = perPosition[base + k] }
        }
        return out
    }

    func scatter(_ flat: [Float], rowStride: Int, rows: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * rowStride)
        for s in 0..<layout.sequenceCount {
            let base = s * rowStride + promptLengths[s] - 1
            for (k, t) in layout.range(of: s).enumerated() { out[base + k] = flat[t] }
        }
        return out
    }
}

/// The sequences `indices` of a batch with their slices of the per-token arrays (a minibatch).
struct RLBatchSlice {
    let batch: RolloutBatch
    let prepared: PreparedBatch
    let refLogProbs: [Float]?

    init(batch b: RolloutBatch, prepared p: PreparedBatch, refLogProbs ref: [Float]?, indices: [Int]) throws {
        func tokens(_ a: [Float]) -> [Float] { indices.flatMap { Array(a[b.layout.range(of: $0)]) } }
        batch = try RolloutBatch(
            promptTokens: indices.map { b.promptTokens[$0] }, completionTokens: indices.map { b.completionTokens[$0] },
            behaviourLogProbs: tokens(b.behaviourLogProbs), rewards: indices.map { b.rewards[$0] },
            groupIDs: indices.map { b.groupIDs[$0] }, policyVersions: indices.map { b.policyVersions[$0] })
        prepared = PreparedBatch(layout: batch.layout, advantages: tokens(p.advantages), returns: p.returns.map(tokens),
                                 oldValues: p.oldValues.map(tokens), sequenceRewards: indices.map { p.sequenceRewards[$0] },
                                 groups: p.groups)
        refLogProbs = ref.map(tokens)
    }
}
