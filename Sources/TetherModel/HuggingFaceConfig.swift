import Foundation

/// `config.json` of a Hugging Face Llama-family checkpoint (llama, mistral, qwen2, qwen3), read as
/// `transformers` 5 writes it (`rope_parameters`) and as 4.x did (`rope_theta` + `rope_scaling`).
///
/// Reading is strict where a silent difference would change the logits: an activation, bias,
/// RoPE variant, sliding-window or mixture-of-experts setting the kernels do not implement is an
/// error naming the field. Defaults for absent keys are those of the family's `transformers`
/// config class (e.g. qwen3's head_dim 128, mistral's sliding_window 4096).
extension LlamaConfig {
    /// The `config.json` bytes, keys sorted so identical configs give identical files. The file
    /// keeps the family (`model_type`, `architectures`) and writes every field `transformers` needs
    /// to rebuild the same function; `rope_theta` is written both at the top level (transformers 4)
    /// and inside `rope_parameters` (transformers 5).
    public func huggingFaceJSON() throws -> Data {
        // Floats go through their shortest decimal, not their binary expansion.
        func decimal(_ f: Float) -> Double { Double("\(f)")! }
        var rope: [String: Any] = ["rope_type": "default", "rope_theta": decimal(ropeTheta)]
        if let s = ropeScaling {
            rope["rope_type"] = "llama3"
            rope["factor"] = s.factor
            rope["low_freq_factor"] = s.lowFreqFactor
            rope["high_freq_factor"] = s.highFreqFactor
            rope["original_max_position_embeddings"] = s.originalMaxPositionEmbeddings
        }
        var dict: [String: Any] = [
            "architectures": [modelType.architecture],
            "model_type": modelType.rawValue,
            "vocab_size": vocabSize,
            "hidden_size": hiddenSize,
            "intermediate_size": intermediateSize,
            "num_hidden_layers": numHiddenLayers,
            "num_attention_heads": numAttentionHeads,
            "num_key_value_heads": numKeyValueHeads,
            "head_dim": headDim,
            "hidden_act": "silu",
            "max_position_embeddings": maxPositionEmbeddings,
            "rms_norm_eps": decimal(rmsNormEps),
            "rope_theta": decimal(ropeTheta),
            "rope_parameters": rope,
            "rope_scaling": ropeScaling == nil ? NSNull() : rope,
            "tie_word_embeddings": tieWordEmbeddings,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "use_cache": true,
            "torch_dtype": "float32",
            "dtype": "float32",
            "pad_token_id": NSNull(),
            "bos_token_id": bosTokenId.map { $0 as Any } ?? NSNull(),
        ]
        switch eosTokenIds {
        case .single(let id): dict["eos_token_id"] = id
        case .list(let ids): dict["eos_token_id"] = ids
        case nil: dict["eos_token_id"] = NSNull()
        }
        switch modelType {
        case .llama:
            dict["attention_bias"] = attentionBias
            dict["mlp_bias"] = false
            dict["pretraining_tp"] = 1
        case .mistral:
            dict["sliding_window"] = slidingWindow.map { $0 as Any } ?? NSNull()
        case .qwen2, .qwen3:
            if modelType == .qwen3 { dict["attention_bias"] = attentionBias }
            dict["use_sliding_window"] = false
            dict["sliding_window"] = NSNull()
            dict["max_window_layers"] = numHiddenLayers
        }
        var data = try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Reads a Hugging Face `config.json`, rejecting what the kernels do not implement by name.
    public init(huggingFaceJSON data: Data, path: String = "config.json") throws {
        func invalid(_ why: String) -> ModelError { .invalidConfig("\(path): \(why)") }
        guard let dict = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw invalid("not a JSON object")
        }
        let fields = ConfigFields(dict: dict, path: path)
        let missing = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"]
            .filter { dict[$0] == nil || dict[$0] is NSNull }
        if !missing.isEmpty { throw invalid("missing key\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", "))") }

        let family = try Self.family(fields, invalid)
        if let act = try fields.string("hidden_act") ?? fields.string("hidden_activation"), act != "silu" {
            throw invalid("hidden_act is \(act.debugDescription); only \"silu\" is implemented")
        }
        if try fields.bool("mlp_bias") == true { throw invalid("mlp_bias is true; the MLP has no biases") }
        for key in ["num_experts", "num_local_experts", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size"] {
            if let v = dict[key], !(v is NSNull), !((v as? NSNumber)?.doubleValue == 0) {
                throw invalid("\(key) is set; mixture-of-experts layers are not implemented")
            }
        }
        if let q = dict["quantization_config"], !(q is NSNull) {
            throw invalid("quantization_config is set; only unquantized F32/BF16/F16 weights load")
        }
        if let types = dict["layer_types"], !(types is NSNull) {
            guard let list = types as? [String], list.allSatisfy({ $0 == "full_attention" }) else {
                throw invalid("layer_types lists layers other than \"full_attention\"; only full attention is implemented")
            }
        }

        let heads = try fields.int("num_attention_heads", required: true)!
        let hidden = try fields.int("hidden_size", required: true)!
        var config = LlamaConfig(
            vocabSize: try fields.int("vocab_size", required: true)!,
            hiddenSize: hidden,
            numHiddenLayers: try fields.int("num_hidden_layers", required: true)!,
            numAttentionHeads: heads,
            numKeyValueHeads: try fields.int("num_key_value_heads"),
            intermediateSize: try fields.int("intermediate_size", required: true)!,
            rmsNormEps: Float(try fields.double("rms_norm_eps") ?? 1e-6),
            tieWordEmbeddings: try fields.bool("tie_word_embeddings") ?? false,
            maxPositionEmbeddings: try fields.int("max_position_embeddings") ?? Self.defaultMaxPositions(family),
            bosTokenId: try fields.int("bos_token_id"),
            modelType: family,
            headDim: try fields.int("head_dim") ?? (family == .qwen3 ? 128 : (heads > 0 ? hidden / heads : 0)),
            attentionBias: try fields.bool("attention_bias") ?? false)
        config.eosTokenIds = try fields.tokenIDs("eos_token_id")
        try config.readRope(fields, dict, invalid)

        switch family {
        case .mistral:
            // MistralConfig's default window is 4096; an explicit null turns it off.
            config.slidingWindow = dict.keys.contains("sliding_window") ? try fields.int("sliding_window") : 4096
        case .qwen2, .qwen3:
            if try fields.bool("use_sliding_window") == true {
                throw invalid("use_sliding_window is true; sliding-window attention is only implemented for sequences within mistral's window")
            }
        case .llama:
            break
        }
        do { try config.validate() } catch let ModelError.invalidConfig(why) { throw invalid(why) }
        self = config
    }

    /// `model_type`, else the family of a listed architecture, else llama (what early Llama
    /// checkpoints implied). A listed architecture of another kind is an error.
    private static func family(_ fields: ConfigFields, _ invalid: (String) -> ModelError) throws -> ModelFamily {
        var family: ModelFamily?
        if let type = try fields.string("model_type") {
            guard let f = ModelFamily(rawValue: type) else {
                let known = ModelFamily.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                throw invalid("model_type is \(type.debugDescription); Tether implements \(known)")
            }
            family = f
        }
        if let archs = fields.dict["architectures"], !(archs is NSNull) {
            guard let list = archs as? [String] else { throw invalid("architectures is not a list of strings") }
            for a in list {
                guard let f = ModelFamily.allCases.first(where: { $0.architecture == a }), family == nil || family == f else {
                    throw invalid("architectures lists \(a.debugDescription); expected \((family ?? .llama).architecture)")
                }
                family = f
            }
        }
        return family ?? .llama
    }

    private static func defaultMaxPositions(_ family: ModelFamily) -> Int {
        switch family {
        case .llama: return 2048
        case .mistral: return 4096 * 32
        case .qwen2, .qwen3: return 32768
        }
    }

    /// RoPE from `rope_parameters` (transformers 5) or `rope_scaling` + `rope_theta` (4.x).
    private mutating func readRope(_ fields: ConfigFields, _ dict: [String: Any], _ invalid: (String) -> ModelError) throws {
        var params: [String: Any] = [:]
        var source = "rope_parameters"
        for key in ["rope_parameters", "rope_scaling"] {
            guard let v = dict[key], !(v is NSNull) else { continue }
            guard let d = v as? [String: Any] else { throw invalid("\(key) is not an object") }
            if d.values.contains(where: { $0 is [String: Any] }) {
                throw invalid("\(key) holds per-layer-type RoPE settings; one RoPE for all layers is implemented")
            }
            params = d
            source = key
            break
        }
        let sub = ConfigFields(dict: params, path: fields.path + " " + source)
        ropeTheta = Float(try sub.double("rope_theta") ?? fields.double("rope_theta") ?? 10_000)
        if let partial = try sub.double("partial_rotary_factor") ?? fields.double("partial_rotary_factor"), partial != 1 {
            throw invalid("partial_rotary_factor is \(partial); only full-width rotary embeddings are implemented")
        }
        let type = try sub.string("rope_type") ?? sub.string("type") ?? "default"
        switch type {
        case "default":
            ropeScaling = nil
        case "llama3":
            func need(_ key: String) throws -> Double {
                guard let v = try sub.double(key) else { throw invalid("\(source) of rope_type \"llama3\" lacks \(key)") }
                return v
            }
            ropeScaling = Llama3RopeScaling(
                factor: try need("factor"), lowFreqFactor: try need("low_freq_factor"),
                highFreqFactor: try need("high_freq_factor"),
                originalMaxPositionEmbeddings: try sub.int("original_max_position_embeddings")
                    ?? fields.int("original_max_position_embeddings") ?? maxPositionEmbeddings)
        default:
            throw invalid("\(source) rope_type \(type.debugDescription) is not implemented (default and llama3 are)")
        }
    }
}

/// Typed access to the keys of a parsed JSON object, each mismatch an error naming the key.
/// A JSON null counts as absent, as it does for `transformers`.
struct ConfigFields {
    let dict: [String: Any]
    let path: String

    /// JSONSerialization gives booleans as NSNumber of ObjC type `c` (char), numbers as `i`/`q`/`d`.
    private static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    private func wrong(_ key: String, _ what: String) -> ModelError {
        .invalidConfig("\(path): key \(key) is not \(what)")
    }

    private func number(_ key: String) throws -> NSNumber? {
        guard let v = dict[key], !(v is NSNull) else { return nil }
        // JSON booleans also bridge to NSNumber; they are not numbers here.
        guard let n = v as? NSNumber, !Self.isBoolean(n) else { throw wrong(key, "a number") }
        return n
    }

    func int(_ key: String, required: Bool = false) throws -> Int? {
        guard let n = try number(key) else {
            if required { throw ModelError.invalidConfig("\(path): missing key \(key)") }
            return nil
        }
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9.0e15, let i = Int(exactly: d) else { throw wrong(key, "an integer") }
        return i
    }

    func double(_ key: String) throws -> Double? {
        guard let n = try number(key) else { return nil }
        guard n.doubleValue.isFinite else { throw wrong(key, "a finite number") }
        return n.doubleValue
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = dict[key], !(v is NSNull) else { return nil }
        guard let n = v as? NSNumber, Self.isBoolean(n) else { throw wrong(key, "true or false") }
        return n.boolValue
    }

    func string(_ key: String) throws -> String? {
        guard let v = dict[key], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw wrong(key, "a string") }
        return s
    }

    /// One id or a list of ids, kept in the form given.
    func tokenIDs(_ key: String) throws -> TokenIDs? {
        guard let v = dict[key], !(v is NSNull) else { return nil }
        if let list = v as? [Any] {
            return .list(try list.indices.map { i in
                guard let id = try ConfigFields(dict: ["\(key)[\(i)]": list[i]], path: path).int("\(key)[\(i)]") else {
                    throw wrong("\(key)[\(i)]", "an integer")
                }
                return id
            })
        }
        return try int(key).map(TokenIDs.single)
    }
}
