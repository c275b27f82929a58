import TetherKernels

/// The shared-prompt forward ("Prefix Grouper", Liu et al. 2025): the G sequences of a group
/// share their prompt, so the prompt's rows run through the decoder once per group and every
/// completion attends to them (`SharedPrefixAttention`); in the backward the prompt rows receive
/// the sum of the completions' gradients. Exact: the outputs and gradients are those of the plain
/// forward over `batch.plain`.
///
/// Rows: group g's prefix is its prompt without the last token (`P_g − 1` rows); sequence s has
/// a suffix of `C_s` rows, the prompt's last token followed by its completion without the last
/// token, so that suffix row k predicts completion token k. The last prompt token is thus run
/// once per sequence rather than once per group: it is the row whose logits score each
/// sequence's first completion token, and as a suffix row every LM-head row keeps one target
/// (one row per sequence, under 2 % of the rows at a 64-token completion). The suffixes are
/// packed without padding, so the decoder and the LM head run exactly one row per completion
/// token: no row of the step is spent on a shorter completion's padding.
extension LlamaModel {
    func sharedPrefixPlan(_ batch: GroupedTokenBatch) -> AttentionPlan {
        .sharedPrefix(SharedPrefixAttention.Shape(
            groups: batch.prompts.count, prefixLen: batch.prompts.map { $0.count - 1 }.max() ?? 0,
            sequences: batch.sequenceCount, suffixLen: batch.completions.map(\.count).max() ?? 0,
            suffixRows: batch.completions.reduce(0) { $0 + $1.count },
            heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads, headDim: config.headDim))
    }

    /// The shared-prompt counterpart of `sequenceLogProbs(_: TokenBatch)`: the same log-probs
    /// (and entropies) in the same `[sequences, T−1]` layout as for `batch.plain`, T = `batch.length`,
    /// where positions inside a prompt hold 0 with mask 0 (no completion token is predicted there).
    /// Keeps the activations for `backward(dLogProbs:dEntropy:)`, which takes coefficients in that
    /// layout and adds exactly the plain batch's gradients.
    public func sequenceLogProbs(_ batch: GroupedTokenBatch, entropy: Bool = false) throws -> SequenceLogProbs {
        let a = activations(plan: sharedPrefixPlan(batch))
        try stage(a, batch)
        return logProbs(a, entropy: entropy, sequences: batch.sequenceCount, positions: max(0, batch.length - 1))
    }

    /// Forward-only shared-prompt log-probs (see `tokenLogProbs(_: TokenBatch)`): the reference or
    /// proximal log-probs of a grouped batch at the cost of one prompt per group.
    public func tokenLogProbs(_ batch: GroupedTokenBatch, entropy: Bool = false) throws -> SequenceLogProbs {
        let a = forwardOnlyWorkspace(plan: sharedPrefixPlan(batch))
        try stage(a, batch)
        return logProbs(a, entropy: entropy, sequences: batch.sequenceCount, positions: max(0, batch.length - 1))
    }

    /// Tokens, positions, lengths, groups, targets and output positions of a grouped batch's rows.
    func stage(_ a: TrainingActivations, _ batch: GroupedTokenBatch) throws {
        guard case .sharedPrefix(let s) = a.plan, let outputIndex = a.outputIndex else {
            preconditionFailure("stage(GroupedTokenBatch) on a workspace without a shared-prefix plan")
        }
        let inputLength = batch.length - 1
        if inputLength > config.maxPositionEmbeddings {
            throw ModelError.sequenceTooLong(length: inputLength, maxPositions: config.maxPositionEmbeddings)
        }
        try checkSlidingWindow(length: inputLength)
        for (g, prompt) in batch.prompts.enumerated() {
            let q = prompt.count - 1
            a.lengths[g] = Int32(q)
            for t in 0..<s.prefixLen {
                let r = g * s.prefixLen + t
                a.tokens[r] = t < q ? prompt[t] : 0
                a.positions[r] = Int32(t)
                a.targets[r] = -1
                outputIndex[r] = -1
            }
        }
        var r = s.prefixRows
        for (seq, completion) in batch.completions.enumerated() {
            let g = batch.groupOf[seq], prompt = batch.prompts[g], q = prompt.count - 1, n = completion.count
            a.groupOf[seq] = Int32(g)
            a.lengths[s.groups + seq] = Int32(n)
            for k in 0..<n {
                let target = completion[k]
                if target < 0 || Int(target) >= config.vocabSize {
                    throw ModelError.tokenOutOfRange(token: Int(target), vocabSize: config.vocabSize)
                }
                a.tokens[r] = k == 0 ? prompt[q] : completion[k - 1]
                a.positions[r] = Int32(q + k)
                a.targets[r] = target
                outputIndex[r] = Int32(seq * inputLength + q + k)
                r += 1
            }
        }
        try checkTokens(UnsafeBufferPointer(rebasing: a.tokens[..<a.rows]))
        a.headRows = s.prefixRows..<s.rows
        a.outputCount = batch.sequenceCount * max(0, inputLength)
    }
}
