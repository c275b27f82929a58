import TetherKernels

extension LlamaModel {
    func causalPlan(batch: Int, seqLen: Int) -> AttentionPlan {
        .causal(CausalAttention.Shape(batch: batch, seqLen: seqLen, heads: config.numAttentionHeads,
                                      kvHeads: config.numKeyValueHeads, headDim: config.headDim))
    }

    func activations(batch: Int, seqLen: Int) -> TrainingActivations {
        activations(plan: causalPlan(batch: batch, seqLen: seqLen))
    }

    /// The training activations for `plan`: the last workspace when the plan fits in it, else a
    /// new one.
    func activations(plan: AttentionPlan) -> TrainingActivations {
        workspace(\.training, plan: plan, keepsActivations: true)
    }

    /// The workspace of a forward-only pass for `plan` (kept apart from the training activations,
    /// so a reference or proximal forward between `sequenceLogProbs` and `backward` is harmless).
    func forwardOnlyWorkspace(plan: AttentionPlan) -> TrainingActivations {
        workspace(\.forwardOnly, plan: plan, keepsActivations: false)
    }

    /// Allocates the training workspace (or, with `training` false, the forward-only one) for
    /// `workspaceReservation` and maps all of it now. A learner calls it at start-up, with its
    /// optimizer state, so that the memory every step needs is taken before any sampling (a run
    /// that cannot have it stops at once) and the first step costs what later ones do. On this
    /// project's VMs a first touch costs ~3 s per GB.
    public func prefaultWorkspace(training: Bool, sharedPrompts: Bool) {
        let plan = sharedPrompts
            ? AttentionPlan.sharedPrefix(SharedPrefixAttention.Shape(groups: 1, prefixLen: 1, sequences: 1, suffixLen: 1, suffixRows: 1,
                                                                    heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads,
                                                                    headDim: config.headDim))
            : causalPlan(batch: 1, seqLen: 1)
        workspace(training ? \.training : \.forwardOnly, plan: plan, keepsActivations: training).prefault()
    }

    /// The workspace in `slot` laid over `plan` when the plan fits in it (its attention
    /// probabilities regrown alone if they are all that is short), else a new one sized from the
    /// old one and `workspaceReservation`, the old one freed first.
    private func workspace(_ slot: ReferenceWritableKeyPath<LlamaModel, TrainingActivations?>, plan: AttentionPlan,
                           keepsActivations: Bool) -> TrainingActivations {
        let chunk = lmHeadChunkRows(rows: max(plan.rows, workspaceReservation?.rows ?? 0))
        if let a = self[keyPath: slot], a.fits(plan, lmHeadChunkRows: chunk) {
            a.growProbabilities(toFit: plan)
            a.adopt(plan)
            return a
        }
        let previous = self[keyPath: slot]?.capacity ?? .init()
        self[keyPath: slot] = nil
        let a = TrainingActivations(config: config, plan: plan, lmHeadChunkRows: chunk, keepsActivations: keepsActivations,
                                    growingFrom: previous, reservation: workspaceReservation)
        self[keyPath: slot] = a
        workspaceAllocations += 1
        return a
    }

    /// The forward over `a.tokens` up to the final norm, keeping every activation when
    /// `a.keepsActivations` (the training forward), else reusing one layer's buffers (forward-only).
    /// The LM head is not applied here: `lmHeadForward` runs it fused with the loss inputs, a block
    /// of rows at a time.
    func forwardTraining(_ a: TrainingActivations) {
        let c = config, n = a.rows, h = c.hiddenSize, qd = c.qDim, kv = c.kvDim, f = c.intermediateSize
        let qkvw = qd + 2 * kv
        let w = parameters.pointer, keep = a.keepsActivations
        Embedding.forward(tokens: a.tokens.baseAddress!, rows: n, table: w + embeddingOffset, dim: h,
                          out: a.residual[0].pointer)
        for (l, o) in layers.enumerated() {
            let i = a.layer(l)
            let x = a.residual[i].pointer, qkv = a.qkv[i].pointer
            RMSNorm.forward(x: x, weight: w + o.inputNorm, rows: n, dim: h, eps: c.rmsNormEps,
                            out: a.normed.pointer, rstd: a.rstd1[i].pointer)
            BLAS.linearForward(x: a.normed.pointer, weight: w + o.qkv, y: qkv, rows: n, inFeatures: h, outFeatures: qkvw)
            if let b = o.qkvBias { Bias.forward(qkv, bias: w + b, rows: n, dim: qkvw) }
            if let qn = o.qNorm, let kn = o.kNorm {
                QKNorm.forward(qkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                               qWeight: w + qn, kWeight: w + kn, eps: c.rmsNormEps,
                               raw: keep ? a.qkRaw[i].pointer : nil, rstd: keep ? a.qkRstd[i].pointer : nil)
            }
            rope.apply(qkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, positions: a.positions.baseAddress!)
            rope.apply(qkv + qd, rows: n, rowStride: qkvw, heads: c.numKeyValueHeads, positions: a.positions.baseAddress!)
            a.plan.forward(qkv: qkv, qDim: qd, kvDim: kv, out: a.attnOut[i].pointer, probs: a.probs[i].pointer,
                           lengths: a.lengths.baseAddress!, groupOf: a.groupOf.baseAddress!,
                           workers: a.attentionWorkers, keepProbs: keep)
            // Forward-only: mid and next are x itself, the residual stream updated in place.
            let mid = a.residualMid[i].pointer
            if mid != x { mid.update(from: x, count: n * h) }
            BLAS.linearForward(x: a.attnOut[i].pointer, weight: w + o.o, y: mid, rows: n, inFeatures: qd, outFeatures: h, beta: 1)
            if let b = o.oBias { Bias.forward(mid, bias: w + b, rows: n, dim: h) }
            RMSNorm.forward(x: mid, weight: w + o.postNorm, rows: n, dim: h, eps: c.rmsNormEps,
                            out: a.normed.pointer, rstd: a.rstd2[i].pointer)
            BLAS.linearForward(x: a.normed.pointer, weight: w + o.gateUp, y: a.gateUp[i].pointer, rows: n, inFeatures: h, outFeatures: 2 * f)
            SwiGLU.forward(gateUp: a.gateUp[i].pointer, rows: n, dim: f, out: a.act.pointer)
            let next = a.residual[a.layer(l + 1)].pointer
            if next != mid { next.update(from: mid, count: n * h) }
            BLAS.linearForward(x: a.act.pointer, weight: w + o.down, y: next, rows: n, inFeatures: f, outFeatures: h, beta: 1)
        }
        RMSNorm.forward(x: a.residual[a.layer(layers.count)].pointer, weight: w + finalNormOffset, rows: n, dim: h, eps: c.rmsNormEps,
                        out: a.normedFinal.pointer, rstd: a.rstdFinal.pointer)
        a.lmHeadScratchHoldsLogits = false
    }

    func load(_ a: TrainingActivations, tokens: [Int32], lengths: [Int], inputLength: Int, stride: Int) throws {
        for b in 0..<lengths.count {
            a.lengths[b] = Int32(min(lengths[b], inputLength))
            for t in 0..<inputLength {
                a.tokens[b * inputLength + t] = tokens[b * stride + t]
                a.positions[b * inputLength + t] = Int32(t)
            }
        }
        try checkTokens(UnsafeBufferPointer(rebasing: a.tokens[..<a.rows]))
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
        let a = activations(batch: batch.batch, seqLen: batch.length - 1)
        try stage(a, batch)
        return logProbs(a, entropy: entropy, sequences: batch.batch, positions: batch.length - 1)
    }

    /// The same log-probs (and entropies) as `sequenceLogProbs`, by a forward-only pass: no
    /// gradient can follow, so each layer reuses one set of buffers and attention keeps no
    /// probabilities. Memory is `O(rows × width)` plus the LM head's block instead of the training
    /// forward's `O(layers × rows × width + layers × batch × heads × T²)`. For the reference and
    /// proximal log-probs of an RL step; leaves the activations of the last `sequenceLogProbs` intact.
    public func tokenLogProbs(_ batch: TokenBatch, entropy: Bool = false) throws -> SequenceLogProbs {
        precondition(batch.length >= 2, "tokenLogProbs needs sequences of at least 2 tokens")
        let a = forwardOnlyWorkspace(plan: causalPlan(batch: batch.batch, seqLen: batch.length - 1))
        try stage(a, batch)
        return logProbs(a, entropy: entropy, sequences: batch.batch, positions: batch.length - 1)
    }

    /// The forward every log-prob entry point runs once its rows are staged in `a`: the decoder,
    /// then the LM head fused with the log-prob (and entropy) over blocks of rows.
    func logProbs(_ a: TrainingActivations, entropy: Bool, sequences: Int, positions: Int) -> SequenceLogProbs {
        forwardTraining(a)
        lmHeadForward(a, entropy: entropy)
        return outputs(a, entropy: entropy, batch: sequences, positions: positions)
    }

    /// Inputs (the first T−1 tokens of each row), positions, lengths and targets of a plain batch.
    func stage(_ a: TrainingActivations, _ batch: TokenBatch) throws {
        let T1 = batch.length - 1
        try load(a, tokens: batch.tokens, lengths: batch.lengths.map { max(0, $0 - 1) }, inputLength: T1, stride: batch.length)
        for b in 0..<batch.batch {
            for t in 0..<T1 {
                let valid = t + 1 < batch.lengths[b]
                let target = batch.tokens[b * batch.length + t + 1]
                if valid && (target < 0 || Int(target) >= config.vocabSize) {
                    throw ModelError.tokenOutOfRange(token: Int(target), vocabSize: config.vocabSize)
                }
                a.targets[b * T1 + t] = valid ? target : -1
            }
        }
        a.headRows = 0..<a.rows
        a.outputCount = a.rows
    }

    /// The head rows' log-probs (and entropies) in the caller's `[batch, positions]` layout, 0 and
    /// mask 0 where there is no target.
    func outputs(_ a: TrainingActivations, entropy: Bool, batch: Int, positions: Int) -> SequenceLogProbs {
        let count = batch * positions
        var logProbs = [Float](repeating: 0, count: count), mask = logProbs
        var entropies: [Float]? = entropy ? logProbs : nil
        for r in a.headRows where a.targets[r] >= 0 {
            let o = a.outputIndex.map { Int($0[r]) } ?? r
            logProbs[o] = a.logProbs[r]
            entropies?[o] = a.entropy[r]
            mask[o] = 1
        }
        return SequenceLogProbs(batch: batch, positions: positions, logProbs: logProbs, entropy: entropies, mask: mask)
    }
}
