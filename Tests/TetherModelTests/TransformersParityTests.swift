import Foundation
import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest

/// A checkpoint is only interchangeable if `transformers` computes the same function from it:
/// same logits (max |Δ| ≤ 1e-4) and the same greedy continuation, in both directions.
///
/// Both directions share one Python run (scripts/peers/hf_llama.py), because importing
/// transformers costs far more than the checks themselves.
final class TransformersParityTests: XCTestCase {
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/peers/hf_llama.py").standardizedFileURL.path
    static let root = NSTemporaryDirectory() + "tether-parity-\(getpid())"
    static let tetherPrompt = [1] + (try! CharTokenizer.standard.encode("12+34=46\nhello world"))
    static let hfPrompt = [1, 13, 14, 15, 39, 3, 41, 4, 45]
    static let newTokens = 12

    struct PeerResult { var logits: [[Float]]; var greedy: [Int] }
    nonisolated(unsafe) static var peer: (tether: PeerResult, hf: PeerResult)?  // XCTest runs one test at a time

    override class func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// The model `tether init` would write, but with wider weights than the 0.02 default and
    /// non-unit norms, so logits are far from uniform and a mismatch cannot hide.
    static func tetherModel() throws -> LlamaModel {
        var config = LlamaConfig.tiny
        config.bosTokenId = 1
        config.eosTokenId = 2
        let model = try LlamaModel(config: config, seed: 11, std: 0.25)
        var rng = SeededRandom(seed: 5)
        for e in model.layout.entries where e.shape.count == 1 {
            let w = model.tensor(e.name)!
            for i in 0..<w.count { w[i] = 0.5 + rng.nextUnitFloat() }
        }
        return model
    }

    /// Writes Tether's checkpoint, then runs the peer once for both directions.
    func peerResults() throws -> (tether: PeerResult, hf: PeerResult) {
        if let p = Self.peer { return p }
        try PeerPython.require(["torch", "transformers"])
        try Self.tetherModel().save(to: Self.root + "/tether")
        let jobs: [[Any]] = [["logits", Self.root + "/tether", Self.tetherPrompt, Self.newTokens],
                             ["random", Self.root + "/hf", 3, Self.hfPrompt, Self.newTokens]]
        let arg = String(decoding: try JSONSerialization.data(withJSONObject: jobs), as: UTF8.self)
        let out = try PeerPython.run("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                                     [Self.helper, arg], timeout: 300)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        let parsed = try rows.map { row in
            PeerResult(logits: try XCTUnwrap(row["logits"] as? [[Double]]).map { $0.map(Float.init) },
                       greedy: try XCTUnwrap(row["greedy"] as? [Int]))
        }
        Self.peer = (parsed[0], parsed[1])
        return Self.peer!
    }

    /// Greedy decoding by full forwards (no KV cache): the plainest reading of argmax decoding.
    static func greedy(_ model: LlamaModel, _ prompt: [Int], newTokens: Int) throws -> [Int] {
        var ids = prompt
        let V = model.config.vocabSize
        for _ in 0..<newTokens {
            let logits = try model.logits(TokenBatch(sequences: [ids]))
            let last = Array(logits[((ids.count - 1) * V)..<(ids.count * V)])
            ids.append(last.indices.max { last[$0] < last[$1] }!)
        }
        return Array(ids[prompt.count...])
    }

    /// Greedy decoding through the KV cache (`generate`), with no stop token, as the peer runs it.
    static func cachedGreedy(_ model: LlamaModel, _ prompt: [Int], newTokens: Int) throws -> [Int] {
        try model.generate(prompts: [prompt], maxNewTokens: newTokens,
                           sampling: SamplingParameters(temperature: 0, eosTokenId: -1), seed: 0)[0].tokens
    }

    func assertClose(_ tether: [Float], _ peer: [[Float]], vocab: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(tether.count, peer.count * vocab, file: file, line: line)
        var worst: Float = 0
        for (t, row) in peer.enumerated() { for (v, p) in row.enumerated() { worst = max(worst, abs(tether[t * vocab + v] - p)) } }
        print("max |logit difference| Tether vs transformers: \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-4, file: file, line: line)
    }

    func testTetherCheckpointLoadsInTransformersWithSameLogits() throws {
        let peer = try peerResults().tether
        let model = try Self.tetherModel()
        assertClose(try model.logits(TokenBatch(sequences: [Self.tetherPrompt])), peer.logits, vocab: 64)
        XCTAssertEqual(try Self.greedy(model, Self.tetherPrompt, newTokens: Self.newTokens), peer.greedy)
        XCTAssertEqual(try Self.cachedGreedy(model, Self.tetherPrompt, newTokens: Self.newTokens), peer.greedy)
    }

    func testTransformersCheckpointLoadsInTetherWithSameLogits() throws {
        let peer = try peerResults().hf
        let dir = Self.root + "/hf"
        // transformers saves no tokenizer with a bare model; add ours as a user would.
        try CharTokenizer.standard.tokenizerJSON().write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
        let (model, ckpt) = try LlamaModel.load(from: dir)
        XCTAssertEqual(ckpt.config.hiddenSize, 32)
        XCTAssertEqual(ckpt.config.numKeyValueHeads, 2)
        XCTAssertEqual(ckpt.config.rmsNormEps, 1e-5)
        assertClose(try model.logits(TokenBatch(sequences: [Self.hfPrompt])), peer.logits, vocab: 64)
        XCTAssertEqual(try Self.greedy(model, Self.hfPrompt, newTokens: Self.newTokens), peer.greedy)
        XCTAssertEqual(try Self.cachedGreedy(model, Self.hfPrompt, newTokens: Self.newTokens), peer.greedy)
    }
}
