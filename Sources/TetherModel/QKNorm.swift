import TetherKernels

/// Qwen3's per-head RMSNorm of queries and keys (`q_norm`, `k_norm`, one weight of head_dim each),
/// applied to every head vector after the projection and before RoPE, which keeps attention
/// logits bounded. It is the ordinary RMSNorm kernel over rows of head_dim: in a fused qkv row the
/// query heads are `heads` such rows, followed by `kvHeads` key rows.
enum QKNorm {
    /// Normalises the q and k heads of `rows` fused rows (stride `rowStride`) in place. With `raw`
    /// (`[rows, (heads + kvHeads)·D]`) and `rstd` (`[rows, heads + kvHeads]`) the inputs and
    /// per-head rstd are kept for the backward.
    static func forward(
        _ qkv: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int, kvHeads: Int, headDim D: Int,
        qWeight: UnsafePointer<Float>, kWeight: UnsafePointer<Float>, eps: Float,
        raw: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?
    ) {
        let width = (heads + kvHeads) * D
        for r in 0..<rows {
            let row = qkv + r * rowStride
            var input = UnsafePointer(row)
            if let raw {
                (raw + r * width).update(from: row, count: width)
                input = UnsafePointer(raw + r * width)
            }
            let rs = rstd.map { $0 + r * (heads + kvHeads) }
            // In place is safe: RMSNorm reads a row fully (for the mean square) before writing it,
            // then writes element i only after reading element i.
            RMSNorm.forward(x: input, weight: qWeight, rows: heads, dim: D, eps: eps, out: row, rstd: rs)
            RMSNorm.forward(x: input + heads * D, weight: kWeight, rows: kvHeads, dim: D, eps: eps,
                            out: row + heads * D, rstd: rs.map { $0 + heads })
        }
    }

    /// Replaces d(normed q, k) in the fused gradient rows `dqkv` by d(q, k before the norm), and
    /// adds the weight gradients. `scratch` holds `(heads + kvHeads)·D` floats.
    static func backward(
        _ dqkv: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int, kvHeads: Int, headDim D: Int,
        qWeight: UnsafePointer<Float>, kWeight: UnsafePointer<Float>,
        raw: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        dqWeight: UnsafeMutablePointer<Float>, dkWeight: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let width = (heads + kvHeads) * D
        for r in 0..<rows {
            let drow = dqkv + r * rowStride, x = raw + r * width, rs = rstd + r * (heads + kvHeads)
            scratch.update(repeating: 0, count: width)
            RMSNorm.backward(x: x, weight: qWeight, rstd: rs, dOut: drow, rows: heads, dim: D, dx: scratch, dWeight: dqWeight)
            RMSNorm.backward(x: x + heads * D, weight: kWeight, rstd: rs + heads, dOut: drow + heads * D, rows: kvHeads, dim: D,
                             dx: scratch + heads * D, dWeight: dkWeight)
            drow.update(from: scratch, count: width)
        }
    }
}
