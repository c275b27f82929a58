import Foundation
import TetherKernels
import TetherModel

/// Settings of a supervised fine-tuning run.
public struct SFTOptions: Sendable, Equatable {
    public var steps: Int
    public var batchSize: Int
    public var learningRate: Float
    /// Floor of the cosine decay (default: a tenth of the peak).
    public var minLearningRate: Float?
    /// Linear warm-up steps (default: 5 % of the steps, at least 1).
    public var warmupSteps: Int?
    public var adamW: AdamWHyperparameters
    public var maxGradientNorm: Float
    /// Steps between held-out evaluations (also evaluated before the first and after the last step).
    public var evaluateEvery: Int
    public var seed: UInt64

    public init(steps: Int = 200, batchSize: Int = 16, learningRate: Float = 3e-3, minLearningRate: Float? = nil,
                warmupSteps: Int? = nil, adamW: AdamWHyperparameters = AdamWHyperparameters(weightDecay: 0.01),
                maxGradientNorm: Float = 1, evaluateEvery: Int = 50, seed: UInt64 = 0) {
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.minLearningRate = minLearningRate
        self.warmupSteps = warmupSteps
        self.adamW = adamW
        self.maxGradientNorm = maxGradientNorm
        self.evaluateEvery = evaluateEvery
        self.seed = seed
    }

    public var schedule: WarmupCosineSchedule {
        WarmupCosineSchedule(peakLearningRate: learningRate, warmupSteps: warmupSteps ?? max(1, steps / 20),
                             totalSteps: steps, minLearningRate: minLearningRate ?? learningRate / 10)
    }
}

/// What the trainer reports after each step (the CLI turns it into a progress line).
public struct SFTProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Double
    public var learningRate: Float
    public var gradientNorm: Float
    /// Tokens (prompt and completion, without padding) through forward and backward per second, averaged over the run.
    public var tokensPerSecond: Double
    public var elapsedSeconds: Double
    public var etaSeconds: Double
    /// Set on the steps where the held-out set was evaluated.
    public var heldOutLoss: Double?
}

/// Why a run cannot continue from a checkpoint's training state.
public struct SFTResumeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = "cannot resume: " + description }
}

public struct SFTSummary: Sendable {
    /// Steps taken in this call (fewer than `options.steps` after a restore).
    public var steps: Int
    public var finalLoss: Double
    public var initialHeldOutLoss: Double?
    public var finalHeldOutLoss: Double?
    public var tokens: Int
    public var seconds: Double
}

/// Supervised fine-tuning: maximise log p(completion, <eos> | <bos>, prompt), i.e. minimise the
/// token-mean cross-entropy over completion tokens only (the prompt is context, not a target),
/// with AdamW, warm-up + cosine learning rate and global-norm gradient clipping.
///
/// The loop is I/O free (progress goes to a callback) so the CLI, the cluster's warm start and the
/// reward-model trainer can share it.
public final class SFTTrainer {
    public let model: LlamaModel
    public let optimizer: AdamW
    public let options: SFTOptions
    public let schedule: WarmupCosineSchedule
    public let padToken: Int
    /// Optimizer steps taken by this trainer and examples consumed, for `trainerState`.
    public private(set) var step = 0
    public private(set) var examplesSeen = 0
    private var lastMetrics: [String: Double] = [:]

    public init(model: LlamaModel, options: SFTOptions, padToken: Int = 0, optimizer: AdamW? = nil) {
        self.model = model
        self.options = options
        self.schedule = options.schedule
        self.padToken = padToken
        self.optimizer = optimizer ?? AdamW(layout: model.layout, hyperparameters: options.adamW)
    }

    /// Splits off a held-out set: `fraction` of the examples (at most `maxHeldOut`), none if fewer
    /// than 10 examples, chosen by a seeded shuffle so the split is reproducible.
    public static func split(_ sequences: [SFTSequence], heldOutFraction fraction: Double = 0.1, maxHeldOut: Int = 256,
                             seed: UInt64 = 0) -> (train: [SFTSequence], heldOut: [SFTSequence]) {
        guard sequences.count >= 10, fraction > 0 else { return (sequences, []) }
        var rng = SeededRandom(seed: seed, stream: 0x5EED)
        let shuffled = sequences.shuffled(using: &rng)
        let n = min(maxHeldOut, max(1, Int(Double(sequences.count) * fraction)))
        return (Array(shuffled[n...]), Array(shuffled[..<n]))
    }

    /// Forward over a batch: the loss, its per-position gradient dLoss/dlogp, and the token count.
    /// sequenceLogProbs position t predicts token t + 1; a target carries loss iff it is in the completion.
    private func forward(_ batch: [SFTSequence]) throws -> (loss: Double, dLogProbs: [Float], tokens: Int) {
        let tb = TokenBatch(sequences: batch.map(\.tokens), padToken: padToken)
        let lp = try model.sequenceLogProbs(tb)
        let T1 = lp.positions
        var dLogProbs = [Float](repeating: 0, count: lp.logProbs.count)
        var targets = 0
        var sum = 0.0
        for (b, s) in batch.enumerated() where s.tokens.count >= 2 {
            for t in max(0, s.completionStart - 1)..<(s.tokens.count - 1) {
                sum -= Double(lp.logProbs[b * T1 + t])
                dLogProbs[b * T1 + t] = 1
                targets += 1
            }
        }
        guard targets > 0 else { return (0, dLogProbs, 0) }
        let scale = -1 / Float(targets)
        for i in dLogProbs.indices where dLogProbs[i] != 0 { dLogProbs[i] = scale }
        return (sum / Double(targets), dLogProbs, batch.reduce(0) { $0 + $1.tokens.count })
    }

    /// One optimizer step on `batch`; returns the batch loss (before the update) and the gradient norm.
    @discardableResult
    public func trainStep(_ batch: [SFTSequence]) throws -> (loss: Double, gradientNorm: Float) {
        let (loss, dLogProbs, _) = try forward(batch)
        model.zeroGradients()
        model.backward(dLogProbs: dLogProbs)
        let norm = GradientClipping.clipGlobalNorm(model.gradients, maxNorm: options.maxGradientNorm)
        optimizer.update(parameters: model.parameters, gradients: model.gradients, learningRate: schedule.learningRate(step: step))
        step += 1
        examplesSeen += batch.count
        return (loss, norm)
    }

    /// Completion-token mean cross-entropy over `sequences` (no update), in batches of `batchSize`.
    public func evaluate(_ sequences: [SFTSequence]) throws -> Double {
        var total = 0.0, count = 0
        var i = 0
        while i < sequences.count {
            let batch = Array(sequences[i..<min(sequences.count, i + options.batchSize)])
            let (loss, _, _) = try forward(batch)
            let n = batch.reduce(0) { $0 + $1.completionTokenCount }
            total += loss * Double(n)
            count += n
            i += batch.count
        }
        return count > 0 ? total / Double(count) : 0
    }

    /// Continues a run from a checkpoint's `trainer_state.json` and `optimizer.safetensors`: the AdamW
    /// moments and step, and the data position, so `train` picks up where the saved run stopped
    /// (with the same data, seed and batch size, the result equals an uninterrupted run).
    public func restore(trainerState: TrainerState, optimizerState: OptimizerState) throws {
        guard trainerState.trainer == "sft" else {
            throw SFTResumeError("the checkpoint's trainer_state.json is from a \(trainerState.trainer) run, not sft")
        }
        if let seed = trainerState.seed, seed != options.seed {
            throw SFTResumeError("the saved run used --seed \(seed), this one \(options.seed); the data order would differ")
        }
        guard optimizerState.step == trainerState.step else {
            throw SFTResumeError("optimizer step \(optimizerState.step) differs from trainer step \(trainerState.step)")
        }
        do { try optimizer.restore(optimizerState) } catch { throw SFTResumeError("\(error)") }
        step = trainerState.step
        examplesSeen = trainerState.examplesSeen ?? 0
    }

    /// Runs optimizer steps until `options.steps` (counting any restored ones) over epochs of
    /// `train` (reshuffled each epoch from the seed), evaluating `heldOut` before, every
    /// `evaluateEvery` steps, and at the end. `stopAt` ends the call early (at that step count) on
    /// the same schedule, as an interrupted run would.
    public func train(_ train: [SFTSequence], heldOut: [SFTSequence] = [], stopAt: Int? = nil,
                      progress: (SFTProgress) -> Void = { _ in }) throws -> SFTSummary {
        precondition(!train.isEmpty, "SFT needs at least one training example")
        let start = Date()
        let initialHeldOut = heldOut.isEmpty ? nil : try evaluate(heldOut)
        var heldOutLoss = initialHeldOut
        var rng = SeededRandom(seed: options.seed, stream: 0xDA7A)
        var order = train.shuffled(using: &rng)
        var cursor = 0, tokens = 0
        func nextExample() -> SFTSequence {
            if cursor == order.count { order = train.shuffled(using: &rng); cursor = 0 }
            cursor += 1
            return order[cursor - 1]
        }
        for _ in 0..<examplesSeen { _ = nextExample() }  // replay the data order of a restored run
        var loss = 0.0
        let firstStep = step
        let lastStep = min(options.steps, stopAt ?? options.steps)
        while step < lastStep {
            let s = step
            var batch: [SFTSequence] = []
            while batch.count < min(options.batchSize, train.count) { batch.append(nextExample()) }
            let lr = schedule.learningRate(step: step)
            let r = try trainStep(batch)
            loss = r.loss
            tokens += batch.reduce(0) { $0 + $1.tokens.count }
            var evaluated: Double?
            if !heldOut.isEmpty, (s + 1) % max(1, options.evaluateEvery) == 0 || s + 1 == lastStep {
                evaluated = try evaluate(heldOut)
                heldOutLoss = evaluated
            }
            let elapsed = Date().timeIntervalSince(start)
            progress(SFTProgress(step: s + 1, totalSteps: options.steps, loss: loss, learningRate: lr, gradientNorm: r.gradientNorm,
                                 tokensPerSecond: Double(tokens) / max(elapsed, 1e-9), elapsedSeconds: elapsed,
                                 etaSeconds: elapsed / Double(s + 1 - firstStep) * Double(lastStep - s - 1), heldOutLoss: evaluated))
        }
        lastMetrics = ["loss": loss]
        if let heldOutLoss { lastMetrics["held_out_loss"] = heldOutLoss }
        return SFTSummary(steps: step - firstStep, finalLoss: loss, initialHeldOutLoss: initialHeldOut, finalHeldOutLoss: heldOutLoss,
                          tokens: tokens, seconds: Date().timeIntervalSince(start))
    }

    /// `trainer_state.json` for a checkpoint written after training.
    public func trainerState() -> TrainerState {
        let h = options.adamW, sch = schedule
        // Through the Float's shortest decimal, so the JSON says 0.9 rather than 0.8999999761581421.
        func d(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }
        return TrainerState(
            trainer: "sft", step: optimizer.step, totalSteps: options.steps, seed: options.seed, examplesSeen: examplesSeen,
            optimizer: .init(learningRate: d(options.learningRate), beta1: d(h.beta1), beta2: d(h.beta2),
                             epsilon: d(h.epsilon), weightDecay: d(h.weightDecay)),
            schedule: .init(peak: d(sch.peakLearningRate), minimum: d(sch.minLearningRate),
                            warmupSteps: sch.warmupSteps, totalSteps: sch.totalSteps),
            metrics: lastMetrics)
    }

    /// AdamW's moments for `optimizer.safetensors`, so a later run can resume; lent, not copied.
    public func optimizerState() -> any OptimizerMoments {
        optimizer
    }
}
