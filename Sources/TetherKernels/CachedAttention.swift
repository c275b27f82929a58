import Foundation

/// Attention of new query rows against a key/value cache (incremental decoding and prefill).
///
/// The cache holds, per layer, `[slots, capacity, kvDim]` keys and values; row r of the query
/// belongs to sequence slot `slots[r]` at position `positions[r]` and attends to cache positions
/// `0...positions[r]` of that slot (its own key/value must already be written). Grouped-query heads
/// as in `CausalAttention`. SIMD8 dot products and axpys over the head dimension.
public enum CachedAttention {
    /// `scratch` holds `capacity` floats per worker (`workers` ≥ 1): rows are split across that many
    /// threads, since decoding's attention is the one part of a step that is not a GEMM.
    public static func forward(
        q: UnsafePointer<Float>, ldq: Int, rows: Int, slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, capacity: Int,
        heads: Int, kvHeads: Int, headDim D: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>, workers: Int = 1
    ) {
        let w = max(1, min(workers, rows))
        if w == 1 {
            forwardRows(0..<rows, q: q, ldq: ldq, slots: slots, positions: positions, keys: keys, values: values, capacity: capacity,
                        heads: heads, kvHeads: kvHeads, headDim: D, out: out, ldo: ldo, scratch: scratch)
            return
        }
        // Raw pointers are not Sendable; each worker reads shared inputs and writes disjoint output
        // rows and its own scratch slice, so sharing them across the workers is race-free.
        nonisolated(unsafe) let (q, slots, positions, keys, values, out, scratch) = (q, slots, positions, keys, values, out, scratch)
        DispatchQueue.concurrentPerform(iterations: w) { k in
            let range = (rows * k / w)..<(rows * (k + 1) / w)
            forwardRows(range, q: q, ldq: ldq, slots: slots, positions: positions, keys: keys, values: values, capacity: capacity,
                        heads: heads, kvHeads: kvHeads, headDim: D, out: out, ldo: ldo, scratch: scratch + k * capacity)
        }
    }

    static func forwardRows(
        _ rowRange: Range<Int>, q: UnsafePointer<Float>, ldq: Int, slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, capacity: Int,
        heads: Int, kvHeads: Int, headDim D: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>
    ) {
        let kvDim = kvHeads * D, group = heads / kvHeads
        let scale = 1 / Float(D).squareRoot()
        for r in rowRange {            let slot = Int(slots[r]), n = Int(positions[r]) + 1
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
