import TetherModel

/// Settings of the single-process RL trainer (`RLTrainer`): what to sample, which objective, and
/// how the optimizer walks over each batch. The CLI maps the cluster's `RunConfig` onto this, so a
/// run configured for `tether train` means the same as one for the cluster.
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

    public init(algorithm: RLAlgorithmConfig = .referenceGRPO, groupSize: Int = 8, maxNewTokens: Int = 8,
                sampling: SamplingParameters = SamplingParameters(), epochsPerBatch: Int = 1, minibatches: Int = 1,
                learningRate: Float = 1e-4, adamW: AdamWHyperparameters = AdamWHyperparameters(weightDecay: 0),
                maxGradientNorm: Float = 1, valueCoefficient: Float = 0.5, seed: UInt64 = 0) {
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

/// What one trainer step did, for the metrics file and the progress line.
public struct RLStepMetrics: Sendable {
    public var step: Int
    public var rewardMean: Double
    public var rewardStd: Double
    /// Fraction of completions the scorer marked correct (nil when it never says).
    public var accuracy: Double?
    /// Mean per-token KL(π_θ ‖ π_ref) (k3) before this step's update (nil without a reference).
    public var kl: Double?
    /// Mean per-token entropy of π_θ on the sampled tokens' positions.
    public var entropy: Double
    public var clipFraction: Double
    /// Effective sample size fraction of the importance weights, (Σw)²/(nΣw²): 1 when on-policy.
    public var effectiveSampleFraction: Double
    public var responseLength: Double
    /// Fraction of groups whose rewards were all equal (no GRPO signal).
    public var zeroAdvantageGroupFraction: Double
    public var loss: Double
    public var valueLoss: Double?
    public var gradientNorm: Double
    public var learningRate: Float
    public var sampledTokens: Int
    public var rolloutSeconds: Double
    public var updateSeconds: Double
    public var rolloutTokensPerSecond: Double { Double(sampledTokens) / max(rolloutSeconds, 1e-9) }
}
