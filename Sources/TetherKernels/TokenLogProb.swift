import Foundation

/// Per-position log-probability of a chosen token, `log p(y_r) = z_r[y_r] − logsumexp(z_r)`, and
/// optionally the entropy of the softmax `H_r = logsumexp(z_r) − Σ_j p_j z_j`. Every RL/SFT loss is
/// a function of these two, so their backward is the only loss-facing backward the model needs.
public enum TokenLogProb {
    /// Rows whose target is negative are ignored (log-prob and entropy 0). `logSumExp` keeps each
    /// row's normaliser for the backward.
    public static func forward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int,
        logProbs: UnsafeMutablePointer<Float>, entropy: UnsafeMutablePointer<Float>?,
        logSumExp: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let z = logits + r * vocab
            let lse = Softmax.logSumExp(z, vocab)
            logSumExp[r] = lse
            let t = Int(targets[r])
            if t < 0 {
                logProbs[r] = 0
                entropy?[r] = 0
                continue
            }
            logProbs[r] = z[t] - lse
            if let entropy {
                var pz: Float = 0
                for j in 0..<vocab { pz += expf(z[j] - lse) * z[j] }
                entropy[r] = lse - pz
            }
        }
    }

    /// `dz_j = dlogp·(1[j=y] − p_j) − dH·p_j·(log p_j + H)`, written into `dLogits`.
    public static func backward(
        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, logSumExp: UnsafePointer<Float>,
        entropy: UnsafePointer<Float>?, dLogProbs: UnsafePointer<Float>, dEntropy: UnsafePointer<Float>?,
        rows: Int, vocab: Int, dLogits: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let t = Int(targets[r]), z = logits + r * vocab, d = dLogits + r * vocab
            guard t >= 0 else { d.update(repeating: 0, count: vocab); continue }
            let lse = logSumExp[r], g = dLogProbs[r]
            if let dEntropy, let entropy, dEntropy[r] != 0 {
                let ge = dEntropy[r], H = entropy[r]
                for j in 0..<vocab {
                    let lp = z[j] - lse, p = expf(lp)
                    d[j] = -g * p - ge * p * (lp + H)
                }
            } else {
                for j in 0..<vocab { d[j] = -g * expf(z[j] - lse) }
            }
            d[t] += g
        }
    }
}
