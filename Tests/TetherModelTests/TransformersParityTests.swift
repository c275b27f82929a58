import Foundation
import TetherKernels
import TetherModel
import XCTest

/// A checkpoint is only interchangeable if `transformers` computes the same function from it:
/// same logits (max |Δ| ≤ 1e-4) and the same greedy continuation, in both directions.
final class TransformersParityTests: XCTestCase {
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/peers/hf_llama.py").standardizedFileURL.path

    /// Runs scripts/peers/hf_llama.py with the peer Python.
    func hf(_ arguments: [String]) throws -> String {
        try PeerPython.run("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                           [Self.helper] + arguments, timeout: 300)
    }

    /// `command` is "logits" (of DIR) or "random" (write a random transformers model to DIR first).
    func peerLogits(_ dir: String, _ ids: [Int], newTokens: Int, command: String = "logits", seed: [String] = []) throws
        -> (logits: [[Float]], greedy: [Int]) {
        let out = try hf([command, dir] + seed + ["\(ids)", "\(newTokens)"])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let logits = try XCTUnwrap(json["logits"] as? [[Double]]).map { $0.map(Float.init) }
        return (logits, try XCTUnwrap(json["greedy"] as? [Int]))
    }

    /// Greedy decoding by full forwards (no KV cache): the plainest reading of argmax decoding.
    func greedy(_ model: LlamaModel, _ prompt: [Int], newTokens: Int) throws -> [Int] {
        var ids = prompt
        for _ in 0..<newTokens {
            let logits = try model.logits(TokenBatch(sequences: [ids]))
            let last = logits[((ids.count - 1) * model.config.vocabSize)...]
            ids.append(last.indices.max { last[$0] < last[$1] }! - (ids.count - 1) * model.config.vocabSize)
        }
        return Array(ids[prompt.count...])
    }

    func assertClose(_ tether: [Float], _ peer: [[Float]], vocab: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(tether.count, peer.count * vocab, file: file, line: line)
        var worst: Float = 0
        for (t, row) in peer.enumerated() { for (v, p) in row.enumerated() { worst = max(worst, abs(tether[t * vocab + v] - p)) } }
        print("max |logit difference| Tether vs transformers: \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-4, file: file, line: line)
    }

    func testTetherCheckpointLoadsInTransformersWithSameLogits() throws {
        try PeerPython.require(["torch", "transformers"])
        let dir = try makeTemporaryDirectory(self, "tether-parity") + "/ckpt"
        // Wider weights than the 0.02 default, and non-unit norms, so logits are far from uniform.
        let model = try LlamaModel(config: .tiny, seed: 11, std: 0.25)
        var rng = SeededRandom(seed: 5)
        for e in model.layout.entries where e.shape.count == 1 {
            let w = model.tensor(e.name)!
            for i in 0..<w.count { w[i] = 0.5 + rng.nextUnitFloat() }
        }
        try model.save(to: dir)
        let tok = CharTokenizer.standard
        let prompt = [tok.bosId] + (try tok.encode("12+34=46\nhello world"))
        let peer = try peerLogits(dir, prompt, newTokens: 12)
        assertClose(try model.logits(TokenBatch(sequences: [prompt])), peer.logits, vocab: 64)
        XCTAssertEqual(try greedy(model, prompt, newTokens: 12), peer.greedy)
    }

    func testTransformersCheckpointLoadsInTetherWithSameLogits() throws {
        try PeerPython.require(["torch", "transformers"])
        let dir = try makeTemporaryDirectory(self, "tether-parity") + "/hf"
        let prompt = [1, 13, 14, 15, 39, 3, 41, 4, 45]
        let peer = try peerLogits(dir, prompt, newTokens: 10, command: "random", seed: ["3"])
        // transformers saves no tokenizer with a bare model; add ours as a user would.
        try CharTokenizer.standard.tokenizerJSON().write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
        let (model, ckpt) = try LlamaModel.load(from: dir)
        XCTAssertEqual(ckpt.config.hiddenSize, 32)
        XCTAssertEqual(ckpt.config.numKeyValueHeads, 2)
        XCTAssertEqual(ckpt.config.rmsNormEps, 1e-5)
        assertClose(try model.logits(TokenBatch(sequences: [prompt])), peer.logits, vocab: 64)
        XCTAssertEqual(try greedy(model, prompt, newTokens: 10), peer.greedy)
    }
}
