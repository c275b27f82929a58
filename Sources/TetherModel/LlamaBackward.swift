import TetherKernels

extension LlamaModel {
    /// Adds dLoss/dparameters into `gradients`, given dLoss/dlogp per position (and optionally
    /// dLoss/dentropy per position), in the layout of the `SequenceLogProbs` returned by the last
    /// `sequenceLogProbs` (plain or grouped): `[batch, T−1]`.
    /// Every loss (SFT cross-entropy = −mean logp, GRPO/PPO, KL) reduces to these two vectors.
    public func backward(dLogProbs: [Float], dEntropy: [Float]? = nil) {
        guard let a = training else { preconditionFailure("backward called before sequenceLogProbs") }
        precondition(dLogProbs.count == a.outputCount, "dLogProbs has \(dLogProbs.count) entries, expected \(a.outputCount)")
        precondition(dEntropy == nil || a.entropyComputed, "dEntropy given but the forward did not compute entropy")
        precondition(dEntropy == nil || dEntropy!.count == a.outputCount, "dEntropy has the wrong size")
        // A grouped batch's rows are not its output positions: gather the coefficients per row.
        let rowLogProbs = a.outputIndex.map { gatherRows($0, rows: a.rows, dLogProbs) } ?? dLogProbs
        let rowEntropy = dEntropy.map { d in a.outputIndex.map { gatherRows($0, rows: a.rows, d) } ?? d }
        rowLogProbs.withUnsafeBufferPointer { dlp in
            if let rowEntropy {
                rowEntropy.withUnsafeBufferPointer { lmHeadBackward(a, dLogProbs: dlp.baseAddress!, dEntropy: $0.baseAddress!) }
            } else {
                lmHeadBackward(a, dLogProbs: dlp.baseAddress!, dEntropy: nil)
            }
        }
        backwardFromFinalNorm(a)
    }

    private func gatherRows(_ index: UnsafeMutableBufferPointer<Int32>, rows: Int, _ values: [Float]) -> [Float] {
        index[..<rows].map { $0 >= 0 ? values[Int($0)] : 0 }
    }

    /// Backward from dLoss/d(final-norm output) held in `a.dNormed` (the LM head's input; a scalar
    /// head such as a reward model's or a critic's starts here too).
    func backwardFromFinalNorm(_ a: TrainingActivations) {
        let c = config, n = a.rows, h = c.hiddenSize, qd = c.qDim, kv = c.kvDim, f = c.intermediateSize
        let qkvw = qd + 2 * kv
        let w = parameters.pointer, g = gradients.pointer
        let dx = a.dResidual.pointer, dn = a.dNormed.pointer
        precondition(a.keepsActivations, "backward through a forward-only workspace")
        dx.update(repeating: 0, count: n * h)
        RMSNorm.backward(x: a.residual[layers.count].pointer, weight: w + finalNormOffset, rstd: a.rstdFinal.pointer,
                         dOut: dn, rows: n, dim: h, dx: dx, dWeight: g + finalNormOffset)
        for (l, o) in layers.enumerated().reversed() {
            // MLP half: x_{l+1} = mid + down(swiglu(gateUp(norm2(mid)))). The inputs of the
            // down and gate/up projections are recomputed (see `TrainingActivations.normed`).
            SwiGLU.forward(gateUp: a.gateUp[l].pointer, rows: n, dim: f, out: a.act.pointer)
            BLAS.linearBackward(x: a.act.pointer, weight: w + o.down, dy: dx, dx: a.dAct.pointer,
                                dWeight: g + o.down, rows: n, inFeatures: f, outFeatures: h)
            SwiGLU.backward(gateUp: a.gateUp[l].pointer, dOut: a.dAct.pointer, rows: n, dim: f, dGateUp: a.dGateUp.pointer)
            RMSNorm.forward(x: a.residualMid[l].pointer, weight: w + o.postNorm, rows: n, dim: h, eps: c.rmsNormEps,
                            out: a.normed.pointer, rstd: nil)
            BLAS.linearBackward(x: a.normed.pointer, weight: w + o.gateUp, dy: a.dGateUp.pointer, dx: dn,
                                dWeight: g + o.gateUp, rows: n, inFeatures: h, outFeatures: 2 * f)
            RMSNorm.backward(x: a.residualMid[l].pointer, weight: w + o.postNorm, rstd: a.rstd2[l].pointer,
                             dOut: dn, rows: n, dim: h, dx: dx, dWeight: g + o.postNorm)
            // Attention half: mid = x_l + o(attn(rope(qknorm(qkv(norm1(x_l)) + b_qkv)))) + b_o.
            if let b = o.oBias { Bias.backward(dy: dx, rows: n, dim: h, dBias: g + b) }
            BLAS.linearBackward(x: a.attnOut[l].pointer, weight: w + o.o, dy: dx, dx: a.dAttn.pointer,
                                dWeight: g + o.o, rows: n, inFeatures: qd, outFeatures: h)
            let qkv = a.qkv[l].pointer, dqkv = a.dQKV.pointer
            a.plan.backward(qkv: qkv, qDim: qd, kvDim: kv, probs: a.probs[l].pointer, dOut: a.dAttn.pointer, dqkv: dqkv,
                            scratch: a.attnScratch.pointer, lengths: a.lengths.baseAddress!, groupOf: a.groupOf.baseAddress!,
                            workers: a.attentionWorkers)
            rope.apply(dqkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, positions: a.positions.baseAddress!, inverse: true)
            rope.apply(dqkv + qd, rows: n, rowStride: qkvw, heads: c.numKeyValueHeads, positions: a.positions.baseAddress!, inverse: true)
            if let qn = o.qNorm, let kn = o.kNorm {
                QKNorm.backward(dqkv, rows: n, rowStride: qkvw, heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                                qWeight: w + qn, kWeight: w + kn, raw: a.qkRaw[l].pointer, rstd: a.qkRstd[l].pointer,
                                dqWeight: g + qn, dkWeight: g + kn, scratch: a.dQKRow.pointer)
            }
            if let b = o.qkvBias { Bias.backward(dy: dqkv, rows: n, dim: qkvw, dBias: g + b) }
            RMSNorm.forward(x: a.residual[l].pointer, weight: w + o.inputNorm, rows: n, dim: h, eps: c.rmsNormEps,
                            out: a.normed.pointer, rstd: nil)
            BLAS.linearBackward(x: a.normed.pointer, weight: w + o.qkv, dy: dqkv, dx: dn,
                                dWeight: g + o.qkv, rows: n, inFeatures: h, outFeatures: qkvw)
            RMSNorm.backward(x: a.residual[l].pointer, weight: w + o.inputNorm, rstd: a.rstd1[l].pointer,
                             dOut: dn, rows: n, dim: h, dx: dx, dWeight: g + o.inputNorm)
        }
        Embedding.backward(tokens: a.tokens.baseAddress!, rows: n, dOut: dx, dim: h, dTable: g + embeddingOffset)
    }
}
