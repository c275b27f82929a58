import Foundation

/// The per-token policy-gradient surrogate, chosen by the trainer's off-policy correction.
///
/// Notation: π_θ the policy being trained (its log-probs are the differentiated input),
/// π_behav the policy version that sampled the tokens (carried by each trajectory), π_prox the
/// proximal policy (the learner's current weights before this update), Â the advantage.
public enum PolicyObjective: Equatable, Sendable {
    /// PPO's clipped surrogate (Schulman et al. 2017, eq. 7) with DAPO's decoupled clip range
    /// ("clip-higher", Yu et al. 2025 §3.1: ε_high > ε_low leaves room for unlikely tokens to grow):
    ///
    ///     ℓ_t = −min(ρ_t Â_t, clip(ρ_t, 1−ε_low, 1+ε_high) Â_t),   ρ_t = π_θ/π_behav
    ///
    /// Symmetric PPO/GRPO is ε_low = ε_high = 0.2.
    case ppoClip(epsilonLow: Float, epsilonHigh: Float)

    /// AReaL's decoupled PPO objective (Fu et al. 2025, "AReaL: A Large-Scale Asynchronous
    /// Reinforcement Learning System for Language Reasoning", eq. 5; after Hilton et al. 2022):
    ///
    ///     ℓ_t = −w_t · min(r_t Â_t, clip(r_t, 1−ε_low, 1+ε_high) Â_t),
    ///     w_t = sg(π_prox/π_behav),   r_t = π_θ/π_prox
    ///
    /// The behaviour policy appears only in the (constant) importance weight, the trust region is
    /// centred on the proximal policy, so stale samples do not widen the clip. `behaviourWeightCap`
    /// bounds w_t by the rule `capMode` names (`BehaviourWeight`): AReaL masks tokens whose weight
    /// exceeds it, `.truncate` clips the weight (Yao et al. 2025), `.maskOutside` drops tokens
    /// outside [1/C, C] (IcePop / MIS), `.truncateSequence` truncates each sequence's product.
    case decoupledPPO(epsilonLow: Float, epsilonHigh: Float, behaviourWeightCap: Float?, capMode: BehaviourWeightCapMode)

    /// Truncated importance sampling (IMPALA's ρ̄ truncation, Espeholt et al. 2018 eq. 1; Yao et
    /// al. 2025 "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training"):
    ///
    ///     ∇ℓ_t = −min(ρ_t, C) Â_t ∇log π_θ,   ρ_t = π_θ/π_behav
    ///
    /// realised as the potential of that gradient, ℓ_t = −Â_t·ψ(ρ_t) with ψ(ρ) = ρ for ρ ≤ C and
    /// ψ(ρ) = C·(1 + ln(ρ/C)) above (dψ/d log π_θ = min(ρ, C)), so the loss is an honest function
    /// of log π_θ (finite differences agree) rather than a stop-gradient construct. No clip: the cap
    /// bounds the variance of the weight instead; tokens above it still get a gradient.
    case truncatedIS(cap: Float)

    /// GRPO/PPO defaults: symmetric ε = 0.2.
    public static let ppo = PolicyObjective.ppoClip(epsilonLow: 0.2, epsilonHigh: 0.2)
    /// DAPO's clip-higher defaults: ε_low = 0.2, ε_high = 0.28.
    public static let dapo = PolicyObjective.ppoClip(epsilonLow: 0.2, epsilonHigh: 0.28)

    var needsProximal: Bool { if case .decoupledPPO = self { return true } else { return false } }
}

/// Which `BehaviourWeight` rule bounds decoupled PPO's behaviour weight w = π_prox/π_behav.
public enum BehaviourWeightCapMode: String, Sendable, Codable, CaseIterable {
    /// Drop tokens with w > C from the loss (weight 0), as AReaL does.
    case mask
    /// Use min(w, C) as the weight (token-level truncated importance sampling).
    case truncate
    /// Drop tokens with w outside [1/C, C] (token-level masked importance sampling: IcePop, MIS).
    case maskOutside = "mask_outside"
    /// One weight per sequence, min(Π_t w_t, C), shared by its tokens (sequence-level truncated IS).
    case truncateSequence = "truncate_sequence"

    /// log of each token's raw weight from its log π_prox − log π_behav: the token's own, or for the
    /// sequence rule its sequence's sum (the log of the product).
    func rawLogWeights(logRatios: [Double], layout: SequenceLayout) -> [Double] {
        guard self == .truncateSequence else { return logRatios }
        var out = logRatios
        for s in 0 ..< layout.sequenceCount {
            let r = layout.range(of: s)
            let sum = logRatios[r].reduce(0, +)
            for t in r { out[t] = sum }
        }
        return out
    }

    /// The rule applied to every token of `layout` (`logRatios` = log π_prox − log π_behav per
    /// token; no cap: the raw weights).
    func apply(logRatios: [Double], layout: SequenceLayout, cap: Double?) -> [CorrectedWeight] {
        guard let cap else { return rawLogWeights(logRatios: logRatios, layout: layout).map { CorrectedWeight(weight: exp($0)) } }
        switch self {
        case .mask: return logRatios.map { BehaviourWeight.maskedAbove(exp($0), cap: cap) }
        case .truncate: return logRatios.map { BehaviourWeight.truncated(exp($0), cap: cap) }
        case .maskOutside: return logRatios.map { BehaviourWeight.maskedOutside(exp($0), bound: cap) }
        case .truncateSequence:
            var out = [CorrectedWeight](repeating: CorrectedWeight(weight: 1), count: layout.tokenCount)
            for s in 0 ..< layout.sequenceCount {
                let r = layout.range(of: s)
                let w = BehaviourWeight.sequenceTruncated(logRatios: logRatios[r], cap: cap)
                for t in r { out[t] = w }
            }
            return out
        }
    }
}

/// One token's surrogate loss and its derivative with respect to log π_θ.
struct TokenSurrogate {
    var loss: Double
    var dLogProb: Double
    var clippedLow = false
    var clippedHigh = false
}

enum Surrogate {
    /// −min(r Â, clip(r, 1−ε_low, 1+ε_high) Â) with r = exp(logRatio). Where the clipped term is
    /// the minimum and differs from the unclipped one, the loss is flat in θ (gradient 0); else
    /// d(−rÂ)/d log π_θ = −rÂ.
    @inline(__always)
    static func clipped(logRatio: Double, advantage a: Double, epsilonLow: Double, epsilonHigh: Double) -> TokenSurrogate {
        let r = exp(logRatio)
        let unclipped = r * a
        let clippedTerm = min(max(r, 1 - epsilonLow), 1 + epsilonHigh) * a
        if clippedTerm < unclipped {
            return TokenSurrogate(loss: -clippedTerm, dLogProb: 0, clippedLow: r < 1 - epsilonLow, clippedHigh: r > 1 + epsilonHigh)
        }
        return TokenSurrogate(loss: -unclipped, dLogProb: -unclipped)
    }
}
