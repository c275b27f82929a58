import Foundation

/// What an import did, for the CLI's report.
public struct GGUFImportSummary: Sendable {
    public let config: LlamaConfig
    public let tensorCount: Int
    public let parameterCount: Int
    /// Seconds spent dequantizing into the parameter buffer, and writing the directory.
    public let dequantizeSeconds: Double
    public let writeSeconds: Double
}

/// Imports a llama.cpp GGUF file of the Llama architecture into a Hugging Face checkpoint
/// directory (DESIGN.md's checkpoint convention): `config.json` from the `llama.*` metadata,
/// `model.safetensors` in F32 under `transformers`' names, the tokenizer rebuilt from
/// `tokenizer.*` (`GGUFTokenizer`), and `generation_config.json`.
///
/// Two things differ between the layouts. GGUF lists dimensions innermost first, so a `[out, in]`
/// weight is `ne = [in, out]`; rows are the same bytes either way. And llama.cpp's converter
/// reorders the rows of `q_proj`/`k_proj` within each head from `transformers`' rotate-half RoPE
/// order to its interleaved one (convert_hf_to_gguf.py, `LlamaModel.permute`: reshape
/// `[heads, 2, head_dim/2, in]`, swap axes 1 and 2); the import undoes that while dequantizing.
public enum GGUFLlamaImporter {
    /// The GGUF tensor name of each Hugging Face name of `ParameterLayout` (`blk.N.` ↔ `model.layers.N.`).
    static let blockTensorNames: [(gguf: String, huggingFace: String)] = [
        ("attn_norm.weight", "input_layernorm.weight"),
        ("attn_q.weight", "self_attn.q_proj.weight"),
        ("attn_k.weight", "self_attn.k_proj.weight"),
        ("attn_v.weight", "self_attn.v_proj.weight"),
        ("attn_output.weight", "self_attn.o_proj.weight"),
        ("ffn_norm.weight", "post_attention_layernorm.weight"),
        ("ffn_gate.weight", "mlp.gate_proj.weight"),
        ("ffn_up.weight", "mlp.up_proj.weight"),
        ("ffn_down.weight", "mlp.down_proj.weight"),
    ]
    static let globalTensorNames: [String: String] = [
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    ]

    /// The Hugging Face name of a GGUF tensor, nil for a name outside the Llama architecture.
    public static func huggingFaceName(_ name: String) -> String? {
        if let n = globalTensorNames[name] { return n }
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1] else { return nil }
        guard let m = blockTensorNames.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(m.huggingFace)"
    }

    /// The `transformers` row of GGUF row `row` of a Q or K projection with `heads` heads of
    /// `headDim` rows each: llama.cpp stores head row `2i + half` where `transformers` has `half·headDim/2 + i`.
    @inline(__always)
    static func unpermutedRow(_ row: Int, headDim: Int) -> Int {
        let head = row / headDim, within = row % headDim
        return head * headDim + (within & 1) * (headDim / 2) + within / 2
    }

    /// The architecture from `general.architecture` and `llama.*`; anything the kernels do not
    /// implement (partial rotary, scaled RoPE, experts, a head size other than hidden/heads) is an error naming the key.
    public static func config(_ file: GGUFFile, tokenizer: GGUFTokenizer?) throws -> LlamaConfig {
        let path = file.path
        guard let arch = file.metadata["general.architecture"]?.string else {
            throw GGUFError.invalidMetadata(path: path, key: "general.architecture", detail: "missing or not a string")
        }
        guard arch == "llama" else { throw GGUFError.unsupportedArchitecture(path: path, architecture: arch) }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let v = file.metadata["llama." + key] else {
                if let value { return value }
                throw GGUFError.invalidMetadata(path: path, key: "llama." + key, detail: "missing")
            }
            guard let n = v.int, n > 0, n <= Int(Int32.max) else {
                throw GGUFError.invalidMetadata(path: path, key: "llama." + key,
                                                detail: v.array != nil ? "per-layer values are not supported" : "\(v) is not a positive integer")
            }
            return n
        }
        func float(_ key: String, default value: Double) throws -> Float {
            guard let v = file.metadata["llama." + key] else { return Float(value) }
            guard let d = v.double, d.isFinite, d > 0 else {
                throw GGUFError.invalidMetadata(path: path, key: "llama." + key, detail: "\(v) is not a positive number")
            }
            return Float(d)
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let kvHeads = try int("attention.head_count_kv", default: heads)
        guard hidden % heads == 0 else {
            throw GGUFError.invalidMetadata(path: path, key: "llama.attention.head_count", detail: "\(heads) does not divide embedding_length \(hidden)")
        }
        let headDim = hidden / heads
        for key in ["rope.dimension_count", "attention.key_length", "attention.value_length"] where file.metadata["llama." + key] != nil {
            let n = try int(key)
            guard n == headDim else {
                throw GGUFError.invalidMetadata(path: path, key: "llama." + key, detail: "\(n) differs from embedding_length / head_count = \(headDim); Tether's Llama rotates and attends over whole heads of that size")
            }
        }
        if let scaling = file.metadata["llama.rope.scaling.type"], scaling.string != "none" {
            throw GGUFError.invalidMetadata(path: path, key: "llama.rope.scaling.type", detail: "\(scaling): scaled RoPE is not implemented")
        }
        if let experts = file.metadata["llama.expert_count"], (experts.int ?? 1) > 0 {
            throw GGUFError.invalidMetadata(path: path, key: "llama.expert_count", detail: "\(experts): mixture-of-experts models are not implemented")
        }
        guard let embedding = file[tensor: "token_embd.weight"], embedding.dimensions.count == 2 else {
            throw GGUFError.invalidTensor(path: path, tensor: "token_embd.weight", detail: "missing or not two-dimensional")
        }
        let vocab = embedding.dimensions[1]
        if file.metadata["llama.vocab_size"] != nil, try int("vocab_size") != vocab {
            throw GGUFError.invalidMetadata(path: path, key: "llama.vocab_size", detail: "\(try int("vocab_size")) differs from token_embd.weight's \(vocab) rows")
        }
        if let tokenizer, tokenizer.tokens.count != vocab {
            throw GGUFError.invalidMetadata(path: path, key: "tokenizer.ggml.tokens", detail: "\(tokenizer.tokens.count) tokens, but token_embd.weight has \(vocab) rows")
        }
        let config = LlamaConfig(
            vocabSize: vocab, hiddenSize: hidden, numHiddenLayers: try int("block_count"), numAttentionHeads: heads,
            numKeyValueHeads: kvHeads, intermediateSize: try int("feed_forward_length"),
            ropeTheta: try float("rope.freq_base", default: 10_000),
            rmsNormEps: try float("attention.layer_norm_rms_epsilon", default: 1e-5),
            tieWordEmbeddings: file[tensor: "output.weight"] == nil,
            maxPositionEmbeddings: try int("context_length", default: 2048),
            bosTokenId: tokenizer?.bosTokenId, eosTokenId: tokenizer?.eosTokenId)
        do { try config.validate() } catch let ModelError.invalidConfig(why) {
            throw GGUFError.invalidMetadata(path: path, key: "llama.*", detail: why)
        }
        return config
    }

    /// Dequantizes every tensor into one buffer in `ParameterLayout` order, checking that the file
    /// holds exactly the layout's tensors with the layout's shapes.
    public static func parameters(_ file: GGUFFile, config: LlamaConfig,
                                  progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> [Float] {
        let layout = ParameterLayout(config: config)
        var sources: [String: GGUFTensorInfo] = [:]
        for t in file.tensors {
            guard let name = huggingFaceName(t.name), layout.contains(name) else {
                let why = t.name == "rope_freqs.weight" ? "RoPE frequency factors (Llama 3 scaled RoPE) are not implemented"
                    : "not part of a Llama model of this configuration"
                throw GGUFError.invalidTensor(path: file.path, tensor: t.name, detail: why)
            }
            sources[name] = t
        }
        var buffer = [Float](repeating: 0, count: layout.totalCount)
        try buffer.withUnsafeMutableBufferPointer { dst in
            for (i, e) in layout.entries.enumerated() {
                guard let t = sources[e.name] else {
                    throw GGUFError.invalidTensor(path: file.path, tensor: ggufName(e.name), detail: "missing (needed for \(e.name))")
                }
                guard t.shape == e.shape else {
                    throw GGUFError.invalidTensor(path: file.path, tensor: t.name, detail: "shape \(t.shape) (ne \(t.dimensions)), expected \(e.shape) for \(e.name)")
                }
                let slice = UnsafeMutableBufferPointer(rebasing: dst[e.offset..<(e.offset + e.count)])
                if e.name.hasSuffix("self_attn.q_proj.weight") || e.name.hasSuffix("self_attn.k_proj.weight") {
                    let headDim = config.headDim
                    try file.dequantize(t, into: slice) { unpermutedRow($0, headDim: headDim) }
                } else {
                    try file.dequantize(t, into: slice)
                }
                progress?(i + 1, layout.entries.count)
            }
        }
        return buffer
    }

    static func ggufName(_ huggingFace: String) -> String {
        if let g = globalTensorNames.first(where: { $0.value == huggingFace }) { return g.key }
        for m in blockTensorNames where huggingFace.hasSuffix("." + m.huggingFace) {
            let layer = huggingFace.dropFirst("model.layers.".count).prefix { $0 != "." }
            return "blk.\(layer).\(m.gguf)"
        }
        return huggingFace
    }

    /// Reads `source`, writes the checkpoint directory `directory` atomically (replacing one that
    /// exists). `progress` receives human-readable lines for a terminal.
    @discardableResult
    public static func importFile(_ source: String, to directory: String,
                                  progress: ((String) -> Void)? = nil) throws -> GGUFImportSummary {
        let file = try GGUFFile.open(path: source)
        let tokenizer = try GGUFTokenizer(file: file)
        let config = try Self.config(file, tokenizer: tokenizer)
        progress?("\(source): GGUF v\(file.version), \(file.tensors.count) tensors, \(config.numHiddenLayers) layers, hidden \(config.hiddenSize), vocab \(config.vocabSize)")
        let start = Date()
        var lastReport = -1
        let parameters = try Self.parameters(file, config: config) { done, total in
            let percent = done * 100 / total
            if percent / 10 != lastReport / 10 { lastReport = percent; progress?("dequantizing: \(percent)% (\(done)/\(total) tensors)") }
        }
        let dequantizeSeconds = Date().timeIntervalSince(start)
        let writeStart = Date()
        let layout = ParameterLayout(config: config)
        try AtomicFile.replaceDirectory(at: directory) { tmp in
            try AtomicFile.write(config.huggingFaceJSON(), to: tmp + "/" + LlamaCheckpoint.configFile)
            try parameters.withUnsafeBufferPointer { p in
                try SafeTensorsWriter.write(LlamaCheckpoint.tensors(layout, p, prefix: ""), to: tmp + "/" + LlamaCheckpoint.weightsFile)
            }
            try AtomicFile.write(Data(tokenizer.tokenizerJSON().utf8), to: tmp + "/" + LlamaCheckpoint.tokenizerFile)
            try AtomicFile.write(tokenizer.tokenizerConfigJSON(modelMaxLength: config.maxPositionEmbeddings),
                                 to: tmp + "/" + LlamaCheckpoint.tokenizerConfigFile)
            try AtomicFile.write(generationConfigJSON(tokenizer), to: tmp + "/generation_config.json")
        }
        let summary = GGUFImportSummary(config: config, tensorCount: file.tensors.count, parameterCount: layout.totalCount,
                                        dequantizeSeconds: dequantizeSeconds, writeSeconds: Date().timeIntervalSince(writeStart))
        progress?(String(format: "wrote %@: %d parameters (dequantized in %.2f s, written in %.2f s)",
                         directory, summary.parameterCount, summary.dequantizeSeconds, summary.writeSeconds))
        return summary
    }

    /// `generation_config.json`: the special ids `generate` needs (sampling settings stay at defaults).
    static func generationConfigJSON(_ tokenizer: GGUFTokenizer) throws -> Data {
        var dict: [String: Any] = ["_from_model_config": true]
        if let id = tokenizer.bosTokenId { dict["bos_token_id"] = id }
        if let id = tokenizer.eosTokenId { dict["eos_token_id"] = id }
        if let id = tokenizer.paddingTokenId { dict["pad_token_id"] = id }
        var data = try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
