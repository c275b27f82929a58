import Foundation

/// A behaviour importance weight after a correction rule, and what the rule did to it.
public struct CorrectedWeight: Equatable, Sendable {
    /// The weight the token's surrogate is multiplied by (0 when masked).
    public var weight: Double
    /// The rule dropped the token from the loss.
    public var masked = false
    /// The rule lowered the weight to its cap.
    public var truncated = false

    public init(weight: Double, masked: Bool = false, truncated: Bool = false) {
        self.weight = weight
        self.masked = masked
        self.truncated = truncated
    }
}

/// The rules that bound decoupled PPO's behaviour weight w = π_prox/π_behav (a constant of the
/// loss: no gradient flows through it). Each takes the raw weight(s) and the bound, and returns
/// what multiplies the surrogate. Stale or mismatched samples make w heavy-tailed; each rule trades
/// the estimator's bias for its variance differently.
public enum BehaviourWeight {
    /// AReaL's cap (Fu et al. 2025, "AReaL: A Large-Scale Asynchronous Reinforcement Learning
    /// System for Language Reasoning", §5.2): tokens whose weight exceeds the cap leave the loss,
    ///
    ///     w̃_t = w_t · 1[w_t ≤ C]
    @inline(__always)
    public static func maskedAbove(_ w: Double, cap c: Double) -> CorrectedWeight {
        w > c ? CorrectedWeight(weight: 0, masked: true) : CorrectedWeight(weight: w)
    }

    /// Token-level truncated importance sampling (Ionides 2008, "Truncated Importance Sampling";
    /// Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training"):
    ///
    ///     w̃_t = min(w_t, C)
    @inline(__always)
    public static func truncated(_ w: Double, cap c: Double) -> CorrectedWeight {
        w > c ? CorrectedWeight(weight: c, truncated: true) : CorrectedWeight(weight: w)
    }

    /// Token-level masked importance sampling, two-sided: IcePop (Ling Team 2025, "Every Step
    /// Evolves: Scaling Reinforcement Learning for Trillion-Scale Thinking Model", eq. 4, with
    /// bounds [α, β]) and MIS (Liu, Li et al. 2025, "When Speed Kills Stability: Demystifying RL
    /// Collapse from the Training-Inference Mismatch"). A token the learner and the sampler disagree
    /// on by more than a factor c in either direction is noise, not signal, and is dropped:
    ///
    ///     w̃_t = w_t · 1[1/c ≤ w_t ≤ c],   c > 1
    @inline(__always)
    public static func maskedOutside(_ w: Double, bound c: Double) -> CorrectedWeight {
        w > c || w < 1 / c ? CorrectedWeight(weight: 0, masked: true) : CorrectedWeight(weight: w)
    }

    /// Sequence-level truncated importance sampling (Liu, Li et al. 2025, as above, and the Qwen
    /// team's analysis of the mismatch: the token-level weight is a biased estimator of the
    /// sequence's, the sequence-level one is not, before truncation). One weight per sequence, the
    /// product of its tokens' ratios, truncated and shared by all its tokens:
    ///
    ///     w̃_i = min(exp(Σ_t (log π_prox(y_{i,t}) − log π_behav(y_{i,t}))), C)
    ///
    /// The sum is taken in log space and exponentiated once, so a long sequence's product does not
    /// underflow or overflow before the cap applies (exp of a large sum is +∞, which the cap turns
    /// into C).
    public static func sequenceTruncated(logRatios: ArraySlice<Double>, cap c: Double) -> CorrectedWeight {
        truncated(exp(logRatios.reduce(0, +)), cap: c)
    }
}
