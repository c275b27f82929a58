import TetherModel

/// Settings of RL training: what to sample, which objective, and how the optimizer walks over each
/// batch (`PolicyUpdate`). One function maps the YAML's `RunConfig` onto this for the cluster
/// learner and `tether train` alike, so a config means the same to both.
public struct RLTrainerOptions: Sendable, Equatable {
    public var algorithm: RLAlgorithmConfig
    /// G: completions sampled per prompt (a group).
    public var groupSize: Int
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Optimizer passes over each batch, and optimizer steps per pass (the groups are split evenly).
    public var epochsPerBatch: Int
    public var minibatches: Int
    public var learningRate: Float
    public var adamW: AdamWHyperparameters
    public var maxGradientNorm: Float
    /// PPO: weight of the value loss, i.e. the critic's gradient scale.
    public var valueCoefficient: Float
    public var seed: UInt64
    /// Rows per forward/backward: bounds the activations the update keeps, whatever the batch
    /// (`PolicyUpdate.microBatches`). With `sharePrompts`, the rows the grouped forward computes
    /// (each group's prompt once, every completion), groups kept whole while they fit; else padded
    /// tokens, sequences × longest.
    public var microBatchTokens: Int
    /// Run each group's shared prompt once in the policy and reference forwards (and the backward),
    /// with every completion attending to it ("Prefix Grouper", 2025): the same log-probs and
    /// gradients as the plain batch (`SharedPromptTests`) for a fraction of the prompt rows.
    public var sharePrompts: Bool

    /// 1024 rows hold a GRPO group of 8 chat-prompted 64-token completions (≈ 560 rows) whole, so
    /// its prompt runs once, and keep a learner step at SmolLM2-135M's shape (64 × 256 tokens)
    /// under 4 GB.
    public static let defaultMicroBatchTokens = 1024

    public init(algorithm: RLAlgorithmConfig = .referenceGRPO, groupSize: Int = 8, maxNewTokens: Int = 8,
                sampling: SamplingParameters = SamplingParameters(), epochsPerBatch: Int = 1, minibatches: Int = 1,
                learningRate: Float = 1e-4, adamW: AdamWHyperparameters = AdamWHyperparameters(weightDecay: 0),
                maxGradientNorm: Float = 1, valueCoefficient: Float = 0.5, seed: UInt64 = 0,
                microBatchTokens: Int = RLTrainerOptions.defaultMicroBatchTokens, sharePrompts: Bool = true) {
        self.algorithm = algorithm
        self.groupSize = groupSize
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.epochsPerBatch = epochsPerBatch
        self.minibatches = minibatches
        self.learningRate = learningRate
        self.adamW = adamW
        self.maxGradientNorm = maxGradientNorm
        self.valueCoefficient = valueCoefficient
        self.seed = seed
        self.microBatchTokens = microBatchTokens
        self.sharePrompts = sharePrompts
    }

    public func validate(promptsPerBatch: Int) throws {
        func fail(_ why: String) -> RLError { .invalidArgument(why) }
        guard groupSize >= 1 else { throw fail("group size must be ≥ 1, got \(groupSize)") }
        guard algorithm.algorithm == .ppo || groupSize >= 2 else {
            throw fail("\(algorithm.algorithm.rawValue) compares completions within a group: group size must be ≥ 2, got \(groupSize)")
        }
        guard maxNewTokens >= 1 else { throw fail("max new tokens must be ≥ 1, got \(maxNewTokens)") }
        guard epochsPerBatch >= 1, minibatches >= 1 else { throw fail("epochs per batch and minibatches must be ≥ 1") }
        guard promptsPerBatch % minibatches == 0 else {
            throw fail("minibatches \(minibatches) must divide the \(promptsPerBatch) prompts of a batch")
        }
        guard learningRate > 0, learningRate.isFinite else { throw fail("learning rate must be > 0, got \(learningRate)") }
        guard microBatchTokens >= 1 else { throw fail("micro-batch tokens must be ≥ 1, got \(microBatchTokens)") }
    }
}

/// One prompt of a batch, already tokenized (`<bos>` and the prompt's characters).
public struct RLPrompt: Sendable, Equatable {
    public var tokens: [Int]
    public init(tokens: [Int]) { self.tokens = tokens }
}

/// A completion's score: the reward the advantages use, and whether it counts as correct (for the
/// accuracy metric; a reward model has no notion of correct and says nil).
public struct RLScore: Sendable, Equatable {
    public var reward: Float
    public var correct: Bool?
    public init(reward: Float, correct: Bool? = nil) {
        self.reward = reward
        self.correct = correct
    }
}
