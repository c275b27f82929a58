/// PPO's clipped value loss (Schulman et al. 2017's baselines `ppo2`; verl's `compute_value_loss`):
///
///     ℓ_t = ½ · max((V_t − R_t)², (clip(V_t, V^old_t − ε, V^old_t + ε) − R_t)²)
///
/// aggregated like the policy loss. The clip keeps the value head from moving further than ε from
/// the values recorded at rollout, mirroring the policy's trust region.
public enum ValueLoss {
    public struct Result: Sendable {
        public var loss: Float
        /// dL/dV_t per token: what the value head's backward takes.
        public var dValues: [Float]
        /// Fraction of tokens where the clipped term was the strict maximum (its gradient is 0).
        public var clipFraction: Double
    }

    public static func clipped(
        values: [Float], oldValues: [Float], returns: [Float], layout: SequenceLayout,
        epsilon: Float, aggregation: LossAggregation = .tokenMean
    ) throws -> Result {
        let n = layout.tokenCount
        try RLError.checkCount("values", values, n)
        try RLError.checkCount("oldValues", oldValues, n)
        try RLError.checkCount("returns", returns, n)
        for (name, a) in [("values", values), ("oldValues", oldValues), ("returns", returns)] { try RLError.checkFinite(name, a) }
        let agg = aggregation.tokenWeights(layout)
        let eps = Double(epsilon)
        var loss = 0.0, clippedCount = 0
        var d = [Float](repeating: 0, count: n)
        for t in 0 ..< n {
            let v = Double(values[t]), old = Double(oldValues[t]), r = Double(returns[t])
            let vClip = min(max(v, old - eps), old + eps)
            let u = (v - r) * (v - r), c = (vClip - r) * (vClip - r)
            if c > u {
                clippedCount += 1
                loss += agg[t] * 0.5 * c
                // vClip is constant in V outside [old−ε, old+ε]; c > u implies V is outside.
            } else {
                loss += agg[t] * 0.5 * u
                d[t] = Float(agg[t] * (v - r))
            }
        }
        return Result(loss: Float(loss), dValues: d, clipFraction: n == 0 ? 0 : Double(clippedCount) / Double(n))
    }
}
