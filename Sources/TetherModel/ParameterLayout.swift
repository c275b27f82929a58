/// One named view into the contiguous parameter buffer (llm.c's `ParameterTensors`, made a table):
/// Hugging Face name, shape as stored in safetensors (linear weights `[out, in]`), and offset in floats.
public struct ParameterEntry: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// The table of every parameter of a Llama-family decoder inside one Float32 allocation (biases
/// and q/k norms only where the family has them).
///
/// All weights live in one buffer so that saving, broadcasting, clipping and the optimizer step are
/// one loop or one frame; gradients and AdamW moments use the same layout.
public struct ParameterLayout: Equatable, Sendable {
    public let entries: [ParameterEntry]
    public let totalCount: Int
    private let index: [String: Int]

    public init(config: LlamaConfig) {
        var entries: [ParameterEntry] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) {
            let e = ParameterEntry(name: name, shape: shape, offset: offset)
            entries.append(e)
            offset += e.count
        }
        let h = config.hiddenSize, q = config.qDim, kv = config.kvDim, f = config.intermediateSize
        add("model.embed_tokens.weight", [config.vocabSize, h])
        for l in 0..<config.numHiddenLayers {
            let p = "model.layers.\(l)."
            add(p + "input_layernorm.weight", [h])
            // q, k, v (and their biases) adjacent: one fused [q + 2·kv, hidden] projection.
            add(p + "self_attn.q_proj.weight", [q, h])
            add(p + "self_attn.k_proj.weight", [kv, h])
            add(p + "self_attn.v_proj.weight", [kv, h])
            if config.hasQKVBias {
                add(p + "self_attn.q_proj.bias", [q])
                add(p + "self_attn.k_proj.bias", [kv])
                add(p + "self_attn.v_proj.bias", [kv])
            }
            if config.hasQKNorm {
                add(p + "self_attn.q_norm.weight", [config.headDim])
                add(p + "self_attn.k_norm.weight", [config.headDim])
            }
            add(p + "self_attn.o_proj.weight", [h, q])
            if config.hasOutputBias { add(p + "self_attn.o_proj.bias", [h]) }
            add(p + "post_attention_layernorm.weight", [h])
            add(p + "mlp.gate_proj.weight", [f, h])
            add(p + "mlp.up_proj.weight", [f, h])
            add(p + "mlp.down_proj.weight", [h, f])
        }
        add("model.norm.weight", [h])
        if !config.tieWordEmbeddings { add("lm_head.weight", [config.vocabSize, h]) }
        self.entries = entries
        self.totalCount = offset
        self.index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    public subscript(name: String) -> ParameterEntry? { index[name].map { entries[$0] } }

    /// Whether a name is stored in the buffer; `lm_head.weight` is not when embeddings are tied.
    public func contains(_ name: String) -> Bool { index[name] != nil }
}
