import TetherKernels

/// Moving weights between a live `LlamaModel` and a checkpoint directory: both use the same
/// `ParameterLayout`, so each direction is one copy of the contiguous buffer.
extension LlamaModel {
    /// A model holding the checkpoint's weights.
    public convenience init(checkpoint: LlamaCheckpoint) throws {
        try self.init(config: checkpoint.config)
        guard checkpoint.parameters.count == parameters.count else {
            throw ModelError.invalidConfig("checkpoint holds \(checkpoint.parameters.count) floats, the layout needs \(parameters.count)")
        }
        checkpoint.parameters.withUnsafeBufferPointer { parameters.pointer.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// Reads a checkpoint directory into a model; also returns its tokenizer and any training state.
    public static func load(from directory: String) throws -> (model: LlamaModel, checkpoint: LlamaCheckpoint) {
        var ckpt = try LlamaCheckpoint.read(from: directory)
        let model = try LlamaModel(checkpoint: ckpt)
        ckpt.parameters = []  // the model owns the weights now; don't keep a second copy alive
        return (model, ckpt)
    }

    /// Writes this model's weights and the optimizer's moments (atomically, see
    /// `LlamaCheckpoint.write`) without copying either first.
    public func save(to directory: String, tokenizer: Tokenizer = .standard,
                     trainerState: TrainerState? = nil, optimizerState: (any OptimizerMoments)? = nil) throws {
        try LlamaCheckpoint.write(config: config, parameters: UnsafeBufferPointer(parameters.buffer), tokenizer: tokenizer,
                                  trainerState: trainerState, optimizerState: optimizerState, to: directory)
    }
}
