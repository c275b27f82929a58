import Foundation

/// Causal attention over sequences that share a prefix, the prefix computed once per group
/// ("Prefix Grouper", Liu et al. 2025: GRPO's G completions of one prompt attend to one copy of
/// the prompt, and the result equals attention over the G concatenated sequences exactly).
///
/// Rows are laid out as two blocks of one fused projection output: the prefix block
/// `[groups, prefixLen]` (group g's prefix in rows `g·prefixLen ..< g·prefixLen + prefixLengths[g]`),
/// then the suffix block, the sequences' suffixes packed end to end without padding (sequence s in
/// rows `groups·prefixLen + Σ_{s'<s} suffixLengths[s'] ..< … + suffixLengths[s]`): completions of
/// a GRPO group differ in length, and a padded `[sequences, longest]` block would run every
/// projection of the decoder over the padding too. A prefix row attends causally to
/// its group's prefix (plain `CausalAttention`); suffix row i of sequence s in group g attends to
/// `[prefix K/V of g ; its own K/V rows 0…i]`, so its softmax row is `prefixLengths[g] + i + 1`
/// wide. In the backward the prefix rows' dK and dV are the sum over every suffix that read them
/// (and the prefix's own causal term), which is the sum of the G copies' gradients of the plain
/// computation.
///
/// Suffix probabilities are kept as `[sequences, heads, suffixLen, prefixLen + suffixLen]` (`suffixLen`
/// the longest suffix), each
/// row holding the prefix columns first, then the sequence's own columns starting at column
/// `prefixLengths[g]`.
public enum SharedPrefixAttention {
    public struct Shape: Sendable, Equatable {
        /// `suffixLen` is the longest suffix, `suffixRows` the sum of the suffix lengths (the rows of
        /// the packed suffix block).
        public var groups: Int, prefixLen: Int, sequences: Int, suffixLen: Int, suffixRows: Int
        public var heads: Int, kvHeads: Int, headDim: Int
        public init(groups: Int, prefixLen: Int, sequences: Int, suffixLen: Int, suffixRows: Int, heads: Int, kvHeads: Int, headDim: Int) {
            self.groups = groups; self.prefixLen = prefixLen; self.sequences = sequences; self.suffixLen = suffixLen
            self.suffixRows = suffixRows
            self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        }
        public var prefixRows: Int { groups * prefixLen }
        public var rows: Int { prefixRows + suffixRows }
        /// Width of a suffix row of kept probabilities (and of the backward's dS scratch).
        public var suffixWidth: Int { prefixLen + suffixLen }
        public var prefixShape: CausalAttention.Shape {
            CausalAttention.Shape(batch: groups, seqLen: prefixLen, heads: heads, kvHeads: kvHeads, headDim: headDim)
        }
        public var probsCount: Int { prefixShape.probsCount + sequences * heads * suffixLen * suffixWidth }
        /// Floats of scratch per worker, for `backward` and for a forward that keeps no probabilities.
        public var scratchPerWorker: Int { max(prefixLen * prefixLen, suffixLen * suffixWidth, 1) }

        /// The first row of each sequence's suffix, and `rows` after the last.
        public func suffixStarts(_ suffixLengths: UnsafePointer<Int32>) -> [Int] {
            var starts = [Int](repeating: prefixRows, count: sequences + 1)
            for seq in 0..<sequences { starts[seq + 1] = starts[seq] + Int(suffixLengths[seq]) }
            precondition(starts[sequences] == rows, "suffix lengths sum to \(starts[sequences] - prefixRows), the shape has \(suffixRows) suffix rows")
            return starts
        }
    }

    /// Strides as in `CausalAttention.forward`; `q`, `k`, `v` and `out` point at row 0 of the prefix
    /// block. With `keepProbs` false, `probs`
    /// is a scratch of `scratchPerWorker` floats per worker.
    public static func forward(
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int,
        out: UnsafeMutablePointer<Float>, ldo: Int, probs: UnsafeMutablePointer<Float>, shape s: Shape,
        prefixLengths: UnsafePointer<Int32>, suffixLengths: UnsafePointer<Int32>, groupOf: UnsafePointer<Int32>,
        workers: Int = 1, keepProbs: Bool = true
    ) {
        if s.prefixLen > 0 {
            CausalAttention.forward(q: q, ldq: ldq, k: k, v: v, ldkv: ldkv, out: out, ldo: ldo,
                                    probs: probs, shape: s.prefixShape, lengths: prefixLengths,
                                    workers: workers, keepProbs: keepProbs)
        }
        nonisolated(unsafe) let (q, k, v, out, prefixLengths, suffixLengths, groupOf) = (q, k, v, out, prefixLengths, suffixLengths, groupOf)
        nonisolated(unsafe) let suffixProbs = keepProbs ? probs + s.prefixShape.probsCount : probs
        let starts = s.suffixStarts(suffixLengths)
        CausalAttention.splitBatch(s.sequences, workers: workers) { sequences, worker in
            let T = s.suffixLen, W = s.suffixWidth, D = s.headDim, group = s.heads / s.kvHeads
            let scale = 1 / Float(D).squareRoot()
            for seq in sequences {
                let g = Int(groupOf[seq]), Q = Int(prefixLengths[g]), L = Int(suffixLengths[seq])
                let rowBase = starts[seq], preBase = g * s.prefixLen
                guard L > 0 else { continue }
                for h in 0..<s.heads {
                    let kvh = h / group
                    let P = keepProbs ? suffixProbs + (seq * s.heads + h) * T * W : suffixProbs + worker * s.scratchPerWorker
                    let qp = q + rowBase * ldq + h * D
                    let kPre = k + preBase * ldkv + kvh * D, vPre = v + preBase * ldkv + kvh * D
                    let kOwn = k + rowBase * ldkv + kvh * D, vOwn = v + rowBase * ldkv + kvh * D
                    let o = out + rowBase * ldo + h * D
                    if Q > 0 {
                        BLAS.sgemm(transB: true, m: L, n: Q, k: D, alpha: scale, a: qp, lda: ldq, b: kPre, ldb: ldkv, c: P, ldc: W)
                    }
                    BLAS.sgemm(transB: true, m: L, n: L, k: D, alpha: scale, a: qp, lda: ldq, b: kOwn, ldb: ldkv, c: P + Q, ldc: W)
                    for i in 0..<L { CausalAttention.softmaxCausalRow(P + i * W, valid: Q + i + 1, width: Q + L) }
                    BLAS.sgemm(m: L, n: D, k: L, a: P + Q, lda: W, b: vOwn, ldb: ldkv, c: o, ldc: ldo)
                    if Q > 0 { BLAS.sgemm(m: L, n: D, k: Q, a: P, lda: W, b: vPre, ldb: ldkv, beta: 1, c: o, ldc: ldo) }
                }
            }
        }
    }

    /// Backward of `forward` (kept probabilities): `dq`, `dk`, `dv` share the strides of `q`, `k`,
    /// `v` and are overwritten, the prefix rows' dK/dV holding the sum over their group's suffixes.
    /// Workers own whole groups, so no two write the same prefix rows. `scratch` holds
    /// `scratchPerWorker` floats per worker.
    public static func backward(
        q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldkv: Int,
        probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>, ldo: Int,
        dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, shape s: Shape,
        prefixLengths: UnsafePointer<Int32>, suffixLengths: UnsafePointer<Int32>, groupOf: UnsafePointer<Int32>,
        workers: Int = 1
    ) {
        // The prefix's own causal term first: it overwrites the prefix rows, the suffixes then add.
        if s.prefixLen > 0 {
            CausalAttention.backward(q: q, ldq: ldq, k: k, v: v, ldkv: ldkv, probs: probs, dOut: dOut, ldo: ldo,
                                     dq: dq, dk: dk, dv: dv, scratch: scratch, shape: s.prefixShape, lengths: prefixLengths,
                                     workers: workers)
        }
        nonisolated(unsafe) let (q, k, v, dOut, dq, dk, dv, scratch) = (q, k, v, dOut, dq, dk, dv, scratch)
        nonisolated(unsafe) let (prefixLengths, suffixLengths, groupOf) = (prefixLengths, suffixLengths, groupOf)
        nonisolated(unsafe) let suffixProbs = probs + s.prefixShape.probsCount
        let starts = s.suffixStarts(suffixLengths)
        CausalAttention.splitBatch(s.groups, workers: workers) { groups, worker in
            let T = s.suffixLen, W = s.suffixWidth, D = s.headDim, group = s.heads / s.kvHeads
            let scale = 1 / Float(D).squareRoot()
            let dS = scratch + worker * s.scratchPerWorker
            for seq in 0..<s.sequences where groups.contains(Int(groupOf[seq])) {
                let g = Int(groupOf[seq]), Q = Int(prefixLengths[g]), L = Int(suffixLengths[seq])
                let rowBase = starts[seq], preBase = g * s.prefixLen
                for r in 0..<L {
                    (dk + (rowBase + r) * ldkv).update(repeating: 0, count: s.kvHeads * D)
                    (dv + (rowBase + r) * ldkv).update(repeating: 0, count: s.kvHeads * D)
                }
                guard L > 0 else { continue }
                for h in 0..<s.heads {
                    let kvh = h / group
                    let P = suffixProbs + (seq * s.heads + h) * T * W
                    let qp = q + rowBase * ldq + h * D, dop = dOut + rowBase * ldo + h * D
                    let kPre = k + preBase * ldkv + kvh * D, vPre = v + preBase * ldkv + kvh * D
                    let kOwn = k + rowBase * ldkv + kvh * D, vOwn = v + rowBase * ldkv + kvh * D
                    let dkPre = dk + preBase * ldkv + kvh * D, dvPre = dv + preBase * ldkv + kvh * D
                    let dkOwn = dk + rowBase * ldkv + kvh * D, dvOwn = dv + rowBase * ldkv + kvh * D
                    let dqp = dq + rowBase * ldq + h * D
                    // dP = dO Vᵀ, dV += Pᵀ dO, over the prefix columns and the own columns.
                    if Q > 0 {
                        BLAS.sgemm(transB: true, m: L, n: Q, k: D, a: dop, lda: ldo, b: vPre, ldb: ldkv, c: dS, ldc: W)
                        BLAS.sgemm(transA: true, m: Q, n: D, k: L, a: P, lda: W, b: dop, ldb: ldo, beta: 1, c: dvPre, ldc: ldkv)
                    }
                    BLAS.sgemm(transB: true, m: L, n: L, k: D, a: dop, lda: ldo, b: vOwn, ldb: ldkv, c: dS + Q, ldc: W)
                    BLAS.sgemm(transA: true, m: L, n: D, k: L, a: P + Q, lda: W, b: dop, ldb: ldo, beta: 1, c: dvOwn, ldc: ldkv)
                    // dS = P ⊙ (dP − rowsum(P ⊙ dP)) over each row's valid columns.
                    for i in 0..<L {
                        let pr = P + i * W, dr = dS + i * W, n = Q + i + 1
                        let dotPD = VectorOps.dot(pr, dr, n)
                        for j in 0..<n { dr[j] = pr[j] * (dr[j] - dotPD) }
                        if Q + L > n { (dr + n).update(repeating: 0, count: Q + L - n) }
                    }
                    // dQ = dS K/√D, dK += dSᵀ Q/√D.
                    BLAS.sgemm(m: L, n: D, k: L, alpha: scale, a: dS + Q, lda: W, b: kOwn, ldb: ldkv, c: dqp, ldc: ldq)
                    BLAS.sgemm(transA: true, m: L, n: D, k: L, alpha: scale, a: dS + Q, lda: W, b: qp, ldb: ldq, beta: 1, c: dkOwn, ldc: ldkv)
                    if Q > 0 {
                        BLAS.sgemm(m: L, n: D, k: Q, alpha: scale, a: dS, lda: W, b: kPre, ldb: ldkv, beta: 1, c: dqp, ldc: ldq)
                        BLAS.sgemm(transA: true, m: Q, n: D, k: L, alpha: scale, a: dS, lda: W, b: qp, ldb: ldq, beta: 1, c: dkPre, ldc: ldkv)
                    }
                }
            }
        }
    }
}
