import TetherKernels

/// The LM head fused with the token log-prob, the entropy and their backward, a block of rows at a
/// time, so the learner never holds a `[rows, vocab]` logits tensor: for each block, logits = h·Wᵀ
/// go into one `[chunk, vocab]` scratch, the log-probs of the targets and the entropies are read
/// off it, and in the backward the block's logits are recomputed into the same scratch,
/// overwritten in place by dLoss/dlogits, and turned into dh = dz·W and dW += dzᵀ·h before the
/// next block. Only the per-row logsumexp and entropy survive the forward. This is the scheme of
/// Liger-Kernel's fused linear cross-entropy and of Wijmans et al. 2024, "Cut Your Losses in
/// Large-Vocabulary Language Models" (cut cross-entropy), with the RL losses' two per-row inputs
/// (log-prob and entropy) in place of the cross-entropy.
///
/// Peak memory of the head is `chunk × vocab` floats, with `chunk` set by `lmHeadScratchBytes`;
/// a batch that fits in one block (a small vocabulary) keeps its logits from the forward and runs
/// no recompute, which is the unfused computation exactly. Of a batch of several blocks, the
/// forward runs the short remainder block first and full blocks after it, and the backward runs
/// the blocks in reverse: the last block's logits are still in the scratch, so only
/// `rows − chunk` rows are recomputed rather than all of them.
extension LlamaModel {
    /// Rows per block of the fused LM head for a batch of `rows` rows.
    func lmHeadChunkRows(rows: Int) -> Int {
        max(1, min(rows, lmHeadScratchBytes / (MemoryLayout<Float>.stride * config.vocabSize)))
    }

    /// The blocks of the head rows `rows` in blocks of at most `chunk`: the remainder first, so the
    /// last block is a full one.
    static func lmHeadBlocks(_ rows: Range<Int>, chunk: Int) -> [Range<Int>] {
        guard !rows.isEmpty else { return [] }
        var blocks: [Range<Int>] = []
        var start = rows.lowerBound
        let remainder = rows.count % chunk
        if remainder > 0 { blocks.append(start..<(start + remainder)); start += remainder }
        while start < rows.upperBound { blocks.append(start..<(start + chunk)); start += chunk }
        return blocks
    }

    /// log p(target) (and the entropy when asked for) of every head row of `a.normedFinal` into
    /// `a.logProbs` / `a.entropy`, keeping `a.logSumExp` for `lmHeadBackward`.
    func lmHeadForward(_ a: TrainingActivations, entropy: Bool) {
        let h = config.hiddenSize, V = config.vocabSize
        let w = parameters.pointer + lmHeadOffset, z = a.lmHeadScratch.pointer
        let blocks = Self.lmHeadBlocks(a.headRows, chunk: a.lmHeadChunkRows)
        for block in blocks {
            let start = block.lowerBound, m = block.count
            BLAS.linearForward(x: a.normedFinal.pointer + start * h, weight: w, y: z, rows: m, inFeatures: h, outFeatures: V)
            TokenLogProb.forward(logits: z, targets: a.targets.baseAddress! + start, rows: m, vocab: V,
                                 logProbs: a.logProbs.pointer + start, entropy: entropy ? a.entropy.pointer + start : nil,
                                 logSumExp: a.logSumExp.pointer + start)
        }
        a.entropyComputed = entropy
        a.lmHeadScratchHoldsLogits = !blocks.isEmpty
    }

    /// dLoss/d(final-norm output) into `a.dNormed` and dLoss/dW added into the LM head's gradient,
    /// given dLoss/dlogp (and dLoss/dentropy) per row. Blocks whose rows all have zero coefficients
    /// (prompt and padding positions of an RL batch) cost nothing, and rows outside `a.headRows`
    /// get a zero dLoss/dh. `dLogProbs` and `dEntropy` are indexed by row. The blocks run last
    /// first, the last one on the logits the forward left in the scratch.
    func lmHeadBackward(_ a: TrainingActivations, dLogProbs: UnsafePointer<Float>, dEntropy: UnsafePointer<Float>?) {
        let n = a.headRows.upperBound, h = config.hiddenSize, V = config.vocabSize
        let w = parameters.pointer + lmHeadOffset, dw = gradients.pointer + lmHeadOffset, z = a.lmHeadScratch.pointer
        let targets = a.targets.baseAddress!
        a.dNormed.pointer.update(repeating: 0, count: a.headRows.lowerBound * h)
        (a.dNormed.pointer + n * h).update(repeating: 0, count: (a.rows - n) * h)
        for block in Self.lmHeadBlocks(a.headRows, chunk: a.lmHeadChunkRows).reversed() {
            let start = block.lowerBound, m = block.count
            let x = a.normedFinal.pointer + start * h, dx = a.dNormed.pointer + start * h
            // Only the first block processed (the last of the forward) can find its logits there;
            // after it the scratch holds dlogits, for every earlier block and a second backward.
            let holdsLogits = a.lmHeadScratchHoldsLogits
            a.lmHeadScratchHoldsLogits = false
            let active = block.contains { r in
                targets[r] >= 0 && (dLogProbs[r] != 0 || (dEntropy?[r] ?? 0) != 0)
            }
            guard active else {
                dx.update(repeating: 0, count: m * h)
                continue
            }
            if !holdsLogits {
                BLAS.linearForward(x: x, weight: w, y: z, rows: m, inFeatures: h, outFeatures: V)
            }
            TokenLogProb.backward(logits: z, targets: targets + start, logSumExp: a.logSumExp.pointer + start,
                                  entropy: dEntropy == nil ? nil : a.entropy.pointer + start,
                                  dLogProbs: dLogProbs + start, dEntropy: dEntropy.map { $0 + start },
                                  rows: m, vocab: V, dLogits: z)
            BLAS.linearBackward(x: x, weight: w, dy: z, dx: dx, dWeight: dw, rows: m, inFeatures: h, outFeatures: V)
        }
        a.lmHeadScratchHoldsLogits = false
    }
}
