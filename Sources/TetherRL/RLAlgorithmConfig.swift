/// Which advantage estimator a run uses; the policy loss is shared.
public enum RLAlgorithm: String, Sendable, CaseIterable {
    /// Group-normalised advantage (`GRPOAdvantage`).
    case grpo
    /// Mean-centred group advantage with constant-length aggregation (`DrGRPOAdvantage`).
    case drGRPO = "dr_grpo"
    /// Leave-one-out baseline (`RLOOAdvantage`).
    case rloo
    /// GAE over a value model (`GAE`), with the clipped value loss.
    case ppo
}

/// Everything the learner needs to turn a `RolloutBatch` into a loss: estimator, objective,
/// aggregation, KL and entropy terms, and PPO's value-model settings.
public struct RLAlgorithmConfig: Equatable, Sendable {
    public var algorithm: RLAlgorithm
    public var objective: PolicyObjective
    /// Where decoupled PPO's π_prox comes from when a batch takes several optimizer steps.
    public var proximal: ProximalSource
    public var aggregation: LossAggregation
    public var kl: KLPenalty?
    public var entropyCoefficient: Float
    /// GRPO: ε and which std (defaults match the PyTorch peer: 1e-4, unbiased).
    public var grpoEpsilon: Float
    public var grpoStd: RewardStd
    /// PPO: discount, GAE λ, value clip ε, whether to whiten advantages over the batch.
    public var gamma: Float
    public var lambda: Float
    public var valueClip: Float
    public var whitenAdvantages: Bool

    public init(
        algorithm: RLAlgorithm, objective: PolicyObjective = .ppo, proximal: ProximalSource = .forward, aggregation: LossAggregation = .tokenMean,
        kl: KLPenalty? = nil, entropyCoefficient: Float = 0, grpoEpsilon: Float = 1e-4, grpoStd: RewardStd = .unbiased,
        gamma: Float = 1, lambda: Float = 0.95, valueClip: Float = 0.2, whitenAdvantages: Bool = true
    ) {
        self.algorithm = algorithm
        self.objective = objective
        self.proximal = proximal
        self.aggregation = aggregation
        self.kl = kl
        self.entropyCoefficient = entropyCoefficient
        self.grpoEpsilon = grpoEpsilon
        self.grpoStd = grpoStd
        self.gamma = gamma
        self.lambda = lambda
        self.valueClip = valueClip
        self.whitenAdvantages = whitenAdvantages
    }

    /// DESIGN.md's reference learner step and the PyTorch peer: GRPO, ε = 0.2, k3 KL in the loss
    /// with β = 0.04, token-mean over the batch.
    public static let referenceGRPO = RLAlgorithmConfig(algorithm: .grpo, kl: KLPenalty(beta: 0.04, estimator: .k3))

    /// Dr. GRPO: no std division, token sums over a constant generation budget, no KL.
    public static func drGRPO(maxTokens: Int) -> RLAlgorithmConfig {
        RLAlgorithmConfig(algorithm: .drGRPO, aggregation: .seqMeanTokenSumNorm(maxTokens: maxTokens))
    }

    public var policyLossConfig: PolicyLossConfig {
        PolicyLossConfig(objective: objective, aggregation: aggregation, kl: kl, entropyCoefficient: entropyCoefficient)
    }
}
