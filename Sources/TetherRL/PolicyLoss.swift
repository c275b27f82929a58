import Foundation

/// Per-token inputs of the policy loss, flat over the completion tokens of `layout`.
public struct PolicyLossInput: Sendable {
    public var layout: SequenceLayout
    /// log π_θ of each sampled token under the policy being trained (the differentiated input).
    public var logProbs: [Float]
    /// log π_behav: the log-probs the sampling actor recorded.
    public var behaviourLogProbs: [Float]
    /// Â per token (a sequence advantage is broadcast with `SequenceLayout.broadcast`).
    public var advantages: [Float]
    /// log π_prox, needed by `.decoupledPPO` only.
    public var proximalLogProbs: [Float]?
    /// log π_ref of the frozen reference, needed by a KL penalty in the loss.
    public var refLogProbs: [Float]?
    /// Per-position entropy of π_θ, needed by an entropy bonus (differentiated input).
    public var entropy: [Float]?

    public init(
        layout: SequenceLayout, logProbs: [Float], behaviourLogProbs: [Float], advantages: [Float],
        proximalLogProbs: [Float]? = nil, refLogProbs: [Float]? = nil, entropy: [Float]? = nil
    ) {
        self.layout = layout
        self.logProbs = logProbs
        self.behaviourLogProbs = behaviourLogProbs
        self.advantages = advantages
        self.proximalLogProbs = proximalLogProbs
        self.refLogProbs = refLogProbs
        self.entropy = entropy
    }
}

/// The policy loss: surrogate + KL + entropy terms, one aggregation.
public struct PolicyLossConfig: Equatable, Sendable {
    public var objective: PolicyObjective
    public var aggregation: LossAggregation
    /// KL to the frozen reference; with `.reward` placement the loss leaves it to the rewards and
    /// only reports it.
    public var kl: KLPenalty?
    /// c in the entropy bonus −c·H_t (0 disables it; then `entropy` is only reported).
    public var entropyCoefficient: Float

    public init(objective: PolicyObjective = .ppo, aggregation: LossAggregation = .tokenMean, kl: KLPenalty? = nil, entropyCoefficient: Float = 0) {
        self.objective = objective
        self.aggregation = aggregation
        self.kl = kl
        self.entropyCoefficient = entropyCoefficient
    }
}

/// The scalar loss, its gradients with respect to the differentiated per-token inputs, and what
/// a run logs about the update.
public struct PolicyLossResult: Sendable {
    public var loss: Float
    /// dL/d log π_θ per token: what the model's backward takes.
    public var dLogProbs: [Float]
    /// dL/dH per token when the entropy bonus is on, else nil.
    public var dEntropy: [Float]?
    public var diagnostics: PolicyLossDiagnostics
}

/// What happened in one loss evaluation (token means over all completion tokens unless stated).
public struct PolicyLossDiagnostics: Equatable, Sendable {
    public var tokenCount: Int
    /// The three parts of `loss`: surrogate, +β·KL, −c·H (each already aggregated and weighted).
    public var policyLoss: Double
    public var klLoss: Double
    public var entropyLoss: Double
    /// Fraction of tokens whose gradient the clip removed (the clipped term was the strict minimum),
    /// split by which side: ρ < 1−ε_low (with Â < 0) or ρ > 1+ε_high (with Â > 0).
    public var clipFraction: Double
    public var clipLowFraction: Double
    public var clipHighFraction: Double
    /// KL(π_old ‖ π_θ) by k3 (CleanRL's `approx_kl`), π_old = π_prox for decoupled PPO, else π_behav.
    public var approxKL: Double
    /// KL(π_behav ‖ π_θ) by k3 over every token of the batch (Schulman 2020: E_behav[ρ − 1 − log ρ],
    /// ρ = π_θ/π_behav, unbiased and ≥ 0): how far the policy being trained is from the one that
    /// sampled, whatever the objective centres its clip on; masked tokens included.
    public var mismatchKL: Double
    /// Mean KL-to-reference estimate per token (nil without reference log-probs).
    public var refKL: Double?
    public var entropyMean: Double?
    /// The importance weight of the objective: π_θ/π_behav (PPO clip, truncated IS) or
    /// π_prox/π_behav (decoupled PPO; for the sequence-level rule, each token carries its
    /// sequence's product, reported up to e^300), before any cap.
    public var importanceWeightMean: Double
    public var importanceWeightMin: Double
    public var importanceWeightMax: Double
    /// Approximate effective sample size over tokens, (Σw)²/Σw² (Kong 1992), and its ratio to the
    /// token count (1 = on-policy; small = few tokens dominate the update).
    public var effectiveSampleSize: Double
    public var effectiveSampleFraction: Double
    /// Fraction of tokens a behaviour-weight rule dropped from the loss (AReaL's cap, masked IS).
    public var maskedFraction: Double
    /// Fraction of tokens whose weight a rule lowered to its cap (truncated IS, token or sequence).
    public var truncatedFraction: Double

    /// Flat name/value pairs for the metrics JSONL (nil-valued entries omitted).
    public var metrics: [(String, Double)] {
        var m: [(String, Double)] = [
            ("loss/policy", policyLoss), ("loss/kl", klLoss), ("loss/entropy", entropyLoss),
            ("clip_frac", clipFraction), ("clip_frac_low", clipLowFraction), ("clip_frac_high", clipHighFraction),
            ("approx_kl", approxKL), ("mismatch_kl", mismatchKL), ("is_weight/mean", importanceWeightMean), ("is_weight/min", importanceWeightMin),
            ("is_weight/max", importanceWeightMax), ("ess", effectiveSampleSize), ("ess_frac", effectiveSampleFraction),
            ("is/masked_fraction", maskedFraction), ("is/truncated_fraction", truncatedFraction), ("tokens", Double(tokenCount)),
        ]
        if let k = refKL { m.append(("ref_kl", k)) }
        if let h = entropyMean { m.append(("entropy", h)) }
        return m
    }
}

extension PolicyLossDiagnostics {
    /// The diagnostics of a minibatch from those of its micro-batches, each evaluated alone and
    /// weighted by its `LossAggregation.share`: loss parts add up scaled by the shares, token
    /// statistics are token-weighted means, and the effective sample size is recomputed from the
    /// pooled Σw and Σw² (Kong 1992).
    public static func merged(_ parts: [(diagnostics: PolicyLossDiagnostics, share: Double)]) -> PolicyLossDiagnostics {
        let n = parts.reduce(0) { $0 + $1.diagnostics.tokenCount }
        let nd = Double(max(n, 1))
        func mean(_ f: (PolicyLossDiagnostics) -> Double) -> Double { parts.reduce(0) { $0 + f($1.diagnostics) * Double($1.diagnostics.tokenCount) } / nd }
        func scaled(_ f: (PolicyLossDiagnostics) -> Double) -> Double { parts.reduce(0) { $0 + f($1.diagnostics) * $1.share } }
        func optionalMean(_ f: (PolicyLossDiagnostics) -> Double?) -> Double? {
            parts.contains { f($0.diagnostics) == nil } ? nil : mean { f($0)! }
        }
        var wSum = 0.0, w2Sum = 0.0
        for (d, _) in parts where d.tokenCount > 0 {
            let s = d.importanceWeightMean * Double(d.tokenCount)
            wSum += s
            if d.effectiveSampleSize > 0 { w2Sum += s * s / d.effectiveSampleSize }
        }
        let ess = w2Sum > 0 ? wSum * wSum / w2Sum : 0
        let nonEmpty = parts.map(\.diagnostics).filter { $0.tokenCount > 0 }
        return PolicyLossDiagnostics(
            tokenCount: n, policyLoss: scaled(\.policyLoss), klLoss: scaled(\.klLoss), entropyLoss: scaled(\.entropyLoss),
            clipFraction: mean(\.clipFraction), clipLowFraction: mean(\.clipLowFraction), clipHighFraction: mean(\.clipHighFraction),
            approxKL: mean(\.approxKL), mismatchKL: mean(\.mismatchKL), refKL: optionalMean(\.refKL), entropyMean: optionalMean(\.entropyMean),
            importanceWeightMean: mean(\.importanceWeightMean), importanceWeightMin: nonEmpty.map(\.importanceWeightMin).min() ?? 0,
            importanceWeightMax: nonEmpty.map(\.importanceWeightMax).max() ?? 0, effectiveSampleSize: ess,
            effectiveSampleFraction: n == 0 ? 0 : ess / nd, maskedFraction: mean(\.maskedFraction),
            truncatedFraction: mean(\.truncatedFraction))
    }
}

/// The policy loss of PPO-family RL for language models over per-token arrays:
///
///     L = Σ_{i,t} a_{i,t} · ( ℓ^surr_{i,t} + β·KL_{i,t} − c·H_{i,t} )
///
/// with a_{i,t} from `LossAggregation`, ℓ^surr from `PolicyObjective`, KL by `KLEstimator`
/// (DeepSeekMath eq. 3 puts β·k3 inside the per-token loss) and c the entropy-bonus coefficient.
/// Pure: no model, no state; the model's backward consumes `dLogProbs` (and `dEntropy`).
public enum PolicyLoss {
    public static func compute(_ x: PolicyLossInput, config: PolicyLossConfig) throws -> PolicyLossResult {
        let n = x.layout.tokenCount
        try RLError.checkCount("logProbs", x.logProbs, n)
        try RLError.checkCount("behaviourLogProbs", x.behaviourLogProbs, n)
        try RLError.checkCount("advantages", x.advantages, n)
        for (name, a) in [("logProbs", x.logProbs), ("behaviourLogProbs", x.behaviourLogProbs), ("advantages", x.advantages)] {
            try RLError.checkFinite(name, a)
        }
        var prox: [Float]? = nil
        var behaviourWeights: [CorrectedWeight] = []
        var rawLogWeights: [Double] = []
        if case .decoupledPPO(_, _, let cap, let mode) = config.objective {
            guard let p = x.proximalLogProbs else { throw RLError.missingInput(name: "proximalLogProbs", neededBy: "decoupled PPO") }
            try RLError.checkCount("proximalLogProbs", p, n)
            try RLError.checkFinite("proximalLogProbs", p)
            prox = p
            let logRatios = (0 ..< n).map { Double(p[$0]) - Double(x.behaviourLogProbs[$0]) }
            rawLogWeights = mode.rawLogWeights(logRatios: logRatios, layout: x.layout)
            behaviourWeights = mode.apply(logRatios: logRatios, layout: x.layout, cap: cap.map(Double.init))
        }
        let klInLoss = config.kl.map { $0.placement == .loss && $0.beta != 0 } ?? false
        if let r = x.refLogProbs {
            try RLError.checkCount("refLogProbs", r, n)
            try RLError.checkFinite("refLogProbs", r)
        } else if klInLoss {
            throw RLError.missingInput(name: "refLogProbs", neededBy: "the KL penalty in the loss")
        }
        let entropyOn = config.entropyCoefficient != 0
        if let h = x.entropy {
            try RLError.checkCount("entropy", h, n)
            try RLError.checkFinite("entropy", h)
        } else if entropyOn {
            throw RLError.missingInput(name: "entropy", neededBy: "the entropy bonus")
        }

        let agg = config.aggregation.tokenWeights(x.layout)
        let beta = Double(config.kl?.beta ?? 0)
        let klEstimator = config.kl?.estimator ?? .k3
        let c = Double(config.entropyCoefficient)
        var dLogProbs = [Float](repeating: 0, count: n)
        var dEntropy: [Float]? = entropyOn ? [Float](repeating: 0, count: n) : nil

        var pgLoss = 0.0, klLoss = 0.0, entLoss = 0.0
        var clipLow = 0, clipHigh = 0, masked = 0, truncated = 0
        var approxKL = 0.0, mismatchKL = 0.0, refKL = 0.0, entropySum = 0.0
        var wSum = 0.0, w2Sum = 0.0, wMin = Double.infinity, wMax = -Double.infinity

        for t in 0 ..< n {
            let logp = Double(x.logProbs[t]), behav = Double(x.behaviourLogProbs[t]), a = Double(x.advantages[t])
            var s: TokenSurrogate
            let weight: Double
            let oldLogp: Double
            switch config.objective {
            case .ppoClip(let el, let eh):
                s = Surrogate.clipped(logRatio: logp - behav, advantage: a, epsilonLow: Double(el), epsilonHigh: Double(eh))
                weight = exp(logp - behav)
                oldLogp = behav
            case .decoupledPPO(let el, let eh, _, _):
                let p = Double(prox![t])
                let w = behaviourWeights[t]
                weight = exp(min(rawLogWeights[t], 300))  // a sequence's product can overflow; its statistics need not
                if w.masked { masked += 1 }
                if w.truncated { truncated += 1 }
                s = Surrogate.clipped(logRatio: logp - p, advantage: a, epsilonLow: Double(el), epsilonHigh: Double(eh))
                s.loss *= w.weight
                s.dLogProb *= w.weight
                oldLogp = p
            case .truncatedIS(let cap):
                let rho = exp(logp - behav)
                weight = rho
                let c = Double(cap)
                if rho > c {
                    truncated += 1
                    s = TokenSurrogate(loss: -a * c * (1 + (logp - behav - log(c))), dLogProb: -c * a)
                } else {
                    s = TokenSurrogate(loss: -a * rho, dLogProb: -a * rho)
                }
                oldLogp = behav
            }
            if s.clippedLow { clipLow += 1 }
            if s.clippedHigh { clipHigh += 1 }
            wSum += weight; w2Sum += weight * weight
            wMin = min(wMin, weight); wMax = max(wMax, weight)
            let lr = logp - oldLogp
            approxKL += exp(lr) - 1 - lr
            mismatchKL += KLEstimator.k3.valueAndGradient(logProb: behav, refLogProb: logp).value

            var g = s.dLogProb
            pgLoss += agg[t] * s.loss
            if let ref = x.refLogProbs {
                let k = klEstimator.valueAndGradient(logProb: logp, refLogProb: Double(ref[t]))
                refKL += k.value
                if klInLoss {
                    klLoss += agg[t] * beta * k.value
                    g += beta * k.dLogProb
                }
            }
            if let h = x.entropy {
                entropySum += Double(h[t])
                if entropyOn {
                    entLoss -= agg[t] * c * Double(h[t])
                    dEntropy![t] = Float(-agg[t] * c)
                }
            }
            dLogProbs[t] = Float(agg[t] * g)
        }

        let nd = Double(max(n, 1))
        let ess = w2Sum > 0 ? wSum * wSum / w2Sum : 0
        let diagnostics = PolicyLossDiagnostics(
            tokenCount: n, policyLoss: pgLoss, klLoss: klLoss, entropyLoss: entLoss,
            clipFraction: Double(clipLow + clipHigh) / nd, clipLowFraction: Double(clipLow) / nd,
            clipHighFraction: Double(clipHigh) / nd, approxKL: approxKL / nd, mismatchKL: mismatchKL / nd,
            refKL: x.refLogProbs == nil ? nil : refKL / nd, entropyMean: x.entropy == nil ? nil : entropySum / nd,
            importanceWeightMean: n == 0 ? 0 : wSum / nd, importanceWeightMin: n == 0 ? 0 : wMin,
            importanceWeightMax: n == 0 ? 0 : wMax, effectiveSampleSize: ess,
            effectiveSampleFraction: n == 0 ? 0 : ess / nd, maskedFraction: Double(masked) / nd,
            truncatedFraction: Double(truncated) / nd)
        return PolicyLossResult(
            loss: Float(pgLoss + klLoss + entLoss), dLogProbs: dLogProbs, dEntropy: dEntropy, diagnostics: diagnostics)
    }
}
