import Foundation

/// Attention of new query rows against a key/value cache (incremental decoding and prefill).
///
/// The cache holds, per layer, `[slots, capacity, kvDim]` keys and values; row r of the query
/// belongs to sequence slot `slots[r]` at position `positions[r]` and attends to cache positions
/// `0...positions[r]` of that slot (its own key/value must already be written). Grouped-query heads
/// as in `CausalAttention`. SIMD8 dot products and axpys over the head dimension.
public enum CachedAttention {
    public static func forward(
        q: UnsafePointer<Float>, ldq: Int, rows: Int, slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, capacity: Int,
        heads: Int, kvHeads: Int, headDim D: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        let kvDim = kvHeads * D, group = heads / kvHeads
        let scale = 1 / Float(D).squareRoot()
        for r in 0..<rows {
            let slot = Int(slots[r]), n = Int(positions[r]) + 1
            let kBase = keys + slot * capacity * kvDim, vBase = values + slot * capacity * kvDim
            for h in 0..<heads {
                let g = h / group
                let qh = q + r * ldq + h * D
                var m = -Float.infinity
                for j in 0..<n {
                    let sc = VectorOps.dot(qh, kBase + j * kvDim + g * D, D) * scale
                    scratch[j] = sc
                    m = Swift.max(m, sc)
                }
                let inv = 1 / VectorOps.expShifted(scratch, n, shift: m)
                let oh = out + r * ldo + h * D
                oh.update(repeating: 0, count: D)
                for j in 0..<n { VectorOps.axpy(scratch[j] * inv, vBase + j * kvDim + g * D, oh, D) }
            }
        }
    }
}
