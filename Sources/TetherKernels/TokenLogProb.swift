import Foundation

/// Per-position log-probability of a chosen token, `log p(y_r) = z_r[y_r] − logsumexp(z_r)`, and
/// optionally the entropy of the softmax `H_r = logsumexp(z_r) − Σ_j p_j z_j`. Every RL/SFT loss is
/// a function of these two, so their backward is the only loss-facing backward the model needs.
///
/// Both run a row at a time with SIMD exponentials, and the backward may write `dLogits` over
/// `logits` (the fused LM head keeps one `[chunk, vocab]` scratch for both).
public enum TokenLogProb {
    /// Rows whose target is negative are ignored (log-prob, entropy and `logSumExp` 0). `logSumExp`
    /// keeps each row's normaliser for the backward.
    public static func forward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int,
        logProbs: UnsafeMutablePointer<Float>, entropy: UnsafeMutablePointer<Float>?,
        logSumExp: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let t = Int(targets[r])
            guard t >= 0 else {
                logProbs[r] = 0
                logSumExp[r] = 0
                entropy?[r] = 0
                continue
            }
            let z = logits + r * vocab
            let m = VectorOps.max(z, vocab)
            if let entropy {
                // With e_j = exp(z_j − m), s = Σ e_j: H = log s − Σ e_j (z_j − m) / s, which avoids
                // the cancellation of logsumexp − E[z] when the logits are large.
                let (s, ez) = VectorOps.sumExpShiftedWeighted(z, vocab, shift: m)
                let logS = logf(s)
                logSumExp[r] = m + logS
                entropy[r] = logS - ez / s
            } else {
                logSumExp[r] = m + logf(VectorOps.sumExpShifted(z, vocab, shift: m))
            }
            logProbs[r] = z[t] - logSumExp[r]
        }
    }

    /// `dz_j = dlogp·(1[j=y] − p_j) − dH·p_j·(log p_j + H)`, written into `dLogits` (which may be
    /// `logits` itself: each element is read before it is written).
    public static func backward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, logSumExp: UnsafePointer<Float>,
        entropy: UnsafePointer<Float>?, dLogProbs: UnsafePointer<Float>, dEntropy: UnsafePointer<Float>?,
        rows: Int, vocab: Int, dLogits: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let t = Int(targets[r]), z = logits + r * vocab, d = dLogits + r * vocab
            guard t >= 0 else { d.update(repeating: 0, count: vocab); continue }
            let lse = logSumExp[r], g = dLogProbs[r]
            let ge: Float = dEntropy.map { $0[r] } ?? 0
            let H: Float = ge != 0 ? entropy![r] : 0
            let vl = SIMD8<Float>(repeating: lse), vg = SIMD8<Float>(repeating: -g)
            let vge = SIMD8<Float>(repeating: ge), vh = SIMD8<Float>(repeating: H)
            var j = 0
            if ge != 0 {
                while j + 8 <= vocab {
                    let lp = VectorOps.load(z + j) - vl, p = VectorOps.exp(lp)
                    VectorOps.store(p * (vg - vge * (lp + vh)), d + j)
                    j += 8
                }
                while j < vocab { let lp = z[j] - lse, p = expf(lp); d[j] = p * (-g - ge * (lp + H)); j += 1 }
            } else {
                while j + 8 <= vocab { VectorOps.store(vg * VectorOps.exp(VectorOps.load(z + j) - vl), d + j); j += 8 }
                while j < vocab { d[j] = -g * expf(z[j] - lse); j += 1 }
            }
            d[t] += g
        }
    }
}
