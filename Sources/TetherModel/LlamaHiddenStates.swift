import TetherKernels

extension LlamaModel {
    /// The final-norm outputs `[batch, length, hidden]` of every position (the LM head's input), with
    /// the activations kept for `backward(dHiddenStates:)`. A scalar head on top of them is a reward
    /// model (Ouyang et al. 2022, InstructGPT §3.5: the policy architecture, unembedding replaced by
    /// a projection to a scalar) or a PPO critic (one value per position).
    public func finalHiddenStates(_ batch: TokenBatch) throws -> [Float] {
        precondition(batch.length >= 1, "finalHiddenStates needs sequences of at least 1 token")
        let a = activations(batch: batch.batch, seqLen: batch.length)
        try load(a, tokens: batch.tokens, lengths: batch.lengths, inputLength: batch.length, stride: batch.length)
        forwardTraining(a)
        a.entropyComputed = false
        return Array(UnsafeBufferPointer(start: a.normedFinal.pointer, count: a.rows * config.hiddenSize))
    }

    /// Adds dLoss/dparameters into `gradients` given dLoss/d(final hidden states), `[batch, length,
    /// hidden]` as returned by the last `finalHiddenStates`. The LM head receives no gradient.
    public func backward(dHiddenStates: [Float]) {
        guard let a = training else { preconditionFailure("backward(dHiddenStates:) called before finalHiddenStates") }
        precondition(dHiddenStates.count == a.rows * config.hiddenSize,
                     "dHiddenStates has \(dHiddenStates.count) entries, expected \(a.rows * config.hiddenSize)")
        dHiddenStates.withUnsafeBufferPointer { a.dNormed.pointer.update(from: $0.baseAddress!, count: $0.count) }
        backwardFromFinalNorm(a)
    }
}
