import Foundation

/// A Hugging Face Llama checkpoint directory, as DESIGN.md fixes it:
///
///     config.json             LlamaConfig + architectures/model_type/… (transformers loads it)
///     model.safetensors       tensors named and shaped as in `ParameterLayout` ([out, in]); Tether
///                             writes F32, reads F32, BF16 or F16, one file or shards listed in
///                             model.safetensors.index.json
///     tokenizer.json          the tokenizer (`Tokenizer`; tokenizers loads it)
///     tokenizer_config.json   specials and chat template, for transformers' AutoTokenizer
///     chat_template.jinja     optional: the chat template, when the source had it as a file
///     trainer_state.json      optional: where a run stopped (`TrainerState`)
///     optimizer.safetensors   optional: AdamW moments in the same layout (`OptimizerState`)
///
/// Parameters are one contiguous Float32 array in layout order (llm.c), so saving is one pass and
/// loading fills the buffer by layout offsets. Loading either returns a complete checkpoint or
/// throws: a missing, unexpected or misshapen tensor, a truncated file or an unsupported dtype is
/// an error naming the tensor and file, never a partly filled model.
public struct LlamaCheckpoint: Sendable {
    public var config: LlamaConfig
    public var parameters: [Float]
    public var tokenizer: Tokenizer
    public var trainerState: TrainerState?
    public var optimizerState: OptimizerState?

    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"
    public static let tokenizerFile = "tokenizer.json"
    public static let tokenizerConfigFile = "tokenizer_config.json"
    public static let trainerStateFile = "trainer_state.json"
    public static let optimizerFile = "optimizer.safetensors"

    public init(config: LlamaConfig, parameters: [Float], tokenizer: Tokenizer,
                trainerState: TrainerState? = nil, optimizerState: OptimizerState? = nil) {
        self.config = config
        self.parameters = parameters
        self.tokenizer = tokenizer
        self.trainerState = trainerState
        self.optimizerState = optimizerState
    }

    public var layout: ParameterLayout { ParameterLayout(config: config) }

    // MARK: writing

    /// Writes the directory atomically (built under a temporary name, then renamed into place).
    public func write(to directory: String) throws {
        try parameters.withUnsafeBufferPointer { p in
            try Self.write(config: config, parameters: p, tokenizer: tokenizer,
                           trainerState: trainerState, optimizerState: optimizerState, to: directory)
        }
    }

    /// Writes from a parameter buffer the caller owns (a live model's) and moments it lends (a live
    /// optimizer's), streaming each to its file without copying it first.
    public static func write(
        config: LlamaConfig, parameters: UnsafeBufferPointer<Float>, tokenizer: Tokenizer,
        trainerState: TrainerState? = nil, optimizerState: (any OptimizerMoments)? = nil, to directory: String
    ) throws {
        try config.validate()
        let layout = ParameterLayout(config: config)
        guard parameters.count == layout.totalCount else {
            throw ModelError.invalidConfig("parameter buffer holds \(parameters.count) floats, the layout needs \(layout.totalCount)")
        }
        guard tokenizer.vocabSize <= config.vocabSize else {
            throw ModelError.invalidConfig("tokenizer has \(tokenizer.vocabSize) tokens but vocab_size is \(config.vocabSize)")
        }
        if let o = optimizerState {
            try o.withMoments { m, v in
                guard m.count == layout.totalCount, v.count == layout.totalCount else {
                    throw ModelError.invalidConfig("optimizer moments hold \(m.count)/\(v.count) floats, the layout needs \(layout.totalCount)")
                }
            }
        }
        try AtomicFile.replaceDirectory(at: directory) { tmp in
            try AtomicFile.write(config.huggingFaceJSON(), to: tmp + "/" + configFile)
            try SafeTensorsWriter.write(tensors(layout, parameters, prefix: ""), to: tmp + "/" + weightsFile)
            try tokenizer.write(to: tmp)
            if let trainerState { try AtomicFile.write(trainerState.jsonData(), to: tmp + "/" + trainerStateFile) }
            if let optimizerState { try optimizerState.write(layout: layout, to: tmp + "/" + optimizerFile) }
        }
    }

    static func tensors(_ layout: ParameterLayout, _ buffer: UnsafeBufferPointer<Float>, prefix: String) -> [SafeTensorsWriter.Tensor] {
        layout.entries.map { e in
            SafeTensorsWriter.Tensor(name: prefix + e.name, shape: e.shape,
                                     values: UnsafeBufferPointer(rebasing: buffer[e.offset..<(e.offset + e.count)]))
        }
    }

    // MARK: reading

    /// Only the architecture of a checkpoint directory (its `config.json`), without reading weights.
    public static func readConfig(from directory: String) throws -> LlamaConfig {
        let path = URL(fileURLWithPath: directory).standardizedFileURL.path + "/" + configFile
        return try LlamaConfig(huggingFaceJSON: readFile(path), path: path)
    }

    /// Reads a checkpoint directory; the optional training files are read when present.
    public static func read(from directory: String) throws -> LlamaCheckpoint {
        let dir = URL(fileURLWithPath: directory).standardizedFileURL.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.missingFile(path: dir)
        }
        let configPath = dir + "/" + configFile
        let config = try LlamaConfig(huggingFaceJSON: readFile(configPath), path: configPath)
        let tokenizerPath = dir + "/" + tokenizerFile
        let tokenizer = try Tokenizer.read(from: dir)
        guard tokenizer.vocabSize <= config.vocabSize else {
            throw ModelError.invalidTokenizer("\(tokenizerPath) has \(tokenizer.vocabSize) tokens but vocab_size is \(config.vocabSize)")
        }
        let layout = ParameterLayout(config: config)
        let weights = try openWeights(directory: dir)
        let parameters = try readParameters(weights, layout: layout, prefix: "", tiedEmbeddings: config.tieWordEmbeddings)

        var trainerState: TrainerState?
        let statePath = dir + "/" + trainerStateFile
        if FileManager.default.fileExists(atPath: statePath) {
            trainerState = try TrainerState(jsonData: readFile(statePath), path: statePath)
        }
        var optimizerState: OptimizerState?
        let optimizerPath = dir + "/" + optimizerFile
        if FileManager.default.fileExists(atPath: optimizerPath) {
            optimizerState = try OptimizerState.read(path: optimizerPath, layout: layout)
        }
        return LlamaCheckpoint(config: config, parameters: parameters, tokenizer: tokenizer,
                               trainerState: trainerState, optimizerState: optimizerState)
    }

    /// `model.safetensors`, else the shards its index lists.
    static func openWeights(directory dir: String) throws -> any TensorSource {
        let single = dir + "/" + weightsFile, index = dir + "/" + SafeTensorsShards.indexFile
        if !FileManager.default.fileExists(atPath: single), FileManager.default.fileExists(atPath: index) {
            return try SafeTensorsShards.open(indexPath: index)
        }
        return try SafeTensorsFile.open(path: single)
    }

    /// Fills one buffer in layout order from the tensors `prefix + name`. Every layout tensor must
    /// be present with its exact shape, and every tensor in the file must belong to the layout
    /// (except RoPE frequency buffers older transformers saved, which are derived, and, for tied
    /// embeddings, an `lm_head.weight` identical to the embedding).
    static func readParameters(_ file: some TensorSource, layout: ParameterLayout, prefix: String,
                               tiedEmbeddings: Bool = false) throws -> [Float] {
        for name in file.tensorNames {
            guard name.hasPrefix(prefix), layout.contains(String(name.dropFirst(prefix.count))) else {
                if prefix.isEmpty, name.hasSuffix("rotary_emb.inv_freq") { continue }
                if prefix.isEmpty, tiedEmbeddings, name == "lm_head.weight" { continue }
                throw ModelError.unexpectedTensor(name: name, file: file.path)
            }
        }
        let buffer = try fillLayout(file, layout: layout, prefix: prefix)
        if prefix.isEmpty, tiedEmbeddings, file["lm_head.weight"] != nil, let embed = layout["model.embed_tokens.weight"] {
            let head = try file.floats("lm_head.weight")
            guard head.count == embed.count,
                  zip(head, buffer[embed.offset..<(embed.offset + embed.count)]).allSatisfy({ $0.bitPattern == $1.bitPattern })
            else { throw ModelError.unexpectedTensor(name: "lm_head.weight", file: file.path + " (tie_word_embeddings is true but it differs from the embedding)") }
        }
        return buffer
    }

    /// Reads every layout tensor `prefix + name` into one fresh buffer; nothing is returned unless all are present and shaped right.
    static func fillLayout(_ file: some TensorSource, layout: ParameterLayout, prefix: String) throws -> [Float] {
        var buffer = [Float](repeating: 0, count: layout.totalCount)
        try buffer.withUnsafeMutableBufferPointer { dst in
            for e in layout.entries {
                let name = prefix + e.name
                guard let t = file[name] else { throw ModelError.missingTensor(name: name, file: file.path) }
                guard t.shape == e.shape else { throw ModelError.shapeMismatch(name: name, expected: e.shape, found: t.shape) }
                try file.readFloats(name, into: UnsafeMutableBufferPointer(rebasing: dst[e.offset..<(e.offset + e.count)]))
            }
        }
        return buffer
    }

    static func readFile(_ path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path: path) }
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ModelError.corruptFile(path: path, detail: "cannot read: \(error.localizedDescription)")
        }
    }
}
