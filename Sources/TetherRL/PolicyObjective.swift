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
    /// bounds w_t: AReaL masks tokens whose weight exceeds it; `.truncate` clips the weight instead
    /// (Yao et al. 2025's truncated importance sampling on top of PPO).
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

/// What to do with a behaviour importance weight above the cap.
public enum BehaviourWeightCapMode: String, Sendable, Codable {
    /// Drop the token from the loss (weight 0), as AReaL does.
    case mask
    /// Use the cap as the weight (truncated importance sampling).
    case truncate
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
