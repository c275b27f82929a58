import TetherKernels

/// Everything the training forward keeps for the backward, for a batch of `batch × seqLen` rows,
/// plus the backward's scratch. Buffers are allocated once per shape and reused across steps.
final class TrainingActivations {
    let batch: Int, seqLen: Int, rows: Int
    let tokens: UnsafeMutableBufferPointer<Int32>
    let positions: UnsafeMutableBufferPointer<Int32>
    let lengths: UnsafeMutableBufferPointer<Int32>
    let targets: UnsafeMutableBufferPointer<Int32>

    /// Residual stream entering layer l (`residual[numLayers]` enters the final norm).
    let residual: [FloatBuffer]
    /// Residual stream after attention, entering the MLP half of layer l.
    let residualMid: [FloatBuffer]
    let normed1: [FloatBuffer], rstd1: [FloatBuffer]
    let qkv: [FloatBuffer]
    /// Qwen3 only (empty otherwise): q and k before their per-head norms, `[rows, qDim + kvDim]`,
    /// and each head's rstd, `[rows, heads + kvHeads]`.
    let qkRaw: [FloatBuffer], qkRstd: [FloatBuffer]
    let probs: [FloatBuffer]
    let attnOut: [FloatBuffer]
    let normed2: [FloatBuffer], rstd2: [FloatBuffer]
    let gateUp: [FloatBuffer]
    let act: [FloatBuffer]
    let normedFinal: FloatBuffer, rstdFinal: FloatBuffer
    /// The fused LM head's `[lmHeadChunkRows, vocab]` block: logits in the forward, recomputed and
    /// overwritten by dLoss/dlogits in the backward (see `lmHeadForward`).
    /// Allocated on first use: a scalar-head model (reward model, critic) never touches it.
    lazy var lmHeadScratch = FloatBuffer(count: lmHeadChunkRows * vocab)
    let lmHeadChunkRows: Int
    let vocab: Int
    /// Whether `lmHeadScratch` still holds the logits of every row (the whole batch was one block),
    /// so the backward needs no recompute.
    var lmHeadScratchHoldsLogits = false
    let logSumExp: FloatBuffer
    let logProbs: FloatBuffer
    let entropy: FloatBuffer
    var entropyComputed = false
    /// Threads for the per-sequence attention loops: the process's BLAS budget at allocation.
    let attentionWorkers: Int

    // Backward scratch.
    let dResidual: FloatBuffer, dNormed: FloatBuffer, dQKV: FloatBuffer, dAttn: FloatBuffer
    let dGateUp: FloatBuffer, dAct: FloatBuffer, attnScratch: FloatBuffer
    /// One row of d(q, k before their norms) (Qwen3).
    let dQKRow: FloatBuffer

    init(config c: LlamaConfig, batch: Int, seqLen: Int, lmHeadChunkRows: Int) {
        self.batch = batch
        self.seqLen = seqLen
        rows = batch * seqLen
        let n = rows, h = c.hiddenSize, qd = c.qDim, qkvw = c.qDim + 2 * c.kvDim, f = c.intermediateSize, L = c.numHiddenLayers
        func ints(_ k: Int) -> UnsafeMutableBufferPointer<Int32> {
            let p = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(k, 1))
            p.initialize(repeating: 0)
            return p
        }
        tokens = ints(n); positions = ints(n); lengths = ints(batch); targets = ints(n)
        func bufs(_ count: Int, _ k: Int) -> [FloatBuffer] { (0..<count).map { _ in FloatBuffer(count: k) } }
        residual = bufs(L + 1, n * h)
        residualMid = bufs(L, n * h)
        normed1 = bufs(L, n * h); rstd1 = bufs(L, n)
        qkv = bufs(L, n * qkvw)
        qkRaw = c.hasQKNorm ? bufs(L, n * (qd + c.kvDim)) : []
        qkRstd = c.hasQKNorm ? bufs(L, n * (c.numAttentionHeads + c.numKeyValueHeads)) : []
        dQKRow = FloatBuffer(count: c.hasQKNorm ? qd + c.kvDim : 1)
        probs = bufs(L, batch * c.numAttentionHeads * seqLen * seqLen)
        attnOut = bufs(L, n * qd)
        normed2 = bufs(L, n * h); rstd2 = bufs(L, n)
        gateUp = bufs(L, n * 2 * f)
        act = bufs(L, n * f)
        normedFinal = FloatBuffer(count: n * h); rstdFinal = FloatBuffer(count: n)
        self.lmHeadChunkRows = lmHeadChunkRows
        vocab = c.vocabSize
        logSumExp = FloatBuffer(count: n); logProbs = FloatBuffer(count: n); entropy = FloatBuffer(count: n)
        dResidual = FloatBuffer(count: n * h); dNormed = FloatBuffer(count: n * h)
        dQKV = FloatBuffer(count: n * qkvw); dAttn = FloatBuffer(count: n * qd)
        dGateUp = FloatBuffer(count: n * 2 * f); dAct = FloatBuffer(count: n * f)
        attentionWorkers = max(1, min(BLASThreads.current, batch))
        attnScratch = FloatBuffer(count: attentionWorkers * seqLen * seqLen)
    }

    deinit {
        tokens.deallocate(); positions.deallocate(); lengths.deallocate(); targets.deallocate()
    }
}
