import Foundation

/// `trainer_state.json`: what a resumed run needs beyond the weights and optimizer moments — the
/// step reached, the schedule and optimizer hyper-parameters it ran with, the data position and
/// RNG seed, the policy version (RL runs), and the last logged figures.
public struct TrainerState: Codable, Equatable, Sendable {
    /// The schema of this file; bumped when a field changes meaning.
    public var formatVersion: Int = 1
    /// Which trainer wrote it: "sft", "reward-model", "grpo", "ppo", ….
    public var trainer: String
    /// Optimizer steps completed.
    public var step: Int
    public var totalSteps: Int?
    /// Learner policy version (RL); equals `step` unless the run started from another checkpoint.
    public var policyVersion: Int?
    public var seed: UInt64?
    /// Examples (or prompts) consumed so far, so a resumed run continues the same data order.
    public var examplesSeen: Int?
    public var optimizer: AdamWSettings?
    public var schedule: LearningRateSchedule?
    /// Last logged figures (loss, held-out loss, reward, …), by name.
    public var metrics: [String: Double]

    public init(trainer: String, step: Int, totalSteps: Int? = nil, policyVersion: Int? = nil, seed: UInt64? = nil,
                examplesSeen: Int? = nil, optimizer: AdamWSettings? = nil, schedule: LearningRateSchedule? = nil,
                metrics: [String: Double] = [:]) {
        self.trainer = trainer
        self.step = step
        self.totalSteps = totalSteps
        self.policyVersion = policyVersion
        self.seed = seed
        self.examplesSeen = examplesSeen
        self.optimizer = optimizer
        self.schedule = schedule
        self.metrics = metrics
    }

    /// AdamW hyper-parameters (Loshchilov & Hutter, "Decoupled Weight Decay Regularization").
    public struct AdamWSettings: Codable, Equatable, Sendable {
        public var learningRate: Double
        public var beta1: Double
        public var beta2: Double
        public var epsilon: Double
        public var weightDecay: Double
        public init(learningRate: Double, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
        enum CodingKeys: String, CodingKey {
            case learningRate = "learning_rate", beta1, beta2, epsilon, weightDecay = "weight_decay"
        }
    }

    /// Linear warm-up to `peak` over `warmupSteps`, then cosine decay to `minimum` at `totalSteps`.
    public struct LearningRateSchedule: Codable, Equatable, Sendable {
        public var kind: String
        public var peak: Double
        public var minimum: Double
        public var warmupSteps: Int
        public var totalSteps: Int
        public init(kind: String = "warmup-cosine", peak: Double, minimum: Double, warmupSteps: Int, totalSteps: Int) {
            self.kind = kind
            self.peak = peak
            self.minimum = minimum
            self.warmupSteps = warmupSteps
            self.totalSteps = totalSteps
        }
        enum CodingKeys: String, CodingKey {
            case kind, peak, minimum, warmupSteps = "warmup_steps", totalSteps = "total_steps"
        }
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", trainer, step, totalSteps = "total_steps", policyVersion = "policy_version"
        case seed, examplesSeen = "examples_seen", optimizer, schedule, metrics
    }

    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        var d = try e.encode(self)
        d.append(UInt8(ascii: "\n"))
        return d
    }

    public init(jsonData: Data, path: String = "trainer_state.json") throws {
        do { self = try JSONDecoder().decode(TrainerState.self, from: jsonData) } catch {
            throw ModelError.corruptFile(path: path, detail: "not a Tether trainer state: \(error)")
        }
        guard formatVersion == 1 else {
            throw ModelError.corruptFile(path: path, detail: "format_version \(formatVersion) is newer than this Tether reads (1)")
        }
    }
}

/// What `optimizer.safetensors` is written from: AdamW's step and its first and second moment
/// estimates (m, v of Kingma & Ba, Algorithm 1) in the parameter layout, lent for the duration of
/// the write. A live optimizer lends its own buffers, so a checkpoint streams them to the file
/// instead of copying ~2 × 4 bytes per parameter into arrays first.
public protocol OptimizerMoments {
    var step: Int { get }
    func withMoments<R>(_ body: (_ first: UnsafeBufferPointer<Float>, _ second: UnsafeBufferPointer<Float>) throws -> R) rethrows -> R
}

extension OptimizerMoments {
    /// `optimizer.safetensors`: tensors `exp_avg.<param>` and `exp_avg_sq.<param>` (the names
    /// PyTorch's AdamW uses for m and v) shaped like the parameter, and `step` in the metadata.
    func write(layout: ParameterLayout, to path: String) throws {
        try withMoments { m, v in
            try SafeTensorsWriter.write(
                LlamaCheckpoint.tensors(layout, m, prefix: OptimizerState.firstPrefix)
                    + LlamaCheckpoint.tensors(layout, v, prefix: OptimizerState.secondPrefix),
                metadata: ["optimizer": "adamw", "step": String(step)], to: path)
        }
    }
}

/// AdamW's state read back from `optimizer.safetensors` (see `OptimizerMoments`), owned, for
/// resuming: the moments and the step count t that their bias correction needs.
public struct OptimizerState: OptimizerMoments, Equatable, Sendable {
    public var step: Int
    public var firstMoment: [Float]
    public var secondMoment: [Float]

    public init(step: Int, firstMoment: [Float], secondMoment: [Float]) {
        self.step = step
        self.firstMoment = firstMoment
        self.secondMoment = secondMoment
    }

    static let firstPrefix = "exp_avg."
    static let secondPrefix = "exp_avg_sq."

    public func withMoments<R>(_ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try firstMoment.withUnsafeBufferPointer { m in try secondMoment.withUnsafeBufferPointer { v in try body(m, v) } }
    }

    static func read(path: String, layout: ParameterLayout) throws -> OptimizerState {
        let file = try SafeTensorsFile.open(path: path)
        guard let s = file.metadata["step"], let step = Int(s), step >= 0 else {
            throw ModelError.corruptFile(path: path, detail: "__metadata__ has no non-negative integer \"step\"")
        }
        for name in file.tensorNames {
            let param = name.hasPrefix(secondPrefix) ? name.dropFirst(secondPrefix.count)
                : name.hasPrefix(firstPrefix) ? name.dropFirst(firstPrefix.count) : nil
            guard let param, layout.contains(String(param)) else { throw ModelError.unexpectedTensor(name: name, file: path) }
        }
        return OptimizerState(step: step,
                              firstMoment: try LlamaCheckpoint.fillLayout(file, layout: layout, prefix: firstPrefix),
                              secondMoment: try LlamaCheckpoint.fillLayout(file, layout: layout, prefix: secondPrefix))
    }
}
