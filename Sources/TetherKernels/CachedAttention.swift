import Foundation

/// Attention of new query rows against a key/value cache (incremental decoding and prefill).
///
/// The cache holds, per layer, `[slots, capacity, kvDim]` keys and values; row r of the query
/// belongs to sequence slot `slots[r]` at position `positions[r]` and attends to cache positions
/// `0...positions[r]` of that slot (its own key/value must already be written). Grouped-query heads
/// as in `CausalAttention`. SIMD8 dot products and axpys over the head dimension (SIMD16 with
/// `TETHER_AVX512`).
///
/// A slot may take its first positions from another slot instead (`SharedPrefix`): the G samples
/// of a GRPO group then read one copy of their prompt's keys and values. Their rows run back to
/// back, so that copy comes from cache for all but the first of them, where G copies were G
/// streams from memory.
public enum CachedAttention {
    /// Per slot s (tables indexed by slot): positions `0..<length[s]` are read from slot
    /// `source[s]`, the rest from s itself.
    public struct SharedPrefix {
        public let source: UnsafePointer<Int32>
        public let length: UnsafePointer<Int32>
        public init(source: UnsafePointer<Int32>, length: UnsafePointer<Int32>) {
            self.source = source
            self.length = length
        }
    }

    /// `scratch` holds `capacity` floats per worker (`workers` ≥ 1): rows are split across that many
    /// threads, since decoding's attention is the one part of a step that is not a GEMM.
    public static func forward(
        q: UnsafePointer<Float>, ldq: Int, rows: Int, slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, capacity: Int,
        heads: Int, kvHeads: Int, headDim D: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>, workers: Int = 1,
        sharedPrefix: SharedPrefix? = nil
    ) {
        let w = max(1, min(workers, rows))
        if w == 1 {
            forwardRows(0..<rows, q: q, ldq: ldq, slots: slots, positions: positions, keys: keys, values: values, capacity: capacity,
                        heads: heads, kvHeads: kvHeads, headDim: D, out: out, ldo: ldo, scratch: scratch, sharedPrefix: sharedPrefix)
            return
        }
        // Raw pointers are not Sendable; each worker reads shared inputs and writes disjoint output
        // rows and its own scratch slice, so sharing them across the workers is race-free.
        nonisolated(unsafe) let (q, slots, positions, keys, values, out, scratch) = (q, slots, positions, keys, values, out, scratch)
        nonisolated(unsafe) let sharedPrefix = sharedPrefix
        DispatchQueue.concurrentPerform(iterations: w) { k in
            let range = (rows * k / w)..<(rows * (k + 1) / w)
            forwardRows(range, q: q, ldq: ldq, slots: slots, positions: positions, keys: keys, values: values, capacity: capacity,
                        heads: heads, kvHeads: kvHeads, headDim: D, out: out, ldo: ldo, scratch: scratch + k * capacity,
                        sharedPrefix: sharedPrefix)
        }
    }

    static func forwardRows(
        _ rowRange: Range<Int>, q: UnsafePointer<Float>, ldq: Int, slots: UnsafePointer<Int32>, positions: UnsafePointer<Int32>,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, capacity: Int,
        heads: Int, kvHeads: Int, headDim D: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, scratch: UnsafeMutablePointer<Float>, sharedPrefix: SharedPrefix?
    ) {
        let kvDim = kvHeads * D, group = heads / kvHeads
        let scale = 1 / Float(D).squareRoot()
        for r in rowRange {
            let slot = Int(slots[r]), n = Int(positions[r]) + 1
            // Positions 0..<shared come from the prefix's slot, shared..<n from the row's own.
            let shared = sharedPrefix.map { min(n, Int($0.length[slot])) } ?? 0
            let source = shared > 0 ? Int(sharedPrefix!.source[slot]) : slot
            let kPrefix = keys + source * capacity * kvDim, vPrefix = values + source * capacity * kvDim
            let kOwn = keys + (slot * capacity + shared) * kvDim, vOwn = values + (slot * capacity + shared) * kvDim
            // The `group` query heads of one key/value head run back to back, so that head's keys
            // and values (n·D floats) are read from memory once and from L1 for the others.
            for h in 0..<heads {
                let g = h / group, qh = q + r * ldq + h * D
                scores(qh, keys: kPrefix + g * D, stride: kvDim, count: shared, headDim: D, scale: scale, out: scratch)
                scores(qh, keys: kOwn + g * D, stride: kvDim, count: n - shared, headDim: D, scale: scale, out: scratch + shared)
                let m = VectorOps.max(scratch, n)
                let inv = 1 / VectorOps.expShifted(scratch, n, shift: m)
                weightedSum(scratch, values: vPrefix + g * D, count: shared, then: vOwn + g * D, count: n - shared, stride: kvDim, headDim: D,
                            scale: inv, out: out + r * ldo + h * D)
            }
        }
    }

    /// `out[j] = scale · q·k_j` for the `count` keys `k_j = keys + j·stride`: four keys per pass, so
    /// each load of `q` feeds four independent accumulator chains.
    @inline(__always)
    static func scores(_ q: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int, count n: Int, headDim D: Int,
                       scale: Float, out: UnsafeMutablePointer<Float>) {
        #if TETHER_AVX512
        if D % 16 == 0 { return scores16(q, keys: keys, stride: stride, count: n, headDim: D, scale: scale, out: out) }
        #endif
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
        // The last keys in the same order of operations as the four-key passes, so that a key's score
        // does not depend on where a segment boundary (a shared prefix's end) puts it.
        while j < n {
            let k0 = keys + j * stride
            var a0 = SIMD8<Float>()
            var d = 0
            while d < vectorD { a0 = a0.addingProduct(VectorOps.load(q + d), VectorOps.load(k0 + d)); d += 8 }
            var s0 = a0.sum()
            while d < D { s0 += q[d] * k0[d]; d += 1 }
            out[j] = s0 * scale
            j += 1
        }
    }

    #if TETHER_AVX512
    /// `scores` for a head dimension that is a multiple of 16, in SIMD16 vectors (half the loads
    /// and FMAs of SIMD8 on a full-width AVX-512 unit); one key alone sums in the same order as
    /// four together.
    @inline(__always)
    static func scores16(_ q: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int, count n: Int, headDim D: Int,
                         scale: Float, out: UnsafeMutablePointer<Float>) {
        var j = 0
        while j + 4 <= n {
            let k0 = keys + j * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var d = 0
            while d < D {
                let qv = VectorOps.load16(q + d)
                a0 = a0.addingProduct(qv, VectorOps.load16(k0 + d)); a1 = a1.addingProduct(qv, VectorOps.load16(k1 + d))
                a2 = a2.addingProduct(qv, VectorOps.load16(k2 + d)); a3 = a3.addingProduct(qv, VectorOps.load16(k3 + d))
                d += 16
            }
            out[j] = a0.sum() * scale; out[j + 1] = a1.sum() * scale; out[j + 2] = a2.sum() * scale; out[j + 3] = a3.sum() * scale
            j += 4
        }
        while j < n {
            let k0 = keys + j * stride
            var a0 = SIMD16<Float>()
            var d = 0
            while d < D { a0 = a0.addingProduct(VectorOps.load16(q + d), VectorOps.load16(k0 + d)); d += 16 }
            out[j] = a0.sum() * scale
            j += 1
        }
    }
    #endif

    /// `out = scale · Σ_j p[j]·v_j` over the `n1` values `v_j = values1 + j·stride` followed by the
    /// `n2` values `values2 + j·stride` (prefix and own positions), the output held in registers
    /// (64 floats at a time) instead of being read and written once per position.
    @inline(__always)
    static func weightedSum(_ p: UnsafePointer<Float>, values values1: UnsafePointer<Float>, count n1: Int,
                            then values2: UnsafePointer<Float>, count n2: Int, stride: Int, headDim D: Int,
                            scale: Float, out: UnsafeMutablePointer<Float>) {
        var d = 0
        #if TETHER_AVX512
        while d + 64 <= D {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            @inline(__always) func add(_ v: UnsafePointer<Float>, _ weight: Float) {
                let w = SIMD16<Float>(repeating: weight)
                a0 = a0.addingProduct(w, VectorOps.load16(v)); a1 = a1.addingProduct(w, VectorOps.load16(v + 16))
                a2 = a2.addingProduct(w, VectorOps.load16(v + 32)); a3 = a3.addingProduct(w, VectorOps.load16(v + 48))
            }
            for j in 0..<n1 { add(values1 + j * stride + d, p[j]) }
            for j in 0..<n2 { add(values2 + j * stride + d, p[n1 + j]) }
            let s = SIMD16<Float>(repeating: scale), o = out + d
            VectorOps.store16(a0 * s, o); VectorOps.store16(a1 * s, o + 16); VectorOps.store16(a2 * s, o + 32); VectorOps.store16(a3 * s, o + 48)
            d += 64
        }
        #endif
        while d + 64 <= D {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var a4 = SIMD8<Float>(), a5 = SIMD8<Float>(), a6 = SIMD8<Float>(), a7 = SIMD8<Float>()
            @inline(__always) func add(_ v: UnsafePointer<Float>, _ weight: Float) {
                let w = SIMD8<Float>(repeating: weight)
                a0 = a0.addingProduct(w, VectorOps.load(v)); a1 = a1.addingProduct(w, VectorOps.load(v + 8))
                a2 = a2.addingProduct(w, VectorOps.load(v + 16)); a3 = a3.addingProduct(w, VectorOps.load(v + 24))
                a4 = a4.addingProduct(w, VectorOps.load(v + 32)); a5 = a5.addingProduct(w, VectorOps.load(v + 40))
                a6 = a6.addingProduct(w, VectorOps.load(v + 48)); a7 = a7.addingProduct(w, VectorOps.load(v + 56))
            }
            for j in 0..<n1 { add(values1 + j * stride + d, p[j]) }
            for j in 0..<n2 { add(values2 + j * stride + d, p[n1 + j]) }
            let s = SIMD8<Float>(repeating: scale), o = out + d
            VectorOps.store(a0 * s, o); VectorOps.store(a1 * s, o + 8); VectorOps.store(a2 * s, o + 16); VectorOps.store(a3 * s, o + 24)
            VectorOps.store(a4 * s, o + 32); VectorOps.store(a5 * s, o + 40); VectorOps.store(a6 * s, o + 48); VectorOps.store(a7 * s, o + 56)
            d += 64
        }
        guard d < D else { return }
        // Head dimensions that are not a multiple of 64 (small test configs): the rest by axpy.
        let o = out + d, rest = D - d
        o.update(repeating: 0, count: rest)
        for j in 0..<n1 { VectorOps.axpy(p[j] * scale, values1 + j * stride + d, o, rest) }
        for j in 0..<n2 { VectorOps.axpy(p[n1 + j] * scale, values2 + j * stride + d, o, rest) }
    }
}
