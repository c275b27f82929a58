/// What one `PolicyUpdate.step` did: the one set of numbers every driver reports (the cluster
/// learner's and `tether train`'s metrics.jsonl, TensorBoard and progress lines, `tether bench
/// model`). Per-optimizer-step quantities are means over the step's `optimizerSteps` updates.
public struct PolicyUpdateMetrics: Sendable {
    /// Sequence rewards: mean and population standard deviation.
    public var rewardMean = 0.0
    public var rewardStd = 0.0
    /// Fraction of the sequences the scorer marked correct (nil when it never says).
    public var accuracy: Double?
    /// Mean per-token KL(π_θ ‖ π_ref) by the configured estimator (nil without a reference).
    public var kl: Double?
    /// k3 estimate of KL(π_old ‖ π_θ), π_old the policy the clip is centred on (CleanRL's `approx_kl`).
    public var approxKL = 0.0
    /// k3 estimate of KL(π_behav ‖ π_θ) over the batch's tokens: the behaviour–current mismatch
    /// that staleness (and sampler/learner numerics) create, whatever the correction.
    public var mismatchKL = 0.0
    /// Fractions of tokens a behaviour-weight rule dropped (AReaL's cap, masked IS) or truncated
    /// (token or sequence truncated IS); `clipFraction` is PPO's clip.
    public var maskedFraction = 0.0
    public var truncatedFraction = 0.0
    /// Mean per-token entropy of π_θ at the sampled tokens' positions.
    public var entropy = 0.0
    public var clipFraction = 0.0
    /// Kish effective sample size of the importance weights as a fraction of the tokens, (Σw)²/(nΣw²):
    /// 1 when on-policy.
    public var effectiveSampleFraction = 1.0
    /// Mean completion length in tokens.
    public var responseLength = 0.0
    /// Fraction of groups whose rewards were all equal (no signal for the group estimators; nil for PPO).
    public var zeroAdvantageGroupFraction: Double?
    /// The policy loss (surrogate + KL + entropy terms).
    public var loss = 0.0
    /// PPO's clipped value loss (nil without a critic).
    public var valueLoss: Double?
    /// Global gradient norm before clipping.
    public var gradientNorm = 0.0
    public var learningRate = 0.0
    /// Prompt + completion tokens of the batch (each epoch runs them forward and backward again;
    /// `learnerTokensPerSecond` counts them once, as `tether bench model` and the peers do).
    public var tokens = 0
    public var completionTokens = 0
    public var sequences = 0
    public var optimizerSteps = 0
    /// Sequences whose reference log-probs arrived precomputed, sparing the update a forward.
    public var precomputedReferenceSamples = 0
    /// Wall time of the update; `rolloutSeconds` is the sampling and scoring before it when the
    /// same process did both (`RLTrainer`), else 0.
    public var seconds = 0.0
    public var rolloutSeconds = 0.0
    /// Where `seconds` went: the reference forward run by the update itself (0 when every
    /// sequence's π_ref came precomputed), the policy's forwards (LM head and loss included), its
    /// backwards, and the gradient clipping plus optimizer step; the rest of `seconds` is
    /// bookkeeping (advantages, gathers, metrics).
    public var referenceSeconds = 0.0
    public var forwardSeconds = 0.0
    public var backwardSeconds = 0.0
    public var optimizerSeconds = 0.0

    public init() {}

    public var learnerTokensPerSecond: Double { Double(tokens) / max(seconds, 1e-9) }
    public var rolloutTokensPerSecond: Double { Double(completionTokens) / max(rolloutSeconds, 1e-9) }
}
