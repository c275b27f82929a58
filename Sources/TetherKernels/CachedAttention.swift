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
        for r in rowRange {
            let slot = Int(slots[r]), n = Int(positions[r]) + 1
            let kBase = keys + slot * capacity * kvDim, vBase = values + slot * capacity * kvDim
            // The `group` query heads of one key/value head run back to back, so that head's keys
            // and values (n·D floats) are read from memory once and from L1 for the others.
            for h in 0..<heads {
                let g = h / group
                let kh = kBase + g * D, vh = vBase + g * D
                scores(q + r * ldq + h * D, keys: kh, stride: kvDim, count: n, headDim: D, scale: scale, out: scratch)
                let m = VectorOps.max(scratch, n)
                let inv = 1 / VectorOps.expShifted(scratch, n, shift: m)
                weightedSum(scratch, values: vh, stride: kvDim, count: n, headDim: D, scale: inv, out: out + r * ldo + h * D)
            }
        }
    }

    /// `out[j] = scale · q·k_j` for the `count` keys `k_j = keys + j·stride`: four keys per pass, so
    /// each load of `q` feeds four independent accumulator chains.
    @inline(__always)
    static func scores(_ q: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int, count n: Int, headDim D: Int,
                       scale: Float, out: UnsafeMutablePointer<Float>) {
        let vectorD = D & ~7
        var j = 0
        while j + 4 <= n {
            let k0 = keys + j * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var d = 0
            while d < vectorD {
                let qv = VectorOps.load(q + d)
                a0 = a0.addingProduct(qv, VectorOps.load(k0 + d)); a1 = a1.addingProduct(qv, VectorOps.load(k1 + d))
                a2 = a2.addingProduct(qv, VectorOps.load(k2 + d)); a3 = a3.addingProduct(qv, VectorOps.load(k3 + d))
                d += 8
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while d < D { s0 += q[d] * k0[d]; s1 += q[d] * k1[d]; s2 += q[d] * k2[d]; s3 += q[d] * k3[d]; d += 1 }
            out[j] = s0 * scale; out[j + 1] = s1 * scale; out[j + 2] = s2 * scale; out[j + 3] = s3 * scale
            j += 4
        }
        while j < n { out[j] = VectorOps.dot(q, keys + j * stride, D) * scale; j += 1 }
    }

    /// `out = scale · Σ_j p[j]·v_j` over `v_j = values + j·stride`, the output held in registers
    /// (64 floats at a time) instead of being read and written once per position.
    @inline(__always)
    static func weightedSum(_ p: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int, count n: Int, headDim D: Int,
                            scale: Float, out: UnsafeMutablePointer<Float>) {
        var d = 0
        while d + 64 <= D {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
            for j in 0..<n {
                let v = values + j * stride + d, w = SIMD8<Float>(repeating: p[j])
                a0 = a0.addingProduct(w, VectorOps.load(v)); a1 = a1.addingProduct(w, VectorOps.load(v + 8))
                a2 = a2.addingProduct(w, VectorOps.load(v + 16)); a3 = a3.addingProduct(w, VectorOps.load(v + 24))
                a4 = a4.addingProduct(w, VectorOps.load(v + 32)); a5 = a5.addingProduct(w, VectorOps.load(v + 40))
                a6 = a6.addingProduct(w, VectorOps.load(v + 48)); a7 = a7.addingProduct(w, VectorOps.load(v + 56))
            }
            let s = SIMD8<Float>(repeating: scale), o = out + d
            VectorOps.store(a0 * s, o); VectorOps.store(a1 * s, o + 8); VectorOps.store(a2 * s, o + 16); VectorOps.store(a3 * s, o + 24)
            VectorOps.store(a4 * s, o + 32); VectorOps.store(a5 * s, o + 40); VectorOps.store(a6 * s, o + 48); VectorOps.store(a7 * s, o + 56)
            d += 64
        }
        guard d < D else { return }
        // Head dimensions that are not a multiple of 64 (small test configs): the rest by axpy.
        let o = out + d, rest = D - d
        o.update(repeating: 0, count: rest)
        for j in 0..<n { VectorOps.axpy(p[j] * scale, values + j * stride + d, o, rest) }
    }
}
