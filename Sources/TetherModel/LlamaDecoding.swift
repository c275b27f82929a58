import TetherKernels

extension LlamaModel {
    /// A workspace for `rows` input rows of which `outputs` need logits (`outputs` ≤ `rows`).
    func decodeWorkspace(rows: Int, outputs: Int) -> DecodeWorkspace {
        if let w = decodeBuffers, w.rowCapacity >= rows, w.outputCapacity >= outputs { return w }
        let keepRows = decodeBuffers?.rowCapacity ?? 0, keepOutputs = decodeBuffers?.outputCapacity ?? 0
        decodeBuffers = nil
        let w = DecodeWorkspace(config: config, rows: max(rows, keepRows, 16), outputs: max(outputs, keepOutputs, 16))
        decodeBuffers = w
        return w
    }

    /// The cached forward over the `rows` tokens already staged in `w.tokens/slots/positions`:
    /// writes their keys/values into `cache`, and leaves in `w.logits` the logits of the
    /// `outputs` rows listed in `w.lastRows`. Prefill (many rows per slot) and decoding (one row per
    /// slot) are the same call; GEMMs run over all rows of all sequences at once.
    ///
    /// A decoding step (at most `splitGEMMRows` rows) borrows the BLAS budget (`BLASThreads.lend`)
    /// and splits every GEMM's output columns over it itself, as attention already was: with a
    /// few dozen rows OpenBLAS's own threading left its worker spinning through attention,
    /// norms and sampling. Given `packed` weights (packed from the current parameters), its GEMMs
    /// run on `PackedLinear` instead of OpenBLAS, which would re-pack every weight on every step.
    /// A prefill's tall GEMMs keep OpenBLAS's threading.
    func forwardCached(rows n: Int, outputs: Int, cache: KVCache, workspace w: DecodeWorkspace, packed: DecodeWeights? = nil) {
        if n <= Self.splitGEMMRows {
            BLASThreads.lend {
                forwardCached(rows: n, outputs: outputs, cache: cache, workspace: w, workers: $0, splitGEMMs: true, packed: packed)
            }
        } else {
            forwardCached(rows: n, outputs: outputs, cache: cache, workspace: w, workers: max(1, BLASThreads.current), splitGEMMs: false,
                          packed: nil)
        }
    }

    /// Rows up to which the cached forward splits its GEMMs itself (a decoding step of up to 128 sequences).
    static let splitGEMMRows = 128

    private func forwardCached(rows n: Int, outputs: Int, cache: KVCache, workspace w: DecodeWorkspace, workers budget: Int, splitGEMMs: Bool,
                               packed: DecodeWeights?) {
        let c = config, h = c.hiddenSize, qd = c.qDim, kv = c.kvDim, f = c.intermediateSize, qkvw = qd + 2 * kv
        let p = parameters.pointer
        let x = w.x.pointer, xn = w.normed.pointer, qkv = w.qkv.pointer
        let slots = w.slots.baseAddress!, positions = w.positions.baseAddress!
        /// `y (+)= input · Wᵀ` for the weight at parameter offset `weight`, whose packed form (if
        /// any) is at `packedAt` in `packed`.
        func linear(_ input: UnsafePointer<Float>, _ weight: Int, packedAt: Int?, _ y: UnsafeMutablePointer<Float>,
                    rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false) {
            if let packed, let packedAt {
                PackedLinear.forward(x: input, packed: packed.storage.pointer + packedAt, y: y, rows: rows, inFeatures: inFeatures,
                                     outFeatures: outFeatures, accumulate: accumulate, workers: budget)
            } else if splitGEMMs {
                BLAS.linearForward(x: input, weight: p + weight, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                   beta: accumulate ? 1 : 0, workers: budget)
            } else {
                BLAS.linearForward(x: input, weight: p + weight, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                   beta: accumulate ? 1 : 0)
            }
        }
        // Attention runs on as many threads as the process's BLAS budget.
        let workers = n >= 8 ? budget : 1
        if w.attnScratch.count < workers * cache.capacity { w.attnScratch = FloatBuffer(count: workers * cache.capacity) }
        Embedding.forward(tokens: w.tokens.baseAddress!, rows: n, table: p + embeddingOffset, dim: h, out: x)
        for (l, o) in layers.enumerated() {
            RMSNorm.forward(x: x, weight: p + o.inputNorm, rows: n, dim: h, eps: c.rmsNormEps, out: xn, rstd: nil)
            linear(xn, o.qkv, packedAt: packed?.layers[l].qkv, qkv, rows: n, inFeatures: h, outFeatures: qkvw)
            if let b = o.qkvBias { Bias.forward(qkv, bias: p + b, rows: n, dim: qkvw) }
            if let qn = o.qNorm, let kn = o.kNorm {
                QKNorm.forward(qkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                               qWeight: p + qn, kWeight: p + kn, eps: c.rmsNormEps, raw: nil, rstd: nil)
            }
            rope.apply(qkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, positions: positions)
            rope.apply(qkv + qd, rows: n, rowStride: qkvw, heads: c.numKeyValueHeads, positions: positions)
            let kBase = cache.keys.pointer + cache.layerOffset(l), vBase = cache.values.pointer + cache.layerOffset(l)
            for r in 0..<n {
                let at = (Int(slots[r]) * cache.capacity + Int(positions[r])) * kv
                (kBase + at).update(from: qkv + r * qkvw + qd, count: kv)
                (vBase + at).update(from: qkv + r * qkvw + qd + kv, count: kv)
            }
            CachedAttention.forward(q: qkv, ldq: qkvw, rows: n, slots: slots, positions: positions,
                                    keys: kBase, values: vBase, capacity: cache.capacity,
                                    heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                                    out: w.attn.pointer, ldo: qd, scratch: w.attnScratch.pointer, workers: workers,
                                    sharedPrefix: cache.sharedPrefix)
            linear(w.attn.pointer, o.o, packedAt: packed?.layers[l].o, x, rows: n, inFeatures: qd, outFeatures: h, accumulate: true)
            if let b = o.oBias { Bias.forward(x, bias: p + b, rows: n, dim: h) }
            RMSNorm.forward(x: x, weight: p + o.postNorm, rows: n, dim: h, eps: c.rmsNormEps, out: xn, rstd: nil)
            linear(xn, o.gateUp, packedAt: packed?.layers[l].gateUp, w.gateUp.pointer, rows: n, inFeatures: h, outFeatures: 2 * f)
            SwiGLU.forward(gateUp: w.gateUp.pointer, rows: n, dim: f, out: w.act.pointer)
            linear(w.act.pointer, o.down, packedAt: packed?.layers[l].down, x, rows: n, inFeatures: f, outFeatures: h, accumulate: true)
        }
        // Only the rows whose next token is wanted go through the final norm and the LM head.
        for i in 0..<outputs { (w.attn.pointer + i * h).update(from: x + w.lastRows[i] * h, count: h) }
        RMSNorm.forward(x: w.attn.pointer, weight: p + finalNormOffset, rows: outputs, dim: h, eps: c.rmsNormEps, out: xn, rstd: nil)
        linear(xn, lmHeadOffset, packedAt: packed?.lmHead, w.logits.pointer, rows: outputs, inFeatures: h, outFeatures: c.vocabSize)
    }

    /// Appends tokens to sequences held in `cache` and returns the logits after each entry's last
    /// token, `[entries.count, vocab]`. Each entry is (slot, tokens): a whole prompt for prefill,
    /// one sampled token per step for decoding; slots must be distinct within a call.
    public func extend(cache: KVCache, _ entries: [(slot: Int, tokens: [Int])]) throws -> [Float] {
        let rows = entries.reduce(0) { $0 + $1.tokens.count }
        let w = decodeWorkspace(rows: rows, outputs: entries.count)
        var r = 0
        for (i, e) in entries.enumerated() {
            precondition(e.slot >= 0 && e.slot < cache.slots, "slot \(e.slot) outside the cache (\(cache.slots) slots)")
            guard !e.tokens.isEmpty else { throw ModelError.emptySequence(index: i) }
            let start = cache.lengths[e.slot]
            let end = start + e.tokens.count
            guard end <= cache.capacity, end <= config.maxPositionEmbeddings else {
                throw ModelError.sequenceTooLong(length: end, maxPositions: min(cache.capacity, config.maxPositionEmbeddings))
            }
            try checkSlidingWindow(length: end)
            for (k, t) in e.tokens.enumerated() {
                guard t >= 0 && t < config.vocabSize else { throw ModelError.tokenOutOfRange(token: t, vocabSize: config.vocabSize) }
                w.tokens[r] = Int32(t); w.slots[r] = Int32(e.slot); w.positions[r] = Int32(start + k)
                r += 1
            }
            w.lastRows[i] = r - 1
        }
        for e in entries { cache.lengths[e.slot] += e.tokens.count }
        forwardCached(rows: rows, outputs: entries.count, cache: cache, workspace: w)
        return Array(UnsafeBufferPointer(start: w.logits.pointer, count: entries.count * config.vocabSize))
    }
}
