import Foundation
import TetherKernels
import TetherModel
import TetherRL

/// What one learner update did, for `metrics.jsonl` and the progress line.
public struct PolicyUpdateStatistics: Sendable {
    public var rewardMean = 0.0
    public var rewardStd = 0.0
    /// Share of samples the verifier scored fully correct (reward ≥ 1).
    public var accuracy = 0.0
    public var kl = 0.0
    public var entropy = 0.0
    public var clipFraction = 0.0
    /// Kish effective sample size of the behaviour importance weights, as a fraction of the tokens.
    public var effectiveSampleFraction = 1.0
    public var loss = 0.0
    public var gradNorm = 0.0
    /// Prompt + completion tokens the learner ran forward and backward.
    public var tokens = 0
    public var completionTokens = 0
    /// Samples whose reference log-probs arrived precomputed (`ReferenceScorer`), sparing a forward.
    public var precomputedReferenceSamples = 0
    public var seconds = 0.0
}

/// An update that produced a non-finite loss, gradient or weight. Training on cannot recover (NaN
/// spreads to every weight within a step), so the learner stops without checkpointing or
/// broadcasting these weights: the last committed checkpoint stays the last good one. The usual
/// cause is a step size the model cannot take, so the message names the keys that set it.
public struct NonFiniteUpdate: Error, CustomStringConvertible {
    /// The version this update would have produced (filled in by the learner loop).
    public var version: Int?
    public var quantity: String
    public var learningRate: Float

    public init(version: Int? = nil, quantity: String, learningRate: Float) {
        self.version = version; self.quantity = quantity; self.learningRate = learningRate
    }

    public var description: String {
        let update = version.map { "the update to version \($0)" } ?? "an update"
        return "\(update) produced a non-finite \(quantity); stopping without saving these weights (the last checkpoint is kept). "
            + "Likely cause: learner.learning_rate \(learningRate) too large for this model (also check learner.grad_clip_norm, "
            + "algorithm.kl_beta, algorithm.entropy_coef and staleness.is_cap)"
    }
}

/// The learner's optimizer update on a batch of trajectory groups: TetherRL's `RLObjective`
/// (advantages once per batch, then loss and per-token gradients) around the model's
/// `sequenceLogProbs` / `backward(dLogProbs:dEntropy:)` and AdamW with global-norm clipping.
///
/// Off-policy correction (issue 5, DESIGN.md): `none` is PPO's clip around the behaviour policy;
/// `decoupled` is AReaL's decoupled PPO with the proximal log-probs recomputed by the learner from
/// its weights before this update (Fu et al. 2025, eq. 5), behaviour weights above `is_cap` masked;
/// `truncated_is` is truncated importance sampling with cap `is_cap` (Espeholt et al. 2018).
///
/// Behaviour log-probs are the actor's untruncated temperature-1 log-probs (`Completion.rawLogProbs`),
/// the same distribution the learner's forward computes, so ρ = 1 exactly for an on-policy token.
///
/// Note for later dedup: the single-process trainer (`trainer` branch) has its own RL step; this one
/// exists because that was not available when the cluster runtime was written.
public final class LearnerPolicyUpdate {
    public let model: LlamaModel
    public let reference: LlamaModel?
    public let optimizer: AdamW
    public let algorithm: RLAlgorithmConfig
    public let learningRate: Float
    public let gradClipNorm: Float
    public let epochs: Int
    public let minibatches: Int

    public init(model: LlamaModel, reference: LlamaModel?, config: RunConfig) {
        self.model = model
        self.reference = reference
        let l = config.learner
        optimizer = AdamW(layout: model.layout, hyperparameters: AdamWHyperparameters(
            beta1: Float(l.adamBeta1), beta2: Float(l.adamBeta2), epsilon: Float(l.adamEps), weightDecay: Float(l.weightDecay)))
        algorithm = LearnerPolicyUpdate.algorithmConfig(config)
        learningRate = Float(l.learningRate)
        gradClipNorm = Float(l.gradClipNorm)
        epochs = max(1, config.algorithm.epochsPerBatch)
        minibatches = max(1, config.algorithm.minibatches)
    }

    /// The `algorithm:` and `staleness:` sections as TetherRL's configuration.
    public static func algorithmConfig(_ config: RunConfig) -> RLAlgorithmConfig {
        let a = config.algorithm, s = config.staleness
        let lo = Float(a.clipEpsLow), hi = Float(a.clipEpsHigh), cap = Float(s.isCap)
        let objective: PolicyObjective
        switch s.offPolicyCorrection {
        case .none: objective = .ppoClip(epsilonLow: lo, epsilonHigh: hi)
        case .decoupled: objective = .decoupledPPO(epsilonLow: lo, epsilonHigh: hi, behaviourWeightCap: cap, capMode: .mask)
        case .truncatedIS: objective = .truncatedIS(cap: cap)
        }
        let algorithm: RLAlgorithm = a.name == .ppo ? .rloo : a.name.rl  // ppo is refused by `LearnerLoop` (no value model yet)
        return RLAlgorithmConfig(
            algorithm: algorithm, objective: objective, aggregation: a.lossAggregation.rl(maxNewTokens: config.rollout.maxNewTokens),
            kl: a.klBeta > 0 ? KLPenalty(beta: Float(a.klBeta), estimator: a.klEstimator.rl) : nil,
            entropyCoefficient: Float(a.entropyCoef))
    }

    /// One sequence of a batch: its prompt, sampled completion and what the actor recorded.
    public struct Sample: Sendable {
        public var prompt: [Int]
        public var completion: [Int]
        public var behaviourLogProbs: [Float]
        public var reward: Float
        public var group: Int
        public var version: Int
        /// log π_ref of the completion tokens when already computed (`ReferenceScorer`); nil: the
        /// update computes them itself.
        public var referenceLogProbs: [Float]?
        public init(prompt: [Int], completion: [Int], behaviourLogProbs: [Float], reward: Float, group: Int, version: Int,
                    referenceLogProbs: [Float]? = nil) {
            self.prompt = prompt; self.completion = completion; self.behaviourLogProbs = behaviourLogProbs
            self.reward = reward; self.group = group; self.version = version; self.referenceLogProbs = referenceLogProbs
        }
    }

    /// Trains on `samples` (whole groups): `epochs` passes of `minibatches` optimizer steps.
    public func train(_ samples: [Sample]) throws -> PolicyUpdateStatistics {
        let start = Date()
        var stats = PolicyUpdateStatistics()
        let rewards = samples.map { Double($0.reward) }
        stats.rewardMean = rewards.reduce(0, +) / Double(max(1, rewards.count))
        stats.rewardStd = (rewards.map { ($0 - stats.rewardMean) * ($0 - stats.rewardMean) }.reduce(0, +) / Double(max(1, rewards.count))).squareRoot()
        stats.accuracy = Double(rewards.filter { $0 >= 1 - 1e-6 }.count) / Double(max(1, rewards.count))

        // Minibatches split along groups so every group's advantages see the whole group.
        let groupIDs = Array(Set(samples.map(\.group))).sorted()
        let perMinibatch = (groupIDs.count + minibatches - 1) / minibatches
        let chunks: [[Sample]] = stride(from: 0, to: groupIDs.count, by: max(1, perMinibatch)).map { i in
            let ids = Set(groupIDs[i ..< min(groupIDs.count, i + perMinibatch)])
            return samples.filter { ids.contains($0.group) }
        }
        // π_prox: the weights before this update. With a single step that is the first forward itself.
        let needsSeparateProximal = epochs * chunks.count > 1
        var proximal: [[Float]?] = Array(repeating: nil, count: chunks.count)
        if needsSeparateProximal {
            for (i, chunk) in chunks.enumerated() { proximal[i] = try Self.forward(chunk, model: model, entropy: false).logProbs }
        }
        var steps = 0
        var klSum = 0.0, entSum = 0.0, clipSum = 0.0, essSum = 0.0, lossSum = 0.0, normSum = 0.0
        for _ in 0..<epochs {
            for (i, chunk) in chunks.enumerated() {
                let batch = try RolloutBatch(
                    promptTokens: chunk.map(\.prompt), completionTokens: chunk.map(\.completion),
                    behaviourLogProbs: chunk.flatMap(\.behaviourLogProbs), rewards: chunk.map(\.reward),
                    groupIDs: chunk.map(\.group), policyVersions: chunk.map(\.version))
                let prepared = try RLObjective.prepare(batch, config: algorithm)
                let current = try Self.forward(chunk, model: model, entropy: true)
                var ref: [Float]?
                if algorithm.kl != nil {
                    if chunk.allSatisfy({ $0.referenceLogProbs?.count == $0.completion.count }) {
                        ref = chunk.flatMap { $0.referenceLogProbs! }
                        stats.precomputedReferenceSamples += chunk.count
                    } else {
                        ref = try reference.map { try Self.forward(chunk, model: $0, entropy: false).logProbs }
                    }
                }
                if let bad = current.logProbs.firstIndex(where: { !$0.isFinite }) {
                    throw NonFiniteUpdate(quantity: "log-prob \(bad) of the forward pass (\(current.logProbs[bad]))", learningRate: learningRate)
                }
                let outputs = PolicyOutputs(
                    logProbs: current.logProbs, entropy: algorithm.entropyCoefficient != 0 ? current.entropy : nil,
                    refLogProbs: algorithm.kl != nil ? ref : nil, proximalLogProbs: proximal[i] ?? current.logProbs)
                let result = try RLObjective.evaluate(batch, prepared: prepared, outputs: outputs, config: algorithm)
                model.zeroGradients()
                model.backward(dLogProbs: current.scatter(result.dLogProbs),
                               dEntropy: result.dEntropy.map { current.scatter($0) })
                guard result.totalLoss.isFinite else {
                    throw NonFiniteUpdate(quantity: "loss (\(result.totalLoss))", learningRate: learningRate)
                }
                let norm = GradientClipping.clipGlobalNorm(model.gradients, maxNorm: gradClipNorm)
                guard norm.isFinite else { throw NonFiniteUpdate(quantity: "gradient norm (\(norm))", learningRate: learningRate) }
                optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: learningRate)
                if let bad = model.parameters.buffer.firstIndex(where: { !$0.isFinite }) {
                    throw NonFiniteUpdate(quantity: "weight \(bad) after the optimizer step (\(model.parameters.buffer[bad]))", learningRate: learningRate)
                }
                let d = result.policy.diagnostics
                steps += 1
                klSum += d.refKL ?? d.approxKL
                entSum += current.entropy.isEmpty ? 0 : Double(current.entropy.reduce(0, +)) / Double(current.entropy.count)
                clipSum += d.clipFraction
                essSum += d.effectiveSampleFraction
                lossSum += Double(result.totalLoss)
                normSum += Double(norm)
                stats.tokens += chunk.reduce(0) { $0 + $1.prompt.count + $1.completion.count }
                stats.completionTokens += chunk.reduce(0) { $0 + $1.completion.count }
            }
        }
        let n = Double(max(1, steps))
        stats.kl = klSum / n
        stats.entropy = entSum / n
        stats.clipFraction = clipSum / n
        stats.effectiveSampleFraction = essSum / n
        stats.loss = lossSum / n
        stats.gradNorm = normSum / n
        stats.seconds = Date().timeIntervalSince(start)
        return stats
    }

    /// log π_θ of each sample's completion tokens under the current weights (no gradient kept).
    public func completionLogProbs(_ samples: [Sample]) throws -> [[Float]] {
        try Self.completionLogProbs(samples, model: model)
    }

    /// log π of each sample's completion tokens under `model` (no gradient kept).
    public static func completionLogProbs(_ samples: [Sample], model: LlamaModel) throws -> [[Float]] {
        let g = try forward(samples, model: model, entropy: false)
        var out: [[Float]] = []
        var k = 0
        for s in samples {
            out.append(Array(g.logProbs[k ..< k + s.completion.count]))
            k += s.completion.count
        }
        return out
    }

    /// Per-completion-token log-probs (and entropies) in `SequenceLayout` order, with the map back
    /// to the model's `[batch, T−1]` positions for the backward pass.
    struct Gathered {
        var logProbs: [Float]
        var entropy: [Float]
        var positions: [Int]
        var rows: Int

        func scatter(_ perToken: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: rows)
            for (k, p) in positions.enumerated() { out[p] = perToken[k] }
            return out
        }
    }

    static func forward(_ chunk: [Sample], model: LlamaModel, entropy: Bool) throws -> Gathered {
        let batch = TokenBatch(sequences: chunk.map { $0.prompt + $0.completion })
        let out = try model.sequenceLogProbs(batch, entropy: entropy)
        var g = Gathered(logProbs: [], entropy: [], positions: [], rows: out.logProbs.count)
        for (i, s) in chunk.enumerated() {
            for j in 0..<s.completion.count {
                // Position t predicts token t+1: completion token j sits at index prompt.count + j.
                let p = i * out.positions + s.prompt.count - 1 + j
                g.positions.append(p)
                g.logProbs.append(out.logProbs[p])
                if let e = out.entropy { g.entropy.append(e[p]) }
            }
        }
        return g
    }
}

// The config's names for TetherRL's choices, mapped once for the cluster learner and `tether train`.
extension AlgorithmName {
    public var rl: RLAlgorithm {
        switch self {
        case .grpo: return .grpo
        case .drGRPO: return .drGRPO
        case .rloo: return .rloo
        case .ppo: return .ppo
        }
    }
}

extension KLEstimator {
    public var rl: TetherRL.KLEstimator {
        switch self {
        case .k1: return .k1
        case .k2: return .k2
        case .k3: return .k3
        }
    }
}

extension LossAggregation {
    /// `constant_normalizer` divides by `maxNewTokens` (Dr. GRPO).
    public func rl(maxNewTokens: Int) -> TetherRL.LossAggregation {
        switch self {
        case .tokenMean: return .tokenMean
        case .sequenceMean: return .seqMeanTokenMean
        case .constantNormalizer: return .seqMeanTokenSumNorm(maxTokens: maxNewTokens)
        }
    }
}
