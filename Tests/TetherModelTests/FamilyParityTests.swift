import Foundation
import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest

/// Every Llama-family variant Tether implements computes the same function as `transformers`:
/// tiny random checkpoints that `transformers` itself makes (llama tied/untied with GQA, llama3
/// RoPE scaling, explicit head_dim with attention biases, mistral, qwen2 with q/k/v biases, qwen3
/// with q/k norms; BF16, F16 and sharded files) load in Tether with the same logits (max |Δ| ≤
/// 1e-4) and greedy continuation, by full forwards and through the KV cache; and checkpoints
/// Tether writes for each family load in `transformers` as that family with the same logits.
///
/// The transformers-made directories have no tokenizer; the test adds Tether's character-level
/// tokenizer.json (vocab 64) as a user would. One Python run serves the whole class.
final class FamilyParityTests: XCTestCase {
    static let root = NSTemporaryDirectory() + "tether-family-parity-\(getpid())"
    static let prompt = [1, 13, 14, 15, 39, 3, 41, 4, 45]
    static let newTokens = 12

    /// A variant: its config as `transformers` kwargs (`model_type` + config fields, the way a
    /// config.json without `architectures` reads) and how `save_pretrained` stores it.
    struct Variant {
        let name: String
        let config: [String: Any]
        var save: [String: Any] = [:]
        var family: String { config["model_type"] as! String }
    }

    static func base(_ type: String, _ extra: [String: Any]) -> [String: Any] {
        var c: [String: Any] = ["model_type": type, "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2,
                                "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48,
                                "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "tie_word_embeddings": false]
        for (k, v) in extra { c[k] = v }
        return c
    }

    nonisolated(unsafe) static let llama3Rope: [String: Any] = ["rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 16]

    /// Made by transformers, read by Tether.
    nonisolated(unsafe) static let fromTransformers: [Variant] = [
        Variant(name: "llama-untied-gqa", config: base("llama", [:])),
        Variant(name: "llama-tied", config: base("llama", ["num_key_value_heads": 4, "tie_word_embeddings": true])),
        Variant(name: "llama-llama3-rope", config: base("llama", ["rope_parameters": llama3Rope])),
        Variant(name: "llama-head-dim-bias", config: base("llama", ["head_dim": 16, "attention_bias": true])),
        Variant(name: "mistral", config: base("mistral", ["sliding_window": 32, "head_dim": 16])),
        Variant(name: "qwen2", config: base("qwen2", ["tie_word_embeddings": true])),
        Variant(name: "qwen3", config: base("qwen3", ["head_dim": 16, "rope_parameters": ["rope_type": "default", "rope_theta": 1_000_000.0]])),
        Variant(name: "llama-bf16", config: base("llama", [:]), save: ["dtype": "bfloat16"]),
        Variant(name: "qwen3-f16", config: base("qwen3", ["head_dim": 8]), save: ["dtype": "float16"]),
        Variant(name: "qwen2-sharded", config: base("qwen2", [:]), save: ["max_shard_size": "20KB"]),
    ]

    /// Made and written by Tether, read by transformers. Configs in the older transformers 4 form
    /// (`rope_theta` + `rope_scaling`) and with `eos_token_id` lists are among them.
    nonisolated(unsafe) static let fromTether: [Variant] = [
        Variant(name: "llama-tied", config: base("llama", ["tie_word_embeddings": true, "eos_token_id": [2, 3]])),
        Variant(name: "llama-llama3-rope-v4", config: base("llama", [
            "rope_theta": 500000.0, "architectures": NSNull(),
            "rope_scaling": ["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 16]])),
        Variant(name: "llama-head-dim-bias", config: base("llama", ["head_dim": 16, "attention_bias": true])),
        Variant(name: "mistral", config: base("mistral", ["sliding_window": NSNull()])),
        Variant(name: "qwen2", config: base("qwen2", ["tie_word_embeddings": true])),
        Variant(name: "qwen3", config: base("qwen3", ["head_dim": 16, "attention_bias": true])),
    ]

    struct PeerResult { var logits: [[Float]]; var greedy: [Int]; var className: String; var modelType: String }
    nonisolated(unsafe) static var peer: [String: PeerResult]?  // XCTest runs one test at a time
    nonisolated(unsafe) static var worst: [String: Float] = [:]

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
        if !worst.isEmpty {
            print("max |logit difference| Tether vs transformers per variant:")
            for (k, v) in worst.sorted(by: { $0.key < $1.key }) { print("  \(k): \(v)") }
        }
    }

    static func tetherConfig(_ v: Variant) throws -> LlamaConfig {
        try LlamaConfig(huggingFaceJSON: JSONSerialization.data(withJSONObject: v.config), path: v.name)
    }

    /// A random Tether model of the variant with weights wide enough that logits are far from
    /// uniform: N(0, 0.3²) matrices, norms in [0.5, 1.5], biases N(0, 0.3²).
    static func tetherModel(_ v: Variant, seed: UInt64) throws -> LlamaModel {
        let model = try LlamaModel(config: tetherConfig(v), seed: seed, std: 0.3)
        randomizeVectors(model, seed: seed)
        return model
    }

    static func randomizeVectors(_ model: LlamaModel, seed: UInt64) {
        var rng = SeededRandom(seed: seed ^ 0x5eed)
        for e in model.layout.entries where e.shape.count == 1 {
            let w = model.tensor(e.name)!
            for i in 0..<w.count { w[i] = e.name.hasSuffix(".bias") ? Float(rng.nextNormal()) * 0.3 : 0.5 + rng.nextUnitFloat() }
        }
    }

    func peerResults() throws -> [String: PeerResult] {
        if let p = Self.peer { return p }
        try PeerPython.require(["torch", "transformers"])
        var jobs: [[Any]] = []
        for (i, v) in Self.fromTransformers.enumerated() {
            jobs.append(["family", Self.root + "/hf-" + v.name, 100 + i, Self.prompt, Self.newTokens, v.config, v.save])
        }
        for (i, v) in Self.fromTether.enumerated() {
            try Self.tetherModel(v, seed: UInt64(200 + i)).save(to: Self.root + "/tether-" + v.name)
            jobs.append(["logits", Self.root + "/tether-" + v.name, Self.prompt, Self.newTokens])
        }
        let arg = String(decoding: try JSONSerialization.data(withJSONObject: jobs), as: UTF8.self)
        let out = try PeerPython.run("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                                     [TransformersParityTests.helper, arg], timeout: 600)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.count, jobs.count)
        var results: [String: PeerResult] = [:]
        let keys = Self.fromTransformers.map { "hf-" + $0.name } + Self.fromTether.map { "tether-" + $0.name }
        for (key, row) in zip(keys, rows) {
            results[key] = PeerResult(logits: try XCTUnwrap(row["logits"] as? [[Double]]).map { $0.map(Float.init) },
                                      greedy: try XCTUnwrap(row["greedy"] as? [Int]),
                                      className: try XCTUnwrap(row["class"] as? String),
                                      modelType: try XCTUnwrap(row["model_type"] as? String))
        }
        Self.peer = results
        return results
    }

    func maxDifference(_ tether: [Float], _ peer: [[Float]], vocab: Int) -> Float {
        XCTAssertEqual(tether.count, peer.count * vocab)
        var worst: Float = 0
        for (t, row) in peer.enumerated() { for (v, p) in row.enumerated() { worst = max(worst, abs(tether[t * vocab + v] - p)) } }
        return worst
    }

    func testTransformersCheckpointsOfEveryFamilyLoadInTetherWithSameLogits() throws {
        let peer = try peerResults()
        for v in Self.fromTransformers {
            let dir = Self.root + "/hf-" + v.name, result = try XCTUnwrap(peer["hf-" + v.name])
            try CharTokenizer.standard.tokenizerJSON().write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
            let (model, ckpt) = try LlamaModel.load(from: dir)
            XCTAssertEqual(ckpt.config.modelType.rawValue, v.family, v.name)
            XCTAssertEqual(result.modelType, v.family, v.name)
            let logits = try model.logits(TokenBatch(sequences: [Self.prompt]))
            let worst = maxDifference(logits, result.logits, vocab: 64)
            Self.worst["transformers → Tether " + v.name] = worst
            XCTAssertLessThanOrEqual(worst, 1e-4, v.name)
            XCTAssertEqual(try TransformersParityTests.greedy(model, Self.prompt, newTokens: Self.newTokens), result.greedy, v.name)
            XCTAssertEqual(try TransformersParityTests.cachedGreedy(model, Self.prompt, newTokens: Self.newTokens), result.greedy, v.name)

            // Tether writes it back as the same family (one F32 file); reading that gives the
            // same config and bit-identical logits.
            let again = Self.root + "/rewritten-" + v.name
            try model.save(to: again)
            let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: again + "/config.json"))) as? [String: Any])
            XCTAssertEqual(written["model_type"] as? String, v.family, v.name)
            XCTAssertEqual(written["architectures"] as? [String], [ckpt.config.modelType.architecture], v.name)
            let (reloaded, ckpt2) = try LlamaModel.load(from: again)
            XCTAssertEqual(ckpt2.config, ckpt.config, v.name)
            XCTAssertEqual(try reloaded.logits(TokenBatch(sequences: [Self.prompt])).map(\.bitPattern), logits.map(\.bitPattern), v.name)
        }
    }

    func testTetherCheckpointsOfEveryFamilyLoadInTransformersAsThatFamily() throws {
        let peer = try peerResults()
        for (i, v) in Self.fromTether.enumerated() {
            let result = try XCTUnwrap(peer["tether-" + v.name])
            let model = try Self.tetherModel(v, seed: UInt64(200 + i))
            XCTAssertEqual(result.modelType, v.family, v.name)
            XCTAssertEqual(result.className, model.config.modelType.architecture, v.name)
            let worst = maxDifference(try model.logits(TokenBatch(sequences: [Self.prompt])), result.logits, vocab: 64)
            Self.worst["Tether → transformers " + v.name] = worst
            XCTAssertLessThanOrEqual(worst, 1e-4, v.name)
            XCTAssertEqual(try TransformersParityTests.greedy(model, Self.prompt, newTokens: Self.newTokens), result.greedy, v.name)
            XCTAssertEqual(try TransformersParityTests.cachedGreedy(model, Self.prompt, newTokens: Self.newTokens), result.greedy, v.name)
        }
    }

    /// The config Tether wrote keeps the form of `eos_token_id` it read (a list stays a list).
    func testWrittenConfigKeepsEOSList() throws {
        _ = try peerResults()
        let dir = Self.root + "/tether-llama-tied"
        let config = try LlamaCheckpoint.readConfig(from: dir)
        XCTAssertEqual(config.eosTokenIds, .list([2, 3]))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any])
        XCTAssertEqual(json["eos_token_id"] as? [Int], [2, 3])
    }
}
