import Foundation
import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest

/// Files made once per test process by scripts/peers/gguf_peer.py with the `gguf` package (a
/// tensor of every supported type with gguf's own dequantized values, tiny Llama GGUFs with trained
/// BPE vocabularies, a corpus), and where the real SmolLM2 GGUF lives when it is on this machine.
enum GGUFFixture {
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/peers/gguf_peer.py").standardizedFileURL.path
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardizedFileURL.path
    /// `scripts/get-model smollm2-135m-instruct` keeps the GGUF in models/.cache; the peers setup puts one in /tmp/smol.
    static var realModel: String? {
        [repository + "/models/.cache/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
         "/tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf"].first { FileManager.default.fileExists(atPath: $0) }
    }

    static func runHelper(_ arguments: [String], timeout: TimeInterval) throws -> String {
        try PeerPython.run("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                           [helper] + arguments, timeout: timeout)
    }

    nonisolated(unsafe) private static var made: [String: String] = [:]  // XCTest runs one test at a time

    /// The fixture directory of one test class (each class removes its own in `tearDown`);
    /// skips, with the reason, when the Python peers are missing.
    static func directory(_ owner: String) throws -> String {
        try PeerPython.require(["gguf", "numpy", "tokenizers"])
        if let d = made[owner] { return d }
        let root = root(owner)
        _ = try runHelper(["make", root], timeout: 300)
        made[owner] = root
        return root
    }

    static func root(_ owner: String) -> String { NSTemporaryDirectory() + "tether-gguf-\(owner)-\(getpid())" }

    /// A Tether model loaded from an imported directory the way every command loads a checkpoint
    /// (config, weights and the rebuilt byte-level tokenizer), holding exactly the layout's tensors.
    static func loadModel(_ directory: String) throws -> LlamaModel {
        let model = try LlamaModel.load(from: directory).model
        let weights = try SafeTensorsFile.open(path: directory + "/" + LlamaCheckpoint.weightsFile)
        XCTAssertEqual(Set(weights.tensorNames), Set(model.layout.entries.map(\.name)), "the import writes exactly the layout's tensors")
        return model
    }
}

/// The reader and the dequantizers against the `gguf` package, and the typed errors for bad files.
final class GGUFFormatTests: XCTestCase {
    override class func tearDown() { try? FileManager.default.removeItem(atPath: GGUFFixture.root("format")) }

    func testEveryTensorTypeDequantizesAsTheGGUFPackageDoes() throws {
        let dir = try GGUFFixture.directory("format")
        let file = try GGUFFile.open(path: dir + "/types.gguf")
        let expected = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/types.json"))) as? [String: [String: Any]])
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadata["test.ints"], .array([.signed(1), .signed(-2), .signed(3)]))
        XCTAssertEqual(file.metadata["test.strings"], .array([.string("a"), .string("bé"), .string("")]))
        XCTAssertEqual(file.metadata["test.f64"]?.double, 0.25)
        XCTAssertEqual(file.metadata["test.flag"], .bool(true))
        var seenTypes = Set<GGUFTensorType>()
        for (name, e) in expected {
            let t = try XCTUnwrap(file[tensor: name], name)
            let type = try XCTUnwrap(e["type"] as? String)
            XCTAssertEqual(t.type.name, type, name)
            XCTAssertEqual(t.shape, try XCTUnwrap(e["shape"] as? [Int]), "\(name): GGUF's ne is the reversed PyTorch shape")
            seenTypes.insert(t.type)
            let want = try XCTUnwrap(e["values"] as? [Double]).map(Float.init)
            let got = try file.floats(name)
            XCTAssertEqual(got.count, want.count, name)
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? 0
            if [.f32, .f16, .bf16].contains(t.type) {
                XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(name) (\(type)) must widen exactly")
            } else {
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(name) (\(type))")
            }
            XCTAssertTrue(got.contains { $0 != 0 }, "\(name) is not all zeros, so the comparison means something")
        }
        XCTAssertEqual(seenTypes, Set(GGUFTensorType.allCases), "every supported type is covered")
    }

    func assertError(_ bytes: Data, _ label: String, file: StaticString = #filePath, line: UInt = #line,
                     _ check: (GGUFError) -> Bool) {
        do {
            _ = try GGUFFile(bytes: bytes, path: label)
            XCTFail("\(label): accepted", file: file, line: line)
        } catch let e as GGUFError {
            XCTAssertTrue(check(e), "\(label): \(e)", file: file, line: line)
        } catch {
            XCTFail("\(label): untyped error \(error)", file: file, line: line)
        }
    }

    func testTruncatedAndCorruptFilesGiveTypedErrorsNamingTheCulprit() throws {
        let dir = try GGUFFixture.directory("format")
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/types.gguf"))
        XCTAssertNoThrow(try GGUFFile(bytes: good, path: "good"))
        func patched(_ offset: Int, _ value: UInt64, width: Int = 8) -> Data {
            var d = good
            for i in 0..<width { d[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
            return d
        }
        assertError(good.prefix(10), "cut header") { if case .truncated = $0 { return $0.description.contains("tensor_count") } else { return false } }
        assertError(good.prefix(200), "cut metadata") { if case .truncated = $0 { return true } else { return false } }
        assertError(good.dropLast(100), "cut data") {
            if case let .truncated(_, detail) = $0 { return detail.contains("tensor vector") } else { return false }
        }
        assertError(patched(0, 0x4655_4748, width: 4), "bad magic") { if case .corrupt = $0 { return true } else { return false } }
        assertError(patched(4, 1, width: 4), "version 1") { $0 == .unsupportedVersion(path: "version 1", version: 1) }
        assertError(patched(8, UInt64.max), "absurd tensor count") {
            if case let .corrupt(_, detail) = $0 { return detail.contains("tensor_count") } else { return false }
        }
        assertError(patched(16, 1 << 40), "absurd kv count") {
            if case let .corrupt(_, detail) = $0 { return detail.contains("kv_count") } else { return false }
        }
        // The element count of the test.ints array: after the key string, its type and the element type.
        let key = Data("test.ints".utf8)
        let keyAt = try XCTUnwrap(good.range(of: key)).upperBound
        assertError(patched(keyAt + 8, 1 << 50), "absurd array length") {
            if case let .corrupt(_, detail) = $0 { return detail.contains("test.ints") } else { return false }
        }
        assertError(patched(keyAt + 4, 13, width: 4), "unknown array element type") {
            if case let .invalidMetadata(_, k, _) = $0 { return k == "test.ints" } else { return false }
        }

        let q5k = try Data(contentsOf: URL(fileURLWithPath: dir + "/q5k.gguf"))
        assertError(q5k, "Q5_K") { $0 == .unsupportedTensorType(path: "Q5_K", tensor: "blk.0.attn_q.weight", type: "Q5_K") }
        // The type field follows the tensor name, n_dims (u32) and two u64 dimensions.
        let typeAt = try XCTUnwrap(q5k.range(of: Data("blk.0.attn_q.weight".utf8))).upperBound + 4 + 16
        var unknown = q5k
        unknown[typeAt] = 77
        assertError(unknown, "type 77") { $0 == .unsupportedTensorType(path: "type 77", tensor: "blk.0.attn_q.weight", type: "type 77") }
        var offsetPastEnd = q5k
        offsetPastEnd[typeAt] = UInt8(GGUFTensorType.q8_0.rawValue)
        offsetPastEnd[typeAt + 4 + 6] = 1  // data offset 2^48
        assertError(offsetPastEnd, "offset past the end") {
            if case let .truncated(_, detail) = $0 { return detail.contains("blk.0.attn_q.weight") } else { return false }
        }

        // A well-formed file that is not a Llama model: the importer names the missing key.
        let types = try GGUFFile(bytes: good, path: "types")
        XCTAssertThrowsError(try GGUFLlamaImporter.config(types, tokenizer: nil)) { e in
            XCTAssertEqual(e as? GGUFError, .invalidMetadata(path: "types", key: "llama.embedding_length", detail: "missing"))
        }
        XCTAssertThrowsError(try GGUFTokenizer(file: types)) { e in
            guard case let .invalidMetadata(_, key, _)? = e as? GGUFError else { return XCTFail("\(e)") }
            XCTAssertEqual(key, "tokenizer.ggml.model")
        }
    }

    func testImportWritesAHuggingFaceDirectoryAndReplacesItAtomically() throws {
        let dir = try GGUFFixture.directory("format")
        let out = try makeTemporaryDirectory(self, "gguf-import") + "/model"
        try GGUFLlamaImporter.importFile(dir + "/tiny-a/tiny.gguf", to: out)
        try GGUFLlamaImporter.importFile(dir + "/tiny-a/tiny.gguf", to: out)  // over an existing directory
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(names, ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
        let config = try LlamaCheckpoint.readConfig(from: out)
        XCTAssertEqual([config.hiddenSize, config.numHiddenLayers, config.numAttentionHeads, config.numKeyValueHeads, config.intermediateSize],
                       [256, 2, 4, 2, 512])
        XCTAssertEqual(config.ropeTheta, 50_000)
        XCTAssertTrue(config.tieWordEmbeddings, "no output.weight means tied embeddings")
        XCTAssertEqual(config.bosTokenId, 1)
        XCTAssertEqual(config.eosTokenId, 2)
        let gguf = try GGUFFile.open(path: dir + "/tiny-a/tiny.gguf")
        let tokenizer = try GGUFTokenizer(file: gguf)
        XCTAssertEqual(config.vocabSize, tokenizer.tokens.count)
        let tokenizerConfig = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/tokenizer_config.json"))) as? [String: Any])
        XCTAssertEqual(tokenizerConfig["eos_token"] as? String, "<|im_end|>")
        let template = try XCTUnwrap(tokenizerConfig["chat_template"] as? String)
        XCTAssertEqual(template, gguf.metadata["tokenizer.chat_template"]?.string)
        XCTAssertEqual(try ChatTemplate(source: template).render(messages: [.user("hi")], addGenerationPrompt: false),
                       "<|im_start|>user\nhi<|im_end|>\n")
        // V is not permuted: its rows come out in file order.
        let v = try SafeTensorsFile.open(path: out + "/model.safetensors").floats("model.layers.0.self_attn.v_proj.weight")
        XCTAssertEqual(v, try gguf.floats("blk.0.attn_v.weight"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (out as NSString).deletingLastPathComponent).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary directories are left behind")
    }
}

/// The import against `transformers` loading the same GGUF (`from_pretrained(dir, gguf_file=…)`):
/// the rebuilt tokenizer (through the `tokenizers` library) gives the same ids, the weights are the
/// same numbers, and Tether's forward on them gives the same logits. One Python run for all.
final class GGUFTransformersParityTests: XCTestCase {
    static let logitIds = [1, 9, 17, 42, 100, 7, 3, 250, 2]
    static let realLogitIds = [1, 9690, 198, 2683, 314, 216, 39, 1232, 216, 38, 47, 2, 30, 48000]
    nonisolated(unsafe) static var results: [String: [String: Any]]?  // XCTest runs one test at a time
    nonisolated(unsafe) static var realImportSeconds: (Double, Double)?

    static let root = GGUFFixture.root("parity")
    override class func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func peer() throws -> [String: [String: Any]] {
        if let r = Self.results { return r }
        let dir = try GGUFFixture.directory("parity")
        try PeerPython.require(["torch", "transformers", "gguf", "tokenizers", "safetensors"])
        let out = Self.root + "/imported"
        var jobs: [[Any]] = []
        var keys: [String] = []
        for tiny in ["tiny-a", "tiny-b"] {
            try GGUFLlamaImporter.importFile(dir + "/\(tiny)/tiny.gguf", to: out + "/" + tiny)
            jobs.append(["tokenizer", dir + "/\(tiny)/tiny.gguf", out + "/" + tiny, dir + "/corpus.json"]); keys.append("tokenizer " + tiny)
        }
        jobs.append(["model", dir + "/tiny-a/tiny.gguf", out + "/tiny-a", Self.logitIds]); keys.append("model tiny-a")
        if let real = GGUFFixture.realModel {
            let s = try GGUFLlamaImporter.importFile(real, to: out + "/smollm2")
            Self.realImportSeconds = (s.dequantizeSeconds, s.writeSeconds)
            jobs.append(["tokenizer", real, out + "/smollm2", dir + "/corpus.json"]); keys.append("tokenizer smollm2")
            jobs.append(["model", real, out + "/smollm2", Self.realLogitIds]); keys.append("model smollm2")
        }
        let arg = String(decoding: try JSONSerialization.data(withJSONObject: jobs), as: UTF8.self)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(GGUFFixture.runHelper(["check", arg], timeout: 900).utf8)) as? [[String: Any]])
        Self.results = Dictionary(uniqueKeysWithValues: zip(keys, rows))
        return Self.results!
    }

    func assertTokenizerParity(_ r: [String: Any]?, _ label: String) throws {
        let r = try XCTUnwrap(r, label)
        XCTAssertGreaterThanOrEqual(r["lines"] as? Int ?? 0, 2000, label)
        XCTAssertEqual(r["id_mismatches"] as? Int, 0, "\(label): first mismatches \(r["examples"] ?? "")")
        XCTAssertEqual(r["decode_mismatches"] as? Int, 0, label)
    }

    func testRebuiltTokenizerEncodesLikeTransformers() throws {
        let r = try peer()
        try assertTokenizerParity(r["tokenizer tiny-a"], "tiny vocabulary, pre smollm, no BOS")
        try assertTokenizerParity(r["tokenizer tiny-b"], "tiny vocabulary, pre llama-bpe, BOS added")
        if GGUFFixture.realModel != nil { try assertTokenizerParity(r["tokenizer smollm2"], "SmolLM2-135M-Instruct") }
        else { print("SmolLM2 GGUF absent (run scripts/get-model smollm2-135m-instruct): its tokenizer was not compared") }
    }

    func checkModel(_ r: [String: Any]?, directory: String, ids: [Int], label: String) throws {
        let r = try XCTUnwrap(r, label)
        let weightDiff = try XCTUnwrap(r["max_abs_weight"] as? Double)
        XCTAssertLessThanOrEqual(weightDiff, 1e-6, "\(label): worst tensor \(r["worst_tensor"] ?? "")")
        let peerLogits = try XCTUnwrap(r["logits"] as? [[Double]]).flatMap { $0.map(Float.init) }
        let model = try GGUFFixture.loadModel(directory)
        let logits = try model.logits(TokenBatch(sequences: [ids]))
        XCTAssertEqual(logits.count, peerLogits.count, label)
        let worst = zip(logits, peerLogits).map { abs($0 - $1) }.max() ?? .infinity
        // 1e-5 of the largest logit (|z| ≈ 20 at SmolLM2): float32 sums in another order.
        let largest = peerLogits.map(abs).max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5 * max(10, largest), "\(label): max |Δlogit| \(worst), largest |logit| \(largest)")
        let spread = (peerLogits.max() ?? 0) - (peerLogits.min() ?? 0)
        XCTAssertGreaterThan(spread, 1, "\(label): logits are far from uniform, so a mismatch would show")
        print("\(label): \(r["tensors"] ?? "?") tensors, max |Δweight| \(weightDiff), max |Δlogit| \(worst) over \(ids.count) tokens × \(model.config.vocabSize)")
    }

    func testTinyImportMatchesTransformersWeightsAndLogits() throws {
        try checkModel(try peer()["model tiny-a"], directory: Self.root + "/imported/tiny-a", ids: Self.logitIds, label: "tiny GGUF (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K, F16, BF16, F32)")
    }

    func testRealSmolLM2MatchesTransformersWeightsAndLogits() throws {
        guard GGUFFixture.realModel != nil else {
            throw XCTSkip("SmolLM2 GGUF absent: run scripts/get-model smollm2-135m-instruct (or place it in /tmp/smol)")
        }
        try checkModel(try peer()["model smollm2"], directory: Self.root + "/imported/smollm2", ids: Self.realLogitIds, label: "SmolLM2-135M-Instruct Q4_1")
        if let (d, w) = Self.realImportSeconds { print(String(format: "SmolLM2 import: dequantized in %.2f s, written in %.2f s", d, w)) }
    }
}
