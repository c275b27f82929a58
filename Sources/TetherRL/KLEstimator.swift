import Foundation

/// Monte-Carlo estimators of KL(π_θ ‖ π_ref) from one sampled token (Schulman 2020,
/// "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html). With
/// log r = log π_ref(x) − log π_θ(x) and x ~ π_θ:
///
///     k1 = −log r                  unbiased, high variance, can be negative
///     k2 = ½ (log r)²              biased, low variance
///     k3 = (r − 1) − log r         unbiased, low variance, always ≥ 0 (GRPO's choice, DeepSeekMath eq. 4)
public enum KLEstimator: String, Sendable, CaseIterable {
    case k1, k2, k3

    /// The estimate and its derivative with respect to log π_θ(x) (the reference is frozen).
    @inline(__always)
    public func valueAndGradient(logProb: Double, refLogProb: Double) -> (value: Double, dLogProb: Double) {
        let logR = refLogProb - logProb
        switch self {
        case .k1: return (-logR, 1)
        case .k2: return (0.5 * logR * logR, -logR)
        case .k3:
            let r = exp(logR)
            return (r - 1 - logR, 1 - r)
        }
    }
}

/// The KL term to a frozen reference: a loss term (GRPO: β·KL added to the per-token loss, with
/// gradient) or a reward penalty (InstructGPT/PPO: −β·KL folded into the token rewards, no gradient).
public struct KLPenalty: Equatable, Sendable {
    public enum Placement: String, Sendable, Codable { case loss, reward }
    public var beta: Float
    public var estimator: KLEstimator
    public var placement: Placement

    public init(beta: Float, estimator: KLEstimator = .k3, placement: Placement = .loss) {
        self.beta = beta
        self.estimator = estimator
        self.placement = placement
    }
}

/// Folds a KL penalty into rewards (Ouyang et al. 2022, "Training language models to follow
/// instructions with human feedback", eq. 2; Ziegler et al. 2019):
///
///     r'_t = r_t − β · KL_t
///
/// with the log-probs of the *behaviour* policy that sampled the tokens (the penalty is a reward,
/// fixed at rollout time, not differentiated).
public enum KLRewardShaping {
    /// Per-token rewards for GAE: `tokenRewards[t] − β·KL_t`.
    public static func penalizeTokens(
        tokenRewards: [Float], logProbs: [Float], refLogProbs: [Float], beta: Float, estimator: KLEstimator
    ) throws -> [Float] {
        try RLError.checkCount("logProbs", logProbs, tokenRewards.count)
        try RLError.checkCount("refLogProbs", refLogProbs, tokenRewards.count)
        var out = tokenRewards
        for t in out.indices {
            let kl = estimator.valueAndGradient(logProb: Double(logProbs[t]), refLogProb: Double(refLogProbs[t])).value
            out[t] = Float(Double(tokenRewards[t]) - Double(beta) * kl)
        }
        return out
    }

    /// Per-sequence rewards for the group estimators: `score_i − β·Σ_t KL_{i,t}` (the sum of the
    /// token penalties, i.e. the sequence-level KL estimate).
    public static func penalizeSequences(
        scores: [Float], logProbs: [Float], refLogProbs: [Float], layout: SequenceLayout, beta: Float, estimator: KLEstimator
    ) throws -> [Float] {
        try RLError.checkCount("scores", scores, layout.sequenceCount)
        try RLError.checkCount("logProbs", logProbs, layout.tokenCount)
        try RLError.checkCount("refLogProbs", refLogProbs, layout.tokenCount)
        return (0 ..< layout.sequenceCount).map { s in
            var kl = 0.0
            for t in layout.range(of: s) {
                kl += estimator.valueAndGradient(logProb: Double(logProbs[t]), refLogProb: Double(refLogProbs[t])).value
            }
            return Float(Double(scores[s]) - Double(beta) * kl)
        }
    }
}
