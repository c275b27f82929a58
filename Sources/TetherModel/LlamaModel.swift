import TetherKernels

/// A Llama decoder (Touvron et al. 2023) whose every weight lives in one contiguous Float32 buffer
/// laid out by `ParameterLayout` (Hugging Face names, linear weights `[out, in]`); `gradients`
/// mirrors it. The training forward keeps its activations so that `backward` can follow.
///
/// Fused projections come for free from the layout: q, k, v are adjacent rows of one
/// `[(hidden + 2·kvDim), hidden]` matrix and gate, up of one `[2·intermediate, hidden]` matrix, so
/// each is one GEMM over all B·T rows.
///
/// `@unchecked Sendable`: a model is mutable state (weights, gradients, activation workspaces)
/// owned by one thread at a time — a learner or an actor — and moved between tasks, never shared.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let layout: ParameterLayout
    /// All weights, `layout.totalCount` floats.
    public let parameters: FloatBuffer
    /// dLoss/dparameters, same layout; `backward` adds into it, `zeroGradients` clears it.
    public let gradients: FloatBuffer

    let rope: RoPETable
    let layers: [LayerOffsets]
    let embeddingOffset: Int
    let finalNormOffset: Int
    let lmHeadOffset: Int
    var training: TrainingActivations?
    var decodeBuffers: DecodeWorkspace?
    var generationCache: KVCache?

    struct LayerOffsets {
        let inputNorm: Int, qkv: Int, o: Int, postNorm: Int, gateUp: Int, down: Int
    }

    /// A model with all-zero weights (to be filled by a checkpoint loader or `initializeRandom`).
    public init(config: LlamaConfig) throws {
        try config.validate()
        self.config = config
        let layout = ParameterLayout(config: config)
        self.layout = layout
        parameters = FloatBuffer(count: layout.totalCount)
        gradients = FloatBuffer(count: layout.totalCount)
        rope = RoPETable(headDim: config.headDim, base: config.ropeTheta, maxPositions: config.maxPositionEmbeddings)
        func off(_ n: String) -> Int { layout[n]!.offset }
        var ls: [LayerOffsets] = []
        for l in 0..<config.numHiddenLayers {
            let p = "model.layers.\(l)."
            // The fused views rely on q,k,v and gate,up being adjacent in the layout.
            precondition(off(p + "self_attn.k_proj.weight") == off(p + "self_attn.q_proj.weight") + config.hiddenSize * config.hiddenSize)
            precondition(off(p + "self_attn.v_proj.weight") == off(p + "self_attn.k_proj.weight") + config.kvDim * config.hiddenSize)
            precondition(off(p + "mlp.up_proj.weight") == off(p + "mlp.gate_proj.weight") + config.intermediateSize * config.hiddenSize)
            ls.append(LayerOffsets(
                inputNorm: off(p + "input_layernorm.weight"), qkv: off(p + "self_attn.q_proj.weight"),
                o: off(p + "self_attn.o_proj.weight"), postNorm: off(p + "post_attention_layernorm.weight"),
                gateUp: off(p + "mlp.gate_proj.weight"), down: off(p + "mlp.down_proj.weight")))
        }
        layers = ls
        embeddingOffset = off("model.embed_tokens.weight")
        finalNormOffset = off("model.norm.weight")
        lmHeadOffset = config.tieWordEmbeddings ? embeddingOffset : off("lm_head.weight")
    }

    /// A randomly initialised model, Hugging Face style: linear and embedding weights ~ N(0, 0.02²),
    /// norm weights 1. Each tensor draws from its own stream of `seed`, so the result does not depend
    /// on tensor order.
    public convenience init(config: LlamaConfig, seed: UInt64, std: Double = 0.02) throws {
        try self.init(config: config)
        initializeRandom(seed: seed, std: std)
    }

    public func initializeRandom(seed: UInt64, std: Double = 0.02) {
        for (i, e) in layout.entries.enumerated() {
            let view = parameters.slice(e.offset, e.count)
            if e.shape.count == 1 {
                view.update(repeating: 1)
            } else {
                var rng = SeededRandom(seed: seed, stream: UInt64(i))
                for j in 0..<e.count { view[j] = Float(rng.nextNormal() * std) }
            }
        }
    }

    /// The weights of one named tensor (a view into `parameters`).
    public func tensor(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        layout[name].map { parameters.slice($0.offset, $0.count) }
    }

    /// The gradient of one named tensor (a view into `gradients`).
    public func gradient(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        layout[name].map { gradients.slice($0.offset, $0.count) }
    }

    public func zeroGradients() { gradients.zero() }

    /// Copies every weight from a model of the same configuration (a reference or snapshot policy).
    public func copyParameters(from other: LlamaModel) {
        precondition(other.config == config, "copyParameters between different configurations")
        parameters.copy(from: other.parameters)
    }

    /// FLOPs of one training-forward token through the matmuls (2·params-ish, without attention),
    /// for throughput reporting.
    public var matmulFlopsPerToken: Double {
        let h = Double(config.hiddenSize), kv = Double(config.kvDim), f = Double(config.intermediateSize)
        let perLayer = h * (h + 2 * kv) + h * h + 3 * h * f
        return 2 * (Double(config.numHiddenLayers) * perLayer + h * Double(config.vocabSize))
    }

    func checkTokens(_ tokens: UnsafeBufferPointer<Int32>) throws {
        for t in tokens where t < 0 || Int(t) >= config.vocabSize {
            throw ModelError.tokenOutOfRange(token: Int(t), vocabSize: config.vocabSize)
        }
    }
}
