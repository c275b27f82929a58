import Foundation
import TetherModel
import XCTest

/// `config.json` of every Llama-family form: what is read, what is written back, and that
/// everything the kernels do not implement is refused with the field named.
final class ModelFamilyConfigTests: XCTestCase {
    static let sizes = #""vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48"#

    func parse(_ extra: String) throws -> LlamaConfig {
        try LlamaConfig(huggingFaceJSON: Data("{\(Self.sizes)\(extra.isEmpty ? "" : ", " + extra)}".utf8), path: "c.json")
    }

    func expectInvalid(_ extra: String, naming words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(extra), file: file, line: line) { e in
            guard case .invalidConfig(let why)? = e as? ModelError else { return XCTFail("unexpected error \(e)", file: file, line: line) }
            for w in words { XCTAssertTrue(why.contains(w), "\(why) does not name \(w)", file: file, line: line) }
        }
    }

    func testFamiliesAndTheirDefaults() throws {
        let llama = try parse("")
        XCTAssertEqual(llama.modelType, .llama)
        XCTAssertEqual(llama.headDim, 8)
        XCTAssertFalse(llama.hasQKVBias || llama.hasOutputBias || llama.hasQKNorm)
        XCTAssertNil(llama.slidingWindow)

        let viaArchitectures = try parse(#""architectures": ["Qwen2ForCausalLM"]"#)
        XCTAssertEqual(viaArchitectures.modelType, .qwen2)
        XCTAssertTrue(viaArchitectures.hasQKVBias)
        XCTAssertFalse(viaArchitectures.hasOutputBias)
        XCTAssertEqual(try parse(#""model_type": "llama", "architectures": null"#).modelType, .llama)

        let qwen3 = try parse(#""model_type": "qwen3""#)
        XCTAssertEqual(qwen3.headDim, 128, "Qwen3Config's default head_dim")
        XCTAssertTrue(qwen3.hasQKNorm)
        XCTAssertFalse(qwen3.hasQKVBias)
        XCTAssertEqual(try parse(#""model_type": "qwen3", "attention_bias": true"#).hasOutputBias, true)

        XCTAssertEqual(try parse(#""model_type": "mistral""#).slidingWindow, 4096, "MistralConfig's default window")
        XCTAssertNil(try parse(#""model_type": "mistral", "sliding_window": null"#).slidingWindow)
        XCTAssertFalse(try parse(#""model_type": "mistral", "attention_bias": true"#).hasQKVBias, "mistral has no biases")

        let biased = try parse(#""attention_bias": true, "head_dim": 16"#)
        XCTAssertTrue(biased.hasQKVBias && biased.hasOutputBias)
        XCTAssertEqual(biased.qDim, 64)
        XCTAssertEqual(ParameterLayout(config: biased)["model.layers.0.self_attn.o_proj.weight"]?.shape, [32, 64])
        XCTAssertEqual(ParameterLayout(config: biased)["model.layers.1.self_attn.q_proj.bias"]?.shape, [64])
    }

    func testRopeInBothTransformersForms() throws {
        let v5 = try parse(#""rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#)
        let v4 = try parse(#""rope_theta": 500000, "rope_scaling": {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}"#)
        XCTAssertEqual(v5, v4)
        XCTAssertEqual(v5.ropeTheta, 500000)
        XCTAssertEqual(v5.ropeScaling, Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192))
        XCTAssertEqual(try parse(#""rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}"#).ropeTheta, 1_000_000)
        XCTAssertEqual(try parse(#""rope_theta": 12345.0, "rope_scaling": null"#).ropeTheta, 12345)
        // Missing original_max_position_embeddings falls back to max_position_embeddings, as transformers does.
        XCTAssertEqual(try parse(#""max_position_embeddings": 77, "rope_scaling": {"rope_type": "llama3", "factor": 2.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}"#)
            .ropeScaling?.originalMaxPositionEmbeddings, 77)
    }

    /// With head_dim 8 and θ = 500000 the wavelengths are ≈ 6.3, 167, 4443, 1.2e5: against an
    /// original context of 16 (band 4…16) the first is smoothed, the rest divided by the factor.
    func testLlama3FrequenciesCoverEveryBand() throws {
        var c = try parse(#""rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}"#)
        let plain = c.ropeInverseFrequencies()
        c.ropeScaling = Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16)
        let scaled = c.ropeInverseFrequencies()
        for i in 1..<4 { XCTAssertEqual(scaled[i], plain[i] / 8, accuracy: plain[i] * 1e-6) }
        let wavelen = 2 * Float.pi / plain[0], smooth = (16 / wavelen - 1) / 3
        XCTAssertEqual(scaled[0], (1 - smooth) * plain[0] / 8 + smooth * plain[0], accuracy: 1e-6)
        XCTAssertNotEqual(scaled[0], plain[0])
        XCTAssertNotEqual(scaled[0], plain[0] / 8)
        c.ropeScaling = Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192)
        XCTAssertEqual(c.ropeInverseFrequencies()[0], plain[0], "short wavelengths are kept")
    }

    func testEOSAsIntOrListRoundTrips() throws {
        for eos in ["2", "[2, 7, 9]", "null"] {
            let c = try parse(#""eos_token_id": \#(eos), "bos_token_id": 1"#)
            XCTAssertEqual(try LlamaConfig(huggingFaceJSON: c.huggingFaceJSON()), c)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: c.huggingFaceJSON()) as? [String: Any])
            switch eos {
            case "2": XCTAssertEqual(json["eos_token_id"] as? Int, 2)
            case "null": XCTAssertTrue(json["eos_token_id"] is NSNull)
            default: XCTAssertEqual(json["eos_token_id"] as? [Int], [2, 7, 9])
            }
        }
        XCTAssertEqual(try parse(#""eos_token_id": [2, 7]"#).eosTokenIds, .list([2, 7]))
        XCTAssertEqual(try parse(#""eos_token_id": [2, 7]"#).eosTokenId, 2)
        XCTAssertEqual(try parse(#""eos_token_id": 5"#).eosTokenIds, .single(5))
    }

    func testEveryFamilyWritesItselfBack() throws {
        for family in ModelFamily.allCases {
            let c = try parse(#""model_type": "\#(family.rawValue)", "head_dim": 16, "tie_word_embeddings": true, "rms_norm_eps": 1e-6"#)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: c.huggingFaceJSON()) as? [String: Any])
            XCTAssertEqual(json["model_type"] as? String, family.rawValue)
            XCTAssertEqual(json["architectures"] as? [String], [family.architecture])
            XCTAssertEqual(json["head_dim"] as? Int, 16)
            XCTAssertEqual(try LlamaConfig(huggingFaceJSON: c.huggingFaceJSON()), c, family.rawValue)
        }
    }

    func testWhatIsNotImplementedIsRefusedByName() {
        expectInvalid(#""model_type": "gemma""#, naming: ["model_type", "gemma"])
        expectInvalid(#""model_type": "llama", "architectures": ["LlamaForSequenceClassification"]"#, naming: ["architectures", "LlamaForSequenceClassification"])
        expectInvalid(#""model_type": "qwen2", "architectures": ["LlamaForCausalLM"]"#, naming: ["architectures"])
        expectInvalid(#""hidden_act": "gelu""#, naming: ["hidden_act", "gelu"])
        expectInvalid(#""mlp_bias": true"#, naming: ["mlp_bias"])
        expectInvalid(#""rope_parameters": {"rope_type": "yarn", "factor": 4.0}"#, naming: ["rope_type", "yarn"])
        expectInvalid(#""rope_scaling": {"type": "linear", "factor": 2.0}"#, naming: ["rope_scaling", "linear"])
        expectInvalid(#""rope_scaling": {"type": "dynamic", "factor": 2.0}"#, naming: ["dynamic"])
        expectInvalid(#""rope_parameters": {"rope_type": "llama3", "factor": 8.0}"#, naming: ["low_freq_factor"])
        expectInvalid(#""partial_rotary_factor": 0.5"#, naming: ["partial_rotary_factor"])
        expectInvalid(#""model_type": "qwen2", "use_sliding_window": true"#, naming: ["use_sliding_window"])
        expectInvalid(#""layer_types": ["full_attention", "sliding_attention"]"#, naming: ["layer_types"])
        expectInvalid(#""num_local_experts": 8"#, naming: ["num_local_experts"])
        expectInvalid(#""model_type": "qwen2", "num_experts": 4"#, naming: ["num_experts"])
        expectInvalid(#""quantization_config": {"quant_method": "gptq"}"#, naming: ["quantization_config"])
        expectInvalid(#""head_dim": 7"#, naming: ["head_dim"])
        expectInvalid(#""num_key_value_heads": 3"#, naming: ["num_key_value_heads"])
        expectInvalid(#""tie_word_embeddings": "yes""#, naming: ["tie_word_embeddings"])
        expectInvalid(#""eos_token_id": [2, "x"]"#, naming: ["eos_token_id"])
        expectInvalid(#""rms_norm_eps": -1"#, naming: ["rms_norm_eps"])
        expectInvalid(#""head_dim": 1e300"#, naming: ["head_dim"])
        expectInvalid(#""head_dim": 4000000000000000"#, naming: ["head_dim"])
        expectInvalid(#""num_attention_heads": 16777216, "head_dim": 16777216"#, naming: ["parameters"])
        XCTAssertThrowsError(try LlamaConfig(huggingFaceJSON: Data(#"{"model_type": "llama", "hidden_size": 64}"#.utf8))) { e in
            XCTAssertEqual(e as? ModelError, .invalidConfig("config.json: missing keys vocab_size, num_hidden_layers, num_attention_heads, intermediate_size"))
        }
    }

    /// Mistral's window changes nothing for sequences inside it; past it Tether refuses rather than
    /// compute full attention where transformers would mask.
    func testSlidingWindowIsHonouredOrRefused() throws {
        var c = try parse(#""model_type": "mistral", "sliding_window": 4, "max_position_embeddings": 16"#)
        let model = try LlamaModel(config: c, seed: 1)
        XCTAssertNoThrow(try model.logits(TokenBatch(sequences: [[1, 2, 3, 4]])))
        XCTAssertThrowsError(try model.logits(TokenBatch(sequences: [[1, 2, 3, 4, 5]]))) { e in
            XCTAssertEqual(e as? ModelError, .slidingWindowExceeded(length: 5, window: 4))
        }
        let cache = KVCache(config: c, slots: 1, capacity: 16)
        _ = try model.extend(cache: cache, [(slot: 0, tokens: [1, 2, 3])])
        _ = try model.extend(cache: cache, [(slot: 0, tokens: [4])])
        XCTAssertThrowsError(try model.extend(cache: cache, [(slot: 0, tokens: [5])])) { e in
            XCTAssertEqual(e as? ModelError, .slidingWindowExceeded(length: 5, window: 4))
        }
        c.slidingWindow = nil
        XCTAssertNoThrow(try LlamaModel(config: c, seed: 1).logits(TokenBatch(sequences: [[1, 2, 3, 4, 5]])))
    }
}
