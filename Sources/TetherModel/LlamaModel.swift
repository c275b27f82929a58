import TetherKernels

/// A Llama-family decoder (Touvron et al. 2023; Mistral, Qwen2 and Qwen3 are switches on it: see
/// `LlamaConfig`) whose every weight lives in one contiguous Float32 buffer laid out by
/// `ParameterLayout` (Hugging Face names, linear weights `[out, in]`); `gradients` mirrors it. The
/// training forward keeps its activations so that `backward` can follow.
///
/// Fused projections come for free from the layout: q, k, v are adjacent rows of one
/// `[(qDim + 2·kvDim), hidden]` matrix (their biases one vector) and gate, up of one
/// `[2·intermediate, hidden]` matrix, so each is one GEMM over all B·T rows.
///
/// `@unchecked Sendable`: a model is mutable state (weights, gradients, activation workspaces)
/// owned by one thread at a time — a learner or an actor — and moved between tasks, never shared.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let layout: ParameterLayout
    /// All weights, `layout.totalCount` floats.
    public let parameters: FloatBuffer
    /// dLoss/dparameters, same layout; `backward` adds into it, `zeroGradients` clears it.
    /// Allocated on first use: a model that only runs forwards (a frozen reference, an actor's
    /// copy) never holds this second buffer of its weights' size.
    public var gradients: FloatBuffer {
        if let g = gradientStorage { return g }
        let g = FloatBuffer(count: layout.totalCount)
        gradientStorage = g
        return g
    }
    private var gradientStorage: FloatBuffer?
    /// Whether `gradients` has been allocated (a model that never trained has none).
    public var holdsGradients: Bool { gradientStorage != nil }

    let rope: RoPETable
    let layers: [LayerOffsets]
    let embeddingOffset: Int
    let finalNormOffset: Int
    let lmHeadOffset: Int
    /// Scratch budget of the fused LM head (`lmHeadForward`): rows are processed in blocks of
    /// `lmHeadScratchBytes / (4·vocab)` (at least one), so the learner's logits memory is this
    /// much whatever the batch. 128 MiB is 682 rows at a 49k vocabulary, enough for the GEMMs to
    /// run at full speed; a 64-token vocabulary fits any realistic batch in one block.
    public var lmHeadScratchBytes = 128 << 20
    /// Floor of the training and forward-only workspaces (see `WorkspaceReservation`); nil lets
    /// them grow with the batches.
    public var workspaceReservation: WorkspaceReservation?
    /// Training and forward-only workspaces this model has allocated so far: one each for a run
    /// whose reservation covers its batches.
    public internal(set) var workspaceAllocations = 0
    var training: TrainingActivations?
    var forwardOnly: TrainingActivations?
    var decodeBuffers: DecodeWorkspace?
    var decodeWeights: DecodeWeights?
    var generationCache: KVCache?

    /// Offsets of one layer's tensors; the optional ones exist only in some families
    /// (q/k/v and o biases, Qwen3's per-head q/k norms).
    struct LayerOffsets {
        let inputNorm: Int, qkv: Int, o: Int, postNorm: Int, gateUp: Int, down: Int
        let qkvBias: Int?, oBias: Int?, qNorm: Int?, kNorm: Int?
    }

    /// A model with all-zero weights (to be filled by a checkpoint loader or `initializeRandom`).
    public init(config: LlamaConfig) throws {
        try config.validate()
        self.config = config
        let layout = ParameterLayout(config: config)
        self.layout = layout
        parameters = FloatBuffer(count: layout.totalCount)
        rope = RoPETable(inverseFrequencies: config.ropeInverseFrequencies(), maxPositions: config.maxPositionEmbeddings)
        func off(_ n: String) -> Int { layout[n]!.offset }
        func optional(_ n: String) -> Int? { layout[n]?.offset }
        var ls: [LayerOffsets] = []
        for l in 0..<config.numHiddenLayers {
            let p = "model.layers.\(l)."
            // The fused views rely on q,k,v and gate,up being adjacent in the layout.
            precondition(off(p + "self_attn.k_proj.weight") == off(p + "self_attn.q_proj.weight") + config.qDim * config.hiddenSize)
            precondition(off(p + "self_attn.v_proj.weight") == off(p + "self_attn.k_proj.weight") + config.kvDim * config.hiddenSize)
            precondition(off(p + "mlp.up_proj.weight") == off(p + "mlp.gate_proj.weight") + config.intermediateSize * config.hiddenSize)
            if let q = optional(p + "self_attn.q_proj.bias") {
                precondition(off(p + "self_attn.k_proj.bias") == q + config.qDim && off(p + "self_attn.v_proj.bias") == q + config.qDim + config.kvDim)
            }
            ls.append(LayerOffsets(
                inputNorm: off(p + "input_layernorm.weight"), qkv: off(p + "self_attn.q_proj.weight"),
                o: off(p + "self_attn.o_proj.weight"), postNorm: off(p + "post_attention_layernorm.weight"),
                gateUp: off(p + "mlp.gate_proj.weight"), down: off(p + "mlp.down_proj.weight"),
                qkvBias: optional(p + "self_attn.q_proj.bias"), oBias: optional(p + "self_attn.o_proj.bias"),
                qNorm: optional(p + "self_attn.q_norm.weight"), kNorm: optional(p + "self_attn.k_norm.weight")))
        }
        layers = ls
        embeddingOffset = off("model.embed_tokens.weight")
        finalNormOffset = off("model.norm.weight")
        lmHeadOffset = config.tieWordEmbeddings ? embeddingOffset : off("lm_head.weight")
    }

    /// A randomly initialised model, Hugging Face style: linear and embedding weights ~ N(0, 0.02²),
    /// norm weights 1, biases 0. Each tensor draws from its own stream of `seed`, so the result does not depend
    /// on tensor order.
    public convenience init(config: LlamaConfig, seed: UInt64, std: Double = 0.02) throws {
        try self.init(config: config)
        initializeRandom(seed: seed, std: std)
    }

    public func initializeRandom(seed: UInt64, std: Double = 0.02) {
        for (i, e) in layout.entries.enumerated() {
            let view = parameters.slice(e.offset, e.count)
            if e.name.hasSuffix(".bias") {
                view.update(repeating: 0)
            } else if e.shape.count == 1 {
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
        let h = Double(config.hiddenSize), q = Double(config.qDim), kv = Double(config.kvDim), f = Double(config.intermediateSize)
        let perLayer = h * (q + 2 * kv) + q * h + 3 * h * f
        return 2 * (Double(config.numHiddenLayers) * perLayer + h * Double(config.vocabSize))
    }

    /// Mistral's sliding window changes nothing for sequences that fit inside it; longer ones
    /// would need the banded mask, which is not implemented, so they are refused.
    func checkSlidingWindow(length: Int) throws {
        if let w = config.slidingWindow, length > w { throw ModelError.slidingWindowExceeded(length: length, window: w) }
    }

    func checkTokens(_ tokens: UnsafeBufferPointer<Int32>) throws {
        for t in tokens where t < 0 || Int(t) >= config.vocabSize {
            throw ModelError.tokenOutOfRange(token: Int(t), vocabSize: config.vocabSize)
        }
    }
}
