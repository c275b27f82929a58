import Foundation

/// The Llama-family architectures Tether runs: one decoder (RMSNorm, RoPE, grouped-query
/// attention, SwiGLU MLP) whose members differ only in a few switches. Each keeps its own
/// `model_type` and `architectures` so a checkpoint is written back as the family it came from.
public enum ModelFamily: String, CaseIterable, Sendable {
    case llama, mistral, qwen2, qwen3

    /// The `architectures` entry `transformers` instantiates for a causal LM of this family.
    public var architecture: String {
        switch self {
        case .llama: return "LlamaForCausalLM"
        case .mistral: return "MistralForCausalLM"
        case .qwen2: return "Qwen2ForCausalLM"
        case .qwen3: return "Qwen3ForCausalLM"
        }
    }
}

/// Llama 3.1's RoPE frequency scaling (`rope_type: "llama3"`): long wavelengths are stretched by
/// `factor`, short ones kept, and the band between interpolated smoothly. The fields keep the
/// values the config file gave, so writing the config back reproduces them.
public struct Llama3RopeScaling: Equatable, Sendable {
    public var factor: Double
    public var lowFreqFactor: Double
    public var highFreqFactor: Double
    public var originalMaxPositionEmbeddings: Int

    public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositionEmbeddings: Int) {
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }
}

/// A token id field that a config may hold as one id or as a list (Llama 3 instruct lists every
/// end-of-turn id under `eos_token_id`); the form is kept so the file round-trips unchanged.
public enum TokenIDs: Equatable, Sendable {
    case single(Int)
    case list([Int])

    public var all: [Int] {
        switch self {
        case .single(let id): return [id]
        case .list(let ids): return ids
        }
    }
}

/// The architecture hyper-parameters of a Llama-family decoder, with the field names of Hugging
/// Face's configs so that `config.json` round-trips through `transformers` unchanged.
public struct LlamaConfig: Equatable, Sendable {
    public var modelType: ModelFamily
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// Width of one attention head; `hidden_size / num_attention_heads` unless the config says
    /// otherwise (Qwen3 and some Mistral models set it explicitly).
    public var headDim: Int
    public var intermediateSize: Int
    public var ropeTheta: Float
    public var ropeScaling: Llama3RopeScaling?
    public var rmsNormEps: Float
    public var tieWordEmbeddings: Bool
    public var maxPositionEmbeddings: Int
    /// `attention_bias` of llama and qwen3: biases on q, k, v and o. Qwen2 always has q, k, v
    /// biases and never an o bias, whatever this says.
    public var attentionBias: Bool
    /// Mistral's sliding window: attention reaches back this many positions (nil: unlimited).
    /// Only sequences that fit inside it run (where it makes no difference); longer ones are an error.
    public var slidingWindow: Int?
    public var bosTokenId: Int?
    public var eosTokenIds: TokenIDs?

    public init(
        vocabSize: Int, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
        numKeyValueHeads: Int? = nil, intermediateSize: Int, ropeTheta: Float = 10_000,
        rmsNormEps: Float = 1e-5, tieWordEmbeddings: Bool = false, maxPositionEmbeddings: Int = 256,
        bosTokenId: Int? = nil, eosTokenId: Int? = nil,
        modelType: ModelFamily = .llama, headDim: Int? = nil, attentionBias: Bool = false,
        ropeScaling: Llama3RopeScaling? = nil, slidingWindow: Int? = nil
    ) {
        self.modelType = modelType
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        self.intermediateSize = intermediateSize
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.rmsNormEps = rmsNormEps
        self.tieWordEmbeddings = tieWordEmbeddings
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.attentionBias = attentionBias
        self.slidingWindow = slidingWindow
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenId.map(TokenIDs.single)
    }

    /// The first (or only) end-of-sequence id.
    public var eosTokenId: Int? {
        get { eosTokenIds?.all.first }
        set { eosTokenIds = newValue.map(TokenIDs.single) }
    }

    /// Width of all query heads together (the input of o_proj).
    public var qDim: Int { numAttentionHeads * headDim }
    public var kvDim: Int { numKeyValueHeads * headDim }
    /// Whether q, k and v projections carry biases (always for qwen2).
    public var hasQKVBias: Bool { modelType == .qwen2 || (attentionBias && modelType != .mistral) }
    /// Whether o_proj carries a bias (llama and qwen3 with `attention_bias`).
    public var hasOutputBias: Bool { attentionBias && (modelType == .llama || modelType == .qwen3) }
    /// Qwen3's per-head RMSNorm of queries and keys, applied before RoPE.
    public var hasQKNorm: Bool { modelType == .qwen3 }

    /// The largest size any dimension may have. Sizes come from files: bounding them keeps every Int
    /// product (layout, RoPE table) far from overflow.
    public static let dimensionLimit = 1 << 24

    /// Checks the relations the kernels rely on; a checkpoint that breaks one is rejected up front.
    public func validate() throws {
        func fail(_ why: String) -> ModelError { .invalidConfig(why) }
        guard vocabSize > 0, hiddenSize > 0, numHiddenLayers > 0, intermediateSize > 0 else {
            throw fail("vocab_size, hidden_size, num_hidden_layers and intermediate_size must be positive")
        }
        guard numAttentionHeads > 0 else { throw fail("num_attention_heads must be positive") }
        guard headDim > 0 else {
            throw fail("head_dim is \(headDim) (hidden_size \(hiddenSize) / num_attention_heads \(numAttentionHeads) unless given)")
        }
        guard numKeyValueHeads > 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw fail("num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        guard headDim % 2 == 0 else { throw fail("head_dim \(headDim) must be even for rotary embeddings") }
        guard maxPositionEmbeddings > 0 else { throw fail("max_position_embeddings must be positive") }
        guard ropeTheta.isFinite, ropeTheta > 0 else { throw fail("rope_theta \(ropeTheta) must be a positive number") }
        guard rmsNormEps.isFinite, rmsNormEps > 0 else { throw fail("rms_norm_eps \(rmsNormEps) must be a positive number") }
        if let s = ropeScaling {
            guard s.factor.isFinite, s.factor > 0, s.lowFreqFactor.isFinite, s.lowFreqFactor > 0,
                  s.highFreqFactor.isFinite, s.highFreqFactor > s.lowFreqFactor, s.originalMaxPositionEmbeddings > 0
            else {
                throw fail("llama3 rope_parameters need factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0")
            }
        }
        if let w = slidingWindow, w <= 0 { throw fail("sliding_window \(w) must be positive") }
        let limit = Self.dimensionLimit
        for (value, key) in [(vocabSize, "vocab_size"), (hiddenSize, "hidden_size"), (numHiddenLayers, "num_hidden_layers"),
                             (numAttentionHeads, "num_attention_heads"), (numKeyValueHeads, "num_key_value_heads"),
                             (headDim, "head_dim"), (intermediateSize, "intermediate_size"), (maxPositionEmbeddings, "max_position_embeddings")]
        where value > limit {
            throw fail("\(key) \(value) is beyond \(limit)")
        }
        let h = Double(hiddenSize), q = Double(numAttentionHeads) * Double(headDim), kv = Double(numKeyValueHeads) * Double(headDim)
        let paramCount = Double(vocabSize) * h * 2 + Double(numHiddenLayers) * (h * (2 * q + 2 * kv + 3 * Double(intermediateSize)) + q + 2 * kv + 3 * h)
        guard paramCount < 2e10 else { throw fail("the architecture has ~\(Int(paramCount)) parameters, beyond what this CPU trainer holds in memory") }
        guard Double(maxPositionEmbeddings) * Double(headDim) < 2e9 else {
            throw fail("max_position_embeddings \(maxPositionEmbeddings) × head_dim \(headDim) is too large a rotary table")
        }
    }

    /// RoPE inverse frequencies θ_i, i < head_dim/2, in float32 as `transformers` computes them:
    /// `θ_i = 1 / theta^(2i/D)`, then for `rope_type: llama3` (transformers'
    /// `_compute_llama3_parameters`, after Meta's Llama 3.1 reference code) with wavelength
    /// `λ = 2π/θ`, `L = original_max_position_embeddings`: λ > L/low → θ/factor; λ < L/high → θ;
    /// otherwise `(1−s)·θ/factor + s·θ` with `s = (L/λ − low)/(high − low)`.
    public func ropeInverseFrequencies() -> [Float] {
        let half = headDim / 2
        let base = Float(ropeTheta)
        var inv: [Float] = (0..<half).map { i in
            let exponent = Float(2 * i) / Float(headDim)
            return 1 / Float(pow(Double(base), Double(exponent)))
        }
        guard let s = ropeScaling else { return inv }
        let factor = Float(s.factor), low = Float(s.lowFreqFactor), high = Float(s.highFreqFactor)
        let oldContext = Float(s.originalMaxPositionEmbeddings)
        let lowFreqWavelen = Float(Double(s.originalMaxPositionEmbeddings) / s.lowFreqFactor)
        let highFreqWavelen = Float(Double(s.originalMaxPositionEmbeddings) / s.highFreqFactor)
        for i in 0..<half {
            let wavelen = 2 * Float.pi / inv[i]
            let scaled = wavelen > lowFreqWavelen ? inv[i] / factor : inv[i]
            if !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen) {
                let smooth = (oldContext / wavelen - low) / (high - low)
                inv[i] = (1 - smooth) * scaled / factor + smooth * scaled
            } else {
                inv[i] = scaled
            }
        }
        return inv
    }

    /// The reference workload of DESIGN.md: vocab 64, hidden 256, 4 layers, 4 heads, FFN 768, untied.
    public static let reference = LlamaConfig(
        vocabSize: 64, hiddenSize: 256, numHiddenLayers: 4, numAttentionHeads: 4,
        numKeyValueHeads: 4, intermediateSize: 768, maxPositionEmbeddings: 256)

    /// A model small enough for tests and the 2-core demo, with grouped-query attention.
    public static let tiny = LlamaConfig(
        vocabSize: 64, hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4,
        numKeyValueHeads: 2, intermediateSize: 192, maxPositionEmbeddings: 128)
}
