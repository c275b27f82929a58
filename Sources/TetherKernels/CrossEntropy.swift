import Foundation

/// Token cross-entropy `ℓ_r = −log softmax(z_r)[y_r]`, the SFT loss per position.
public enum CrossEntropy {
    /// Writes each row's loss; rows whose target is negative (ignored positions) get 0.
    public static func forward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int, losses: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let t = Int(targets[r])
            guard t >= 0 else { losses[r] = 0; continue }
            let z = logits + r * vocab
            losses[r] = Softmax.logSumExp(z, vocab) - z[t]
        }
    }

    /// `dz_r = dℓ_r · (softmax(z_r) − onehot(y_r))`, written into `dLogits` (zero for ignored rows).
    public static func backward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, dLoss: UnsafePointer<Float>, rows: Int, vocab: Int, dLogits: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let t = Int(targets[r]), z = logits + r * vocab, d = dLogits + r * vocab
            guard t >= 0 else { d.update(repeating: 0, count: vocab); continue }
            let lse = Softmax.logSumExp(z, vocab)
            let g = dLoss[r]
            for j in 0..<vocab { d[j] = g * expf(z[j] - lse) }
            d[t] -= g
        }
    }
}
