import Foundation

/// Causal scaled-dot-product attention over whole sequences (the training forward), with grouped
/// query heads (Ainslie et al. 2023): query head h reads key/value head `h / (heads/kvHeads)`.
///
/// `P = softmax(Q Kᵀ/√D + causal mask)`, `O = P V` per (sequence, head), each as BLAS calls over
/// strided row blocks, so Q, K and V can sit side by side in one fused projection output.
/// The probabilities are kept for the backward (`[batch, heads, T, T]`, upper triangle zero).
public enum CausalAttention {
    public struct Shape: Sendable, Equatable {
        public var batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int
        public init(batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int) {
            self.batch = batch; self.seqLen = seqLen; self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        }
        public var probsCount: Int { batch * heads * seqLen * seqLen }
    }

    /// `q` rows have stride `ldq` (head h at column h·D), `k`/`v` stride `ldkv` (head g at g·D), `out`
    /// stride `ldo`. `lengths[b]` (≤ T) limits the work per sequence; rows at or past a length get
    /// zero output (they cannot influence earlier rows under the causal mask).
    /// With `keepProbs` false (a forward with no backward to follow) `probs` is only a scratch of
    /// `T·T` floats per worker instead of the `[batch, heads, T, T]` store.
    public static func forward(
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, probs: UnsafeMutablePointer<Float>,
        shape s: Shape, lengths: UnsafePointer<Int32>?, workers: Int = 1, keepProbs: Bool = true
    ) {
        nonisolated(unsafe) let (q, k, v, out, probs, lengths) = (q, k, v, out, probs, lengths)
        splitBatch(s.batch, workers: workers) { batches, worker in
            forwardBatches(batches, q: q, ldq: ldq, k: k, v: v, ldkv: ldkv, out: out, ldo: ldo,
                           probs: keepProbs ? probs : probs + worker * s.seqLen * s.seqLen, keepProbs: keepProbs,
                           shape: s, lengths: lengths)
        }
    }

    /// Runs `body` over disjoint ranges of sequences on `workers` threads. Each worker makes
    /// single-threaded BLAS calls (the BLAS budget is lent to the workers and restored after):
    /// per-head GEMMs are too small to split, but sequences are independent.
    static func splitBatch(_ batch: Int, workers: Int, _ body: @Sendable (Range<Int>, Int) -> Void) {
        let w = max(1, min(workers, batch))
        if w == 1 { body(0..<batch, 0); return }
        let saved = BLASThreads.current
        BLASThreads.set(1)
        DispatchQueue.concurrentPerform(iterations: w) { i in body((batch * i / w)..<(batch * (i + 1) / w), i) }
        BLASThreads.set(saved)
    }

    static func forwardBatches(
        _ batches: Range<Int>, q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, probs: UnsafeMutablePointer<Float>, keepProbs: Bool,
        shape s: Shape, lengths: UnsafePointer<Int32>?
    ) {
        let T = s.seqLen, D = s.headDim, group = s.heads / s.kvHeads
        let scale = 1 / Float(D).squareRoot()
        for b in batches {
            let L = lengths.map { Int($0[b]) } ?? T
            let rowBase = b * T
            for r in L..<T { (out + (rowBase + r) * ldo).update(repeating: 0, count: s.heads * D) }
            for h in 0..<s.heads {
                let g = h / group
                let P = keepProbs ? probs + (b * s.heads + h) * T * T : probs
                guard L > 0 else { continue }
                let qp = q + rowBase * ldq + h * D, kp = k + rowBase * ldkv + g * D, vp = v + rowBase * ldkv + g * D
                BLAS.sgemm(transB: true, m: L, n: L, k: D, alpha: scale, a: qp, lda: ldq, b: kp, ldb: ldkv, c: P, ldc: T)
                for i in 0..<L { softmaxCausalRow(P + i * T, valid: i + 1, width: L) }
                BLAS.sgemm(m: L, n: D, k: L, a: P, lda: T, b: vp, ldb: ldkv, c: out + rowBase * ldo + h * D, ldc: ldo)
            }
        }
    }

    @inline(__always)
    static func softmaxCausalRow(_ row: UnsafeMutablePointer<Float>, valid: Int, width: Int) {
        let m = VectorOps.max(row, valid)
        let sum = VectorOps.expShifted(row, valid, shift: m)
        VectorOps.scale(row, 1 / sum, valid)
        if width > valid { (row + valid).update(repeating: 0, count: width - valid) }
    }

    /// Backward: `dP = dO Vᵀ`, `dV += Pᵀ dO`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`,
    /// `dQ = dS K/√D`, `dK += dSᵀ Q/√D`. `dq`, `dk`, `dv` share the strides of `q`, `k`, `v`; they
    /// are overwritten (rows past a length are zeroed). `scratch` holds T·T floats per worker.
    public static func backward(
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int,
        probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>, ldo: Int,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, shape s: Shape, lengths: UnsafePointer<Int32>?, workers: Int = 1
    ) {
        // Workers own disjoint sequences: disjoint rows of dq/dk/dv and their own scratch slice.
        nonisolated(unsafe) let (q, k, v, probs, dOut, dq, dk, dv, scratch, lengths) = (q, k, v, probs, dOut, dq, dk, dv, scratch, lengths)
        let TT = s.seqLen * s.seqLen
        splitBatch(s.batch, workers: workers) { batches, worker in
            backwardBatches(batches, q: q, ldq: ldq, k: k, v: v, ldkv: ldkv, probs: probs, dOut: dOut, ldo: ldo,
                            dq: dq, dk: dk, dv: dv, scratch: scratch + worker * TT, shape: s, lengths: lengths)
        }
    }

    static func backwardBatches(
        _ batches: Range<Int>, q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int,
        probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>, ldo: Int,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, shape s: Shape, lengths: UnsafePointer<Int32>?
    ) {
        let T = s.seqLen, D = s.headDim, group = s.heads / s.kvHeads
        let scale = 1 / Float(D).squareRoot()
        for b in batches {
            let L = lengths.map { Int($0[b]) } ?? T
            let rowBase = b * T
            for r in 0..<T {
                (dk + (rowBase + r) * ldkv).update(repeating: 0, count: s.kvHeads * D)
                (dv + (rowBase + r) * ldkv).update(repeating: 0, count: s.kvHeads * D)
                if r >= L { (dq + (rowBase + r) * ldq).update(repeating: 0, count: s.heads * D) }
            }
            guard L > 0 else { continue }
            for h in 0..<s.heads {
                let g = h / group
                let P = probs + (b * s.heads + h) * T * T
                let qp = q + rowBase * ldq + h * D, kp = k + rowBase * ldkv + g * D, vp = v + rowBase * ldkv + g * D
                let dop = dOut + rowBase * ldo + h * D
                BLAS.sgemm(transB: true, m: L, n: L, k: D, a: dop, lda: ldo, b: vp, ldb: ldkv, c: scratch, ldc: T)
                BLAS.sgemm(transA: true, m: L, n: D, k: L, a: P, lda: T, b: dop, ldb: ldo, beta: 1,
                           c: dv + rowBase * ldkv + g * D, ldc: ldkv)
                for i in 0..<L {
                    let pr = P + i * T, dr = scratch + i * T
                    let n = i + 1
                    let dotPD = VectorOps.dot(pr, dr, n)
                    for j in 0..<n { dr[j] = pr[j] * (dr[j] - dotPD) }
                    if L > n { (dr + n).update(repeating: 0, count: L - n) }
                }
                BLAS.sgemm(m: L, n: D, k: L, alpha: scale, a: scratch, lda: T, b: kp, ldb: ldkv,
                           c: dq + rowBase * ldq + h * D, ldc: ldq)
                BLAS.sgemm(transA: true, m: L, n: D, k: L, alpha: scale, a: scratch, lda: T, b: qp, ldb: ldq, beta: 1,
                           c: dk + rowBase * ldkv + g * D, ldc: ldkv)
            }
        }
    }
}
