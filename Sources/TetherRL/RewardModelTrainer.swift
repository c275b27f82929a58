import Foundation
import TetherKernels
import TetherModel

/// One preference: the same prompt, a preferred and a dispreferred completion, tokenized as
/// `<bos> prompt completion <eos>` (a line `{"prompt","chosen","rejected"}` of a preference JSONL).
public struct PreferencePair: Sendable, Equatable {
    public var chosen: [Int]
    public var rejected: [Int]
    public init(chosen: [Int], rejected: [Int]) {
        self.chosen = chosen
        self.rejected = rejected
    }
}

public struct RewardModelOptions: Sendable, Equatable {
    public var steps: Int
    /// Pairs per step.
    public var batchSize: Int
    public var learningRate: Float
    public var adamW: AdamWHyperparameters
    public var maxGradientNorm: Float
    public var seed: UInt64

    public init(steps: Int = 300, batchSize: Int = 32, learningRate: Float = 1e-3,
                adamW: AdamWHyperparameters = AdamWHyperparameters(weightDecay: 0), maxGradientNorm: Float = 1, seed: UInt64 = 0) {
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.adamW = adamW
        self.maxGradientNorm = maxGradientNorm
        self.seed = seed
    }
}

/// Trains a `ScalarHeadModel` as a reward model with the Bradley–Terry pairwise loss
/// (Bradley & Terry 1952; InstructGPT eq. 1, Ouyang et al. 2022):
///
///     L = −mean log σ(r(x, y_chosen) − r(x, y_rejected))
///
/// with r the head's scalar at the last token. dL/dr_c = −σ(−Δ)/B, dL/dr_r = +σ(−Δ)/B.
public final class RewardModelTrainer {
    public let model: ScalarHeadModel
    public let options: RewardModelOptions
    public let padToken: Int
    private let backboneOptimizer: AdamW
    private let headOptimizer: AdamW
    public private(set) var step = 0

    public init(model: ScalarHeadModel, options: RewardModelOptions, padToken: Int = 0) {
        self.model = model
        self.options = options
        self.padToken = padToken
        backboneOptimizer = AdamW(layout: model.backbone.layout, hyperparameters: options.adamW)
        headOptimizer = AdamW(parameterCount: model.head.count, hyperparameters: options.adamW)
    }

    /// The loss and the fraction of pairs ranked correctly (r_c > r_r); with `backward`, gradients
    /// are added into the model's (zero them first).
    public func loss(_ pairs: [PreferencePair], backward: Bool) throws -> (loss: Double, accuracy: Double) {
        let B = pairs.count
        guard B > 0 else { return (0, 0) }
        let batch = TokenBatch(sequences: pairs.map(\.chosen) + pairs.map(\.rejected), padToken: padToken)
        let s = try model.scores(batch)
        let T = batch.length
        func last(_ row: Int) -> Int { row * T + batch.lengths[row] - 1 }
        var dScores = [Float](repeating: 0, count: s.count)
        var loss = 0.0, correct = 0
        for i in 0..<B {
            let delta = Double(s[last(i)]) - Double(s[last(B + i)])
            // −log σ(Δ) = softplus(−Δ), computed stably.
            loss += delta > 0 ? log1p(exp(-delta)) : -delta + log1p(exp(delta))
            if delta > 0 { correct += 1 }
            let g = 1 / (1 + exp(delta)) / Double(B)  // σ(−Δ)/B
            dScores[last(i)] = Float(-g)
            dScores[last(B + i)] = Float(g)
        }
        if backward { model.backward(dScores: dScores) }
        return (loss / Double(B), Double(correct) / Double(B))
    }

    /// One AdamW step on a batch of pairs; returns the loss and pair accuracy before the update.
    @discardableResult
    public func trainStep(_ pairs: [PreferencePair]) throws -> (loss: Double, accuracy: Double) {
        model.zeroGradients()
        let r = try loss(pairs, backward: true)
        let sq = VectorOps.sumOfSquares(model.backbone.gradients.pointer, model.backbone.gradients.count)
            + VectorOps.sumOfSquares(model.headGradient.pointer, model.headGradient.count)
        let norm = Float(sq.squareRoot())
        if norm > options.maxGradientNorm, norm.isFinite {
            let k = options.maxGradientNorm / (norm + 1e-6)
            VectorOps.scale(model.backbone.gradients.pointer, k, model.backbone.gradients.count)
            VectorOps.scale(model.headGradient.pointer, k, model.headGradient.count)
        }
        backboneOptimizer.update(parameters: model.backbone.parameters, gradients: model.backbone.gradients, learningRate: options.learningRate)
        headOptimizer.update(parameters: model.head, gradients: model.headGradient, learningRate: options.learningRate)
        step += 1
        return r
    }

    /// Pair accuracy and loss over `pairs` without updating, in batches.
    public func evaluate(_ pairs: [PreferencePair]) throws -> (loss: Double, accuracy: Double) {
        var loss = 0.0, acc = 0.0, i = 0
        while i < pairs.count {
            let chunk = Array(pairs[i..<min(pairs.count, i + options.batchSize)])
            let r = try self.loss(chunk, backward: false)
            loss += r.loss * Double(chunk.count)
            acc += r.accuracy * Double(chunk.count)
            i += chunk.count
        }
        let n = Double(max(1, pairs.count))
        return (loss / n, acc / n)
    }

    /// `options.steps` steps over seeded reshuffles of `train`; `progress` gets (step, loss, accuracy).
    public func train(_ train: [PreferencePair], progress: (Int, Double, Double) -> Void = { _, _, _ in }) throws {
        precondition(!train.isEmpty, "reward-model training needs at least one pair")
        var rng = SeededRandom(seed: options.seed, stream: 0xB7)
        var order = train.shuffled(using: &rng)
        var cursor = 0
        for s in 0..<options.steps {
            var batch: [PreferencePair] = []
            while batch.count < min(options.batchSize, train.count) {
                if cursor == order.count { order = train.shuffled(using: &rng); cursor = 0 }
                batch.append(order[cursor]); cursor += 1
            }
            let r = try trainStep(batch)
            progress(s + 1, r.loss, r.accuracy)
        }
    }
}
