import Foundation

/// Where decoupled PPO's proximal log-probs log π_prox come from when the batch takes more than
/// one optimizer step (with one step π_prox is π_θ itself and neither is needed).
public enum ProximalSource: String, Sendable, CaseIterable {
    /// A forward pass of the weights before the update over the whole batch: exact, one forward.
    case forward
    /// AReaL's log-linear interpolation by version (`ProximalApproximation`): no forward.
    case loglinear
}

/// The version labels the log-linear approximation interpolates between: π_prox is the learner's
/// weights before the update (version V), π_θ after `step` of the update's `steps` optimizer steps
/// has moved a fraction of the way to V + 1.
public struct ProximalVersions: Equatable, Sendable {
    public var proximal: Double
    public var current: Double

    public init(proximal: Double, current: Double) {
        self.proximal = proximal
        self.current = current
    }

    /// v_p = V and v_θ = V + step/steps.
    public init(learnerVersion: Int, step: Int, steps: Int) {
        proximal = Double(learnerVersion)
        current = Double(learnerVersion) + Double(step) / Double(max(steps, 1))
    }
}

/// AReaL's approximation of the proximal policy's log-probs without its forward pass (Fu et al.
/// 2025, "AReaL: A Large-Scale Asynchronous Reinforcement Learning System for Language
/// Reasoning"; the `prox_logp_method: loglinear` of inclusionAI/AReaL, docs/algorithms/prox_approx.md):
/// if log π moves linearly in the version between the behaviour policy (version v_b) and the
/// current one (v_θ), the proximal policy (v_p) sits at
///
///     log π_prox ≈ log π_behav + α·(log π_θ − log π_behav),   α = clamp((v_p − v_b)/(v_θ − v_b), 0, 1)
///
/// and α = 0 (π_prox = π_behav) when v_θ ≤ v_b. The result is a constant of the loss, like the
/// forward it replaces.
///
/// The version labels differ from AReaL's code by one: AReaL passes v_θ = the trainer's version
/// and v_p = v_θ − 1, so a sample one version stale gets α = 0 (π_prox := π_behav) although the
/// proximal policy is the trainer's current weights. Here v_p = V is the version of the weights
/// before the update, exactly π_prox, and v_θ = V + j/m after j of the update's m optimizer steps
/// (`ProximalVersions`); the first step (j = 0) then gives α = 1 for a stale sample, π_prox = π_θ,
/// which is exact.
public enum ProximalApproximation {
    @inline(__always)
    public static func interpolationWeight(behaviourVersion vb: Double, proximalVersion vp: Double, currentVersion vc: Double) -> Double {
        let span = vc - vb
        guard span > 0 else { return 0 }
        return min(max((vp - vb) / span, 0), 1)
    }

    @inline(__always)
    public static func loglinear(behaviour: Float, current: Float, alpha: Double) -> Float {
        Float(Double(behaviour) + alpha * (Double(current) - Double(behaviour)))
    }

    /// log π_prox of every token of `layout` from the behaviour and current log-probs, each
    /// sequence with its behaviour version.
    public static func loglinear(behaviour: [Float], current: [Float], layout: SequenceLayout,
                                 behaviourVersions: [Int], versions: ProximalVersions) throws -> [Float] {
        try RLError.checkCount("behaviour log-probs", behaviour, layout.tokenCount)
        try RLError.checkCount("current log-probs", current, layout.tokenCount)
        try RLError.checkCount("behaviour versions", behaviourVersions, layout.sequenceCount)
        var out = [Float](repeating: 0, count: layout.tokenCount)
        for s in 0 ..< layout.sequenceCount {
            let alpha = interpolationWeight(behaviourVersion: Double(behaviourVersions[s]), proximalVersion: versions.proximal,
                                            currentVersion: versions.current)
            for t in layout.range(of: s) { out[t] = loglinear(behaviour: behaviour[t], current: current[t], alpha: alpha) }
        }
        return out
    }
}
