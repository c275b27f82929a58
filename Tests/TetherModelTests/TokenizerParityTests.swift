import Foundation
import TetherModel
import TetherTestSupport
import XCTest

/// `Tokenizer` must encode exactly as the `tokenizers` library does — same ids, same decoded
/// text — on the real SmolLM2 tokenizer, on Llama-3-style and Qwen2-style tokenizers trained here
/// by `tokenizers`' own BpeTrainer (plus one with the Digits pre-tokenizer and a prefix space),
/// and on the built-in character vocabulary. All peer work is one Python run
/// (scripts/peers/hf_tokenizers.py): importing tokenizers and training are most of the cost.
final class TokenizerParityTests: XCTestCase {
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/peers/hf_tokenizers.py").standardizedFileURL.path
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path
    static let root = NSTemporaryDirectory() + "tether-tokenizer-parity-\(getpid())"
    static let linesPerTokenizer = 5000

    struct Row { var ids: [Int]; var text: String; var skipped: String }
    struct Case { var name: String; var directory: String; var corpus: [String]; var rows: [Row] }
    nonisolated(unsafe) static var cases: [String: Case]?  // XCTest runs one test at a time
    nonisolated(unsafe) static var smolSkipReason: String?

    override class func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// The SmolLM2 tokenizer directory: the repo's model, else the copy transformers made in /tmp/smol.
    static func smolDirectory() -> String? {
        for dir in [repoRoot + "/models/smollm2-135m-instruct", "/tmp/smol/hf-tokenizer"]
        where FileManager.default.fileExists(atPath: dir + "/tokenizer.json") { return dir }
        return nil
    }

    static func writeJSON(_ value: Any, to path: String) throws {
        try JSONSerialization.data(withJSONObject: value).write(to: URL(fileURLWithPath: path))
    }

    /// Trains the three tokenizers, encodes every corpus with `tokenizers`, in one Python run.
    func peerCases() throws -> [String: Case] {
        if let c = Self.cases { return c }
        try PeerPython.require(["tokenizers"])
        let fm = FileManager.default
        try fm.createDirectory(atPath: Self.root, withIntermediateDirectories: true)
        let training = TokenizerCorpus.lines(count: 3000, seed: 99, specials: [])
        try Self.writeJSON(training, to: Self.root + "/train.json")

        var plan: [(name: String, dir: String, corpus: [String])] = []
        let trained: [(String, [String], Int)] = [
            ("llama3", ["<|begin_of_text|>", "<|end_of_text|>"], 1500),
            ("qwen2", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 1200),
            ("digits", ["<s>", "</s>"], 1000),
        ]
        var jobs: [[Any]] = []
        for (style, specials, vocab) in trained {
            let dir = Self.root + "/" + style
            jobs.append(["train", dir, style, Self.root + "/train.json", vocab])
            plan.append((style, dir, TokenizerCorpus.lines(count: Self.linesPerTokenizer, seed: UInt64(vocab), specials: specials)))
        }
        if let smol = Self.smolDirectory() {
            plan.append(("smollm2", smol, TokenizerCorpus.lines(count: Self.linesPerTokenizer, seed: 7,
                                                                specials: ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>"])))
        } else {
            Self.smolSkipReason = "no SmolLM2 tokenizer: neither models/smollm2-135m-instruct (scripts/get-model smollm2-135m-instruct) nor /tmp/smol/hf-tokenizer exists"
        }
        let charDir = Self.root + "/char"
        try fm.createDirectory(atPath: charDir, withIntermediateDirectories: true)
        try Tokenizer.standard.write(to: charDir)
        plan.append(("char", charDir, TokenizerCorpus.charLines(count: Self.linesPerTokenizer, seed: 3,
                                                               alphabet: CharTokenizer.standardCharacters,
                                                               specials: ["<bos>", "<eos>", "<pad>"])))
        for p in plan {
            let corpusPath = Self.root + "/\(p.name)-corpus.json"
            try Self.writeJSON(p.corpus, to: corpusPath)
            jobs.append(["encode", p.dir + "/tokenizer.json", corpusPath])
        }
        let arg = String(decoding: try JSONSerialization.data(withJSONObject: jobs), as: UTF8.self)
        let out = try PeerPython.run("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                                     [Self.helper, arg], timeout: 600)
        let results = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [Any])
        var cases: [String: Case] = [:]
        for (p, result) in zip(plan, results.dropFirst(trained.count)) {
            let rows = try XCTUnwrap(result as? [[String: Any]]).map { r in
                Row(ids: try XCTUnwrap(r["ids"] as? [Int]), text: try XCTUnwrap(r["text"] as? String),
                    skipped: try XCTUnwrap(r["skipped"] as? String))
            }
            cases[p.name] = Case(name: p.name, directory: p.dir, corpus: p.corpus, rows: rows)
        }
        Self.cases = cases
        return cases
    }

    /// Encodes and decodes the case's corpus in Swift and compares every line with the peer.
    func checkParity(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try peerCases()
        guard let c = cases[name] else { throw XCTSkip(Self.smolSkipReason ?? "no case \(name)") }
        let tok = try Tokenizer.read(from: c.directory)
        XCTAssertEqual(c.rows.count, Self.linesPerTokenizer, file: file, line: line)
        var mismatches = 0
        for (text, row) in zip(c.corpus, c.rows) {
            let ids = try tok.encode(text, addSpecialTokens: true)
            let decoded = try tok.decode(ids, skipSpecialTokens: false)
            let skipped = try tok.decode(ids, skipSpecialTokens: true)
            if ids != row.ids || decoded != row.text || skipped != row.skipped {
                mismatches += 1
                if mismatches <= 5 {
                    XCTFail("\(name): \(text.debugDescription)\n tether ids \(ids)\n tokenizers  \(row.ids)\n tether text \(decoded.debugDescription)\n tokenizers  \(row.text.debugDescription)\n tether skipped \(skipped.debugDescription)\n tokenizers     \(row.skipped.debugDescription)", file: file, line: line)
                }
            }
        }
        XCTAssertEqual(mismatches, 0, "\(name): \(mismatches) of \(c.rows.count) lines differ", file: file, line: line)
        // The corpus must actually exercise merges and specials, or equality proves little.
        let total = c.rows.reduce(0) { $0 + $1.ids.count }
        let chars = c.corpus.reduce(0) { $0 + $1.unicodeScalars.count }
        if name != "char" { XCTAssertLessThan(Double(total), 0.8 * Double(chars), "\(name): too few merges", file: file, line: line) }
        XCTAssertTrue(c.rows.contains { $0.ids.contains(where: tok.isSpecial) && $0.text != $0.skipped }, "\(name): no special token in text", file: file, line: line)
    }

    func testSmolLM2MatchesTokenizers() throws { try checkParity("smollm2") }
    func testLlama3StyleMatchesTokenizers() throws { try checkParity("llama3") }
    func testQwen2StyleMatchesTokenizers() throws { try checkParity("qwen2") }
    func testDigitsAndPrefixSpaceMatchTokenizers() throws { try checkParity("digits") }
    func testCharVocabularyMatchesTokenizers() throws { try checkParity("char") }

    /// The post-processor decides about BOS: the Llama-3-style tokenizer adds it, Qwen2 and SmolLM2 do not.
    func testBOSFollowsThePostProcessor() throws {
        let cases = try peerCases()
        let llama = try Tokenizer.read(from: try XCTUnwrap(cases["llama3"]).directory)
        XCTAssertEqual(try llama.encode("hi", addSpecialTokens: true).first, llama.id(of: "<|begin_of_text|>"))
        XCTAssertEqual(llama.bosId, llama.id(of: "<|begin_of_text|>"))
        let qwen = try Tokenizer.read(from: try XCTUnwrap(cases["qwen2"]).directory)
        XCTAssertEqual(try qwen.encode("hi", addSpecialTokens: true), try qwen.encode("hi", addSpecialTokens: false))
        XCTAssertEqual(qwen.eosId, qwen.id(of: "<|im_end|>"))
        XCTAssertNil(qwen.bosId)
    }
}
