/// Per-token advantages and value targets from a learned value model.
public struct TokenAdvantages: Equatable, Sendable {
    public var advantages: [Float]
    /// Value-model targets R_t = Â_t + V_t (the λ-return).
    public var returns: [Float]
}

/// Generalized advantage estimation (Schulman et al. 2016, "High-Dimensional Continuous Control
/// Using Generalized Advantage Estimation", eq. 16), per completion, backwards in time:
///
///     δ_t = r_t + γ·V_{t+1} − V_t,     Â_t = δ_t + γλ·Â_{t+1},     R_t = Â_t + V_t
///
/// with V_T = 0 and Â_T = 0 after the last token: a completion ends the episode (by `<eos>` or by
/// the length limit; truncated completions are not bootstrapped, as in verl and TRL's PPO).
/// `tokenRewards` is usually the verifier score on the last token, minus a per-token KL penalty
/// when the KL is folded into the reward (`KLRewardShaping`). `values[t]` is V(s_t), the value of
/// the state before token t is emitted.
public enum GAE {
    public static func compute(
        tokenRewards: [Float], values: [Float], layout: SequenceLayout, gamma: Float = 1, lambda: Float = 1
    ) throws -> TokenAdvantages {
        try RLError.checkCount("tokenRewards", tokenRewards, layout.tokenCount)
        try RLError.checkCount("values", values, layout.tokenCount)
        try RLError.checkFinite("tokenRewards", tokenRewards)
        try RLError.checkFinite("values", values)
        let g = Double(gamma), gl = Double(gamma) * Double(lambda)
        var adv = [Float](repeating: 0, count: layout.tokenCount)
        var ret = [Float](repeating: 0, count: layout.tokenCount)
        for s in 0 ..< layout.sequenceCount {
            let r = layout.range(of: s)
            var next = 0.0, nextValue = 0.0
            for t in r.reversed() {
                let v = Double(values[t])
                let delta = Double(tokenRewards[t]) + g * nextValue - v
                next = delta + gl * next
                adv[t] = Float(next)
                ret[t] = Float(next + v)
                nextValue = v
            }
        }
        return TokenAdvantages(advantages: adv, returns: ret)
    }

    /// The token rewards of an outcome-scored completion: the sequence score on its last token,
    /// zero elsewhere (an empty completion carries no token, so no reward).
    public static func outcomeTokenRewards(scores: [Float], layout: SequenceLayout) throws -> [Float] {
        try RLError.checkCount("scores", scores, layout.sequenceCount)
        var out = [Float](repeating: 0, count: layout.tokenCount)
        for s in 0 ..< layout.sequenceCount where layout.lengths[s] > 0 { out[layout.range(of: s).upperBound - 1] = scores[s] }
        return out
    }
}

/// Advantage whitening over a batch, as PPO implementations do before the policy loss (Schulman
/// et al. 2017's baselines; verl's `masked_whiten`):
///
///     Â'_t = (Â_t − mean(Â)) / √(var(Â) + 1e-8)
///
/// with the unbiased variance over all tokens of the batch, like verl. With `shiftMean: false`
/// the mean is added back, so the sign of each advantage is kept.
public enum AdvantageWhitening {
    public static func whiten(_ values: [Float], shiftMean: Bool = true) -> [Float] {
        let n = values.count
        guard n > 1 else { return values }
        let m = values.reduce(0.0) { $0 + Double($1) } / Double(n)
        let ss = values.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) }
        let inv = 1 / (ss / Double(n - 1) + 1e-8).squareRoot()
        return values.map { Float((Double($0) - m) * inv + (shiftMean ? 0 : m)) }
    }
}
