import TetherKernels

/// How the rows of a forward attend to each other: every row of a padded `[batch, seqLen]` batch
/// causally within its sequence (`CausalAttention`), or groups of sequences sharing a prefix that
/// is computed once (`SharedPrefixAttention`). Everything else in a layer works row by row, so the
/// plan is the only thing that differs between the plain and the shared-prompt forward.
enum AttentionPlan: Equatable {
    case causal(CausalAttention.Shape)
    case sharedPrefix(SharedPrefixAttention.Shape)

    var rows: Int {
        switch self {
        case .causal(let s): return s.batch * s.seqLen
        case .sharedPrefix(let s): return s.rows
        }
    }

    var probsCount: Int {
        switch self {
        case .causal(let s): return s.probsCount
        case .sharedPrefix(let s): return s.probsCount
        }
    }

    var scratchPerWorker: Int {
        switch self {
        case .causal(let s): return max(1, s.seqLen * s.seqLen)
        case .sharedPrefix(let s): return s.scratchPerWorker
        }
    }

    /// Entries of the lengths table: one per sequence, or one per group (prefix) then one per
    /// sequence (suffix).
    var lengthCount: Int {
        switch self {
        case .causal(let s): return s.batch
        case .sharedPrefix(let s): return s.groups + s.sequences
        }
    }

    /// Independent units the attention loops can spread over threads.
    var parallelUnits: Int {
        switch self {
        case .causal(let s): return s.batch
        case .sharedPrefix(let s): return max(s.groups, s.sequences)
        }
    }

    /// Attention of one layer over the fused `[rows, qDim + 2·kvDim]` projection output.
    /// `groupOf` is read by the shared-prefix plan only.
    func forward(
        qkv: UnsafePointer<Float>, qDim: Int, kvDim: Int, out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
        lengths: UnsafePointer<Int32>, groupOf: UnsafePointer<Int32>, workers: Int, keepProbs: Bool
    ) {
        let ld = qDim + 2 * kvDim
        switch self {
        case .causal(let s):
            CausalAttention.forward(q: qkv, ldq: ld, k: qkv + qDim, v: qkv + qDim + kvDim, ldkv: ld, out: out, ldo: qDim,
                                    probs: probs, shape: s, lengths: lengths, workers: workers, keepProbs: keepProbs)
        case .sharedPrefix(let s):
            SharedPrefixAttention.forward(q: qkv, ldq: ld, k: qkv + qDim, v: qkv + qDim + kvDim, ldkv: ld, out: out, ldo: qDim,
                                          probs: probs, shape: s, prefixLengths: lengths, suffixLengths: lengths + s.groups,
                                          groupOf: groupOf, workers: workers, keepProbs: keepProbs)
        }
    }

    /// Backward of `forward` into the fused `dqkv` rows (overwritten).
    func backward(
        qkv: UnsafePointer<Float>, qDim: Int, kvDim: Int, probs: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
        dqkv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
        lengths: UnsafePointer<Int32>, groupOf: UnsafePointer<Int32>, workers: Int
    ) {
        let ld = qDim + 2 * kvDim
        switch self {
        case .causal(let s):
            CausalAttention.backward(q: qkv, ldq: ld, k: qkv + qDim, v: qkv + qDim + kvDim, ldkv: ld, probs: probs, dOut: dOut,
                                     ldo: qDim, dq: dqkv, dk: dqkv + qDim, dv: dqkv + qDim + kvDim, scratch: scratch,
                                     shape: s, lengths: lengths, workers: workers)
        case .sharedPrefix(let s):
            SharedPrefixAttention.backward(q: qkv, ldq: ld, k: qkv + qDim, v: qkv + qDim + kvDim, ldkv: ld, probs: probs, dOut: dOut,
                                           ldo: qDim, dq: dqkv, dk: dqkv + qDim, dv: dqkv + qDim + kvDim, scratch: scratch,
                                           shape: s, prefixLengths: lengths, suffixLengths: lengths + s.groups,
                                           groupOf: groupOf, workers: workers)
        }
    }
}
