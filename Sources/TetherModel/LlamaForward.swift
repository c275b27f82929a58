import TetherKernels

extension LlamaModel {
    func activations(batch: Int, seqLen: Int) -> TrainingActivations {
        let chunk = lmHeadChunkRows(rows: batch * seqLen)
        if let a = training, a.batch == batch, a.seqLen == seqLen, a.lmHeadChunkRows == chunk { return a }
        training = nil  // free the old shape before allocating the new one
        let a = TrainingActivations(config: config, batch: batch, seqLen: seqLen, lmHeadChunkRows: chunk)
        training = a
        return a
    }

    /// Frees the activations the last training forward kept. A model used only for forwards whose
    /// backward never follows (a frozen reference) calls this so that its activations do not sit
    /// beside the policy's for the rest of the step.
    public func releaseActivations() { training = nil }

    /// The training forward over `a.tokens` (`[batch, seqLen]`) up to the final norm, keeping every
    /// activation. The LM head is not applied here: `lmHeadForward` runs it fused with the loss
    /// inputs, a block of rows at a time.
    func forwardTraining(_ a: TrainingActivations) {
        let c = config, n = a.rows, h = c.hiddenSize, qd = c.qDim, kv = c.kvDim, f = c.intermediateSize
        let qkvw = qd + 2 * kv
        let w = parameters.pointer
        let shape = CausalAttention.Shape(batch: a.batch, seqLen: a.seqLen, heads: c.numAttentionHeads,
                                          kvHeads: c.numKeyValueHeads, headDim: c.headDim)
        Embedding.forward(tokens: a.tokens.baseAddress!, rows: n, table: w + embeddingOffset, dim: h,
                          out: a.residual[0].pointer)
        for (l, o) in layers.enumerated() {
            let x = a.residual[l].pointer, qkv = a.qkv[l].pointer
            RMSNorm.forward(x: x, weight: w + o.inputNorm, rows: n, dim: h, eps: c.rmsNormEps,
                            out: a.normed1[l].pointer, rstd: a.rstd1[l].pointer)
            BLAS.linearForward(x: a.normed1[l].pointer, weight: w + o.qkv, y: qkv, rows: n, inFeatures: h, outFeatures: qkvw)
            if let b = o.qkvBias { Bias.forward(qkv, bias: w + b, rows: n, dim: qkvw) }
            if let qn = o.qNorm, let kn = o.kNorm {
                QKNorm.forward(qkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                               qWeight: w + qn, kWeight: w + kn, eps: c.rmsNormEps, raw: a.qkRaw[l].pointer, rstd: a.qkRstd[l].pointer)
            }
            rope.apply(qkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, positions: a.positions.baseAddress!)
            rope.apply(qkv + qd, rows: n, rowStride: qkvw, heads: c.numKeyValueHeads, positions: a.positions.baseAddress!)
            CausalAttention.forward(q: qkv, ldq: qkvw, k: qkv + qd, v: qkv + qd + kv, ldkv: qkvw,
                                    out: a.attnOut[l].pointer, ldo: qd, probs: a.probs[l].pointer,
                                    shape: shape, lengths: a.lengths.baseAddress!, workers: a.attentionWorkers)
            let mid = a.residualMid[l].pointer
            mid.update(from: x, count: n * h)
            BLAS.linearForward(x: a.attnOut[l].pointer, weight: w + o.o, y: mid, rows: n, inFeatures: qd, outFeatures: h, beta: 1)
            if let b = o.oBias { Bias.forward(mid, bias: w + b, rows: n, dim: h) }
            RMSNorm.forward(x: mid, weight: w + o.postNorm, rows: n, dim: h, eps: c.rmsNormEps,
                            out: a.normed2[l].pointer, rstd: a.rstd2[l].pointer)
            BLAS.linearForward(x: a.normed2[l].pointer, weight: w + o.gateUp, y: a.gateUp[l].pointer, rows: n, inFeatures: h, outFeatures: 2 * f)
            SwiGLU.forward(gateUp: a.gateUp[l].pointer, rows: n, dim: f, out: a.act[l].pointer)
            let next = a.residual[l + 1].pointer
            next.update(from: mid, count: n * h)
            BLAS.linearForward(x: a.act[l].pointer, weight: w + o.down, y: next, rows: n, inFeatures: f, outFeatures: h, beta: 1)
        }
        RMSNorm.forward(x: a.residual[layers.count].pointer, weight: w + finalNormOffset, rows: n, dim: h, eps: c.rmsNormEps,
                        out: a.normedFinal.pointer, rstd: a.rstdFinal.pointer)
        a.lmHeadScratchHoldsLogits = false
    }

    func load(_ a: TrainingActivations, tokens: [Int32], lengths: [Int], inputLength: Int, stride: Int) throws {
        for b in 0..<a.batch {
            a.lengths[b] = Int32(min(lengths[b], inputLength))
            for t in 0..<inputLength {
                a.tokens[b * inputLength + t] = tokens[b * stride + t]
                a.positions[b * inputLength + t] = Int32(t)
            }
        }
        try checkTokens(UnsafeBufferPointer(a.tokens))
        if inputLength > config.maxPositionEmbeddings {
            throw ModelError.sequenceTooLong(length: inputLength, maxPositions: config.maxPositionEmbeddings)
        }
        try checkSlidingWindow(length: inputLength)
    }

    /// Full logits `[batch, length, vocab]` of a batch (positions past a row's length are unspecified).
    /// For tests, evaluation and parity checks on small inputs: it materialises the whole
    /// `[rows, vocab]` tensor, which the learner's path (`sequenceLogProbs`) never does.
    public func logits(_ batch: TokenBatch) throws -> [Float] {
        let a = activations(batch: batch.batch, seqLen: batch.length)
        try load(a, tokens: batch.tokens, lengths: batch.lengths, inputLength: batch.length, stride: batch.length)
        forwardTraining(a)
        a.entropyComputed = false
        let V = config.vocabSize, h = config.hiddenSize
        return [Float](unsafeUninitializedCapacity: a.rows * V) { out, count in
            BLAS.linearForward(x: a.normedFinal.pointer, weight: parameters.pointer + lmHeadOffset, y: out.baseAddress!,
                               rows: a.rows, inFeatures: h, outFeatures: V)
            count = a.rows * V
        }
    }

    /// The RL/SFT forward: log p(tokens[b,t+1] | tokens[b,≤t]) for every position t < T−1, and the
    /// softmax entropy there when `entropy` is set. Runs the decoder over the first T−1 tokens of
    /// each row (the last token is only a target) and keeps the activations for `backward`. The LM
    /// head runs fused with the log-prob and entropy over blocks of rows (`lmHeadForward`), so no
    /// `[rows, vocab]` logits tensor is formed.
    public func sequenceLogProbs(_ batch: TokenBatch, entropy: Bool = false) throws -> SequenceLogProbs {
        precondition(batch.length >= 2, "sequenceLogProbs needs sequences of at least 2 tokens")
        let T1 = batch.length - 1
        let a = activations(batch: batch.batch, seqLen: T1)
        try load(a, tokens: batch.tokens, lengths: batch.lengths.map { max(0, $0 - 1) }, inputLength: T1, stride: batch.length)
        var mask = [Float](repeating: 0, count: a.rows)
        for b in 0..<batch.batch {
            for t in 0..<T1 {
                let valid = t + 1 < batch.lengths[b]
                let target = batch.tokens[b * batch.length + t + 1]
                if valid && (target < 0 || Int(target) >= config.vocabSize) {
                    throw ModelError.tokenOutOfRange(token: Int(target), vocabSize: config.vocabSize)
                }
                a.targets[b * T1 + t] = valid ? target : -1
                mask[b * T1 + t] = valid ? 1 : 0
            }
        }
        forwardTraining(a)
        lmHeadForward(a, entropy: entropy)
        return SequenceLogProbs(
            batch: batch.batch, positions: T1,
            logProbs: Array(UnsafeBufferPointer(start: a.logProbs.pointer, count: a.rows)),
            entropy: entropy ? Array(UnsafeBufferPointer(start: a.entropy.pointer, count: a.rows)) : nil,
            mask: mask)
    }
}
