import Foundation

/// `config.json` of a Hugging Face Llama checkpoint: `LlamaConfig`'s own fields plus the keys
/// `transformers` needs to pick the architecture (`architectures`, `model_type`) and the ones that
/// pin down the variants Tether implements (SiLU gate, no biases, default RoPE, head_dim = hidden/heads).
extension LlamaConfig {
    /// The fixed keys written beside the architecture sizes. `rope_theta` is written both at the
    /// top level (transformers 4) and inside `rope_parameters` (transformers 5).
    func huggingFaceExtras() -> [String: Any] {
        [
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "torch_dtype": "float32",
            "dtype": "float32",
            "hidden_act": "silu",
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "pretraining_tp": 1,
            "initializer_range": 0.02,
            "use_cache": true,
            "head_dim": headDim,
            "rope_scaling": NSNull(),
            "rope_parameters": ["rope_type": "default", "rope_theta": Double(ropeTheta)],
            "pad_token_id": NSNull(),
        ]
    }

    /// The `config.json` bytes, keys sorted so identical configs give identical files.
    public func huggingFaceJSON() throws -> Data {
        let own = try JSONEncoder().encode(self)
        var dict = (try JSONSerialization.jsonObject(with: own) as? [String: Any]) ?? [:]
        for (k, v) in huggingFaceExtras() { dict[k] = v }
        // Floats go through Double: write the shortest decimal of the Float, not its binary expansion.
        dict["rope_theta"] = Double("\(ropeTheta)")!
        dict["rms_norm_eps"] = Double("\(rmsNormEps)")!
        dict["rope_parameters"] = ["rope_type": "default", "rope_theta": Double("\(ropeTheta)")!]
        var data = try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Reads a Hugging Face `config.json`, rejecting Llama variants the kernels do not implement
    /// (other activations, biases, scaled RoPE, a head_dim that is not hidden/heads) by name.
    public init(huggingFaceJSON data: Data, path: String = "config.json") throws {
        func invalid(_ why: String) -> ModelError { .invalidConfig("\(path): \(why)") }
        guard var dict = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw invalid("not a JSON object")
        }
        if let type = dict["model_type"] as? String, type != "llama" {
            throw invalid("model_type is \(type.debugDescription), expected \"llama\"")
        }
        if let act = dict["hidden_act"] as? String, act != "silu" {
            throw invalid("hidden_act is \(act.debugDescription); only \"silu\" is implemented")
        }
        for key in ["attention_bias", "mlp_bias"] where (dict[key] as? Bool) == true {
            throw invalid("\(key) is true; Tether's Llama has no biases")
        }
        var rope = dict["rope_parameters"] as? [String: Any]
        if rope == nil { rope = dict["rope_scaling"] as? [String: Any] }
        if let rope {
            let type = (rope["rope_type"] ?? rope["type"]) as? String ?? "default"
            guard type == "default" else { throw invalid("rope type \(type.debugDescription) is not implemented (only default RoPE)") }
            if dict["rope_theta"] == nil, let theta = rope["rope_theta"] { dict["rope_theta"] = theta }
        }
        let config: LlamaConfig
        do {
            config = try JSONDecoder().decode(LlamaConfig.self, from: JSONSerialization.data(withJSONObject: dict))
        } catch let DecodingError.keyNotFound(key, _) {
            throw invalid("missing key \(key.stringValue)")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw invalid("key \(ctx.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type")
        } catch {
            throw invalid("\(error)")
        }
        if let hd = (dict["head_dim"] as? NSNumber)?.intValue, config.numAttentionHeads > 0, hd != config.headDim {
            throw invalid("head_dim \(hd) differs from hidden_size / num_attention_heads = \(config.headDim)")
        }
        do { try config.validate() } catch let ModelError.invalidConfig(why) { throw invalid(why) }
        self = config
    }
}
