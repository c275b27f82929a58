import Foundation
import TetherModel
import TetherTestSupport
import XCTest

/// Malformed or unsupported tokenizer files are typed errors naming the field or component;
/// small hand-made files check the pieces whose answer is known without a peer.
final class TokenizerFileTests: XCTestCase {
    /// A minimal byte-level BPE: the 256 byte symbols, merges "Ġ t", "h e", "Ġt he", and `extra` spliced into the root.
    static func byteLevelJSON(model extraModel: String = "", root extra: String = "", merges: String = #"["Ġ t", ["h", "e"], "Ġt he"]"#) -> String {
        var vocab = ByteLevelTable.characters.enumerated().map { "\(jsonString(String($1))): \($0)" }
        vocab += [#""Ġt": 256"#, #""he": 257"#, #""Ġthe": 258"#, #""<|end|>": 259"#]
        return """
        {"added_tokens": [{"id": 259, "content": "<|end|>", "special": true}],
         "normalizer": null,
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
         "post_processor": {"type": "ByteLevel"},
         "decoder": {"type": "ByteLevel"}\(extra),
         "model": {"type": "BPE", "vocab": {\(vocab.joined(separator: ", "))}, "merges": \(merges)\(extraModel)}}
        """
    }

    func tokenizer(_ json: String, config: String? = nil) throws -> Tokenizer {
        try Tokenizer(files: .init(tokenizerJSON: Data(json.utf8), tokenizerConfigJSON: config.map { Data($0.utf8) }))
    }

    func testSmallByteLevelBPE() throws {
        let t = try tokenizer(Self.byteLevelJSON(), config: #"{"eos_token": "<|end|>", "chat_template": "{{ x }}"}"#)
        let the = try XCTUnwrap(t.id(of: "Ġthe"))
        // "a" | " the" (merged fully) | <|end|> | é as its two byte symbols; the ByteLevel post-processor adds nothing.
        let ids = try t.encode("a the<|end|>é", addSpecialTokens: true)
        XCTAssertEqual(ids, [97, the, 259, 0xC3, 0xA9])
        XCTAssertEqual(try t.encode("a the<|end|>é", addSpecialTokens: false), ids)
        XCTAssertEqual(try t.decode(ids, skipSpecialTokens: false), "a the<|end|>é")
        XCTAssertEqual(try t.decode(ids), "a theé")
        XCTAssertEqual(t.eosId, 259)
        XCTAssertNil(t.bosId)
        XCTAssertEqual(t.chatTemplate, "{{ x }}")
        XCTAssertEqual(t.vocabSize, 260)
        XCTAssertThrowsError(try t.decode([260])) { XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: 260, vocabSize: 260)) }
    }

    func testIgnoreMergesTakesWholeWordsFromTheVocabulary() throws {
        // Without the merge "Ġt he" the word " the" is "Ġt" + "he"; with ignore_merges it is the vocabulary's "Ġthe".
        let merges = #"["Ġ t", "h e"]"#
        let plain = try tokenizer(Self.byteLevelJSON(merges: merges))
        XCTAssertEqual(try plain.encode(" the", addSpecialTokens: false), [256, 257])
        let ignoring = try tokenizer(Self.byteLevelJSON(model: #", "ignore_merges": true"#, merges: merges))
        XCTAssertEqual(try ignoring.encode(" the", addSpecialTokens: false), [258])
    }

    func expectError(_ json: String, config: String? = nil, _ check: (ModelError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try tokenizer(json, config: config), file: file, line: line) { error in
            guard let e = error as? ModelError else { return XCTFail("not a ModelError: \(error)", file: file, line: line) }
            XCTAssertTrue(check(e), "\(e)", file: file, line: line)
        }
    }

    func invalid(_ fragment: String) -> (ModelError) -> Bool {
        { if case .invalidTokenizer(let why) = $0 { return why.contains(fragment) }; return false }
    }

    func unsupported(_ fragment: String) -> (ModelError) -> Bool {
        { if case .unsupportedTokenizer(_, let component) = $0 { return component.contains(fragment) }; return false }
    }

    func testMalformedFilesNameTheField() {
        expectError("[1, 2]", invalid("not a JSON object"))
        expectError("{}", invalid("model"))
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": -1}}}"#, invalid("model.vocab[\"a\"]"))
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 1.5}}}"#, invalid("model.vocab[\"a\"]"))
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}}"#, invalid("gives id 0"))
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": "a b"}}"#, invalid("model.merges"))
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}"#, invalid("model.merges[0]"))
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a  b"]}}"#, invalid("model.merges[0]"))
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}}"#, invalid("model.merges[0]"))
        expectError(#"{"added_tokens": [{"id": "x", "content": "<s>"}], "model": {"type": "BPE", "vocab": {"a": 0}}}"#, invalid("added_tokens[0].id"))
        expectError(#"{"added_tokens": [{"id": 1}], "model": {"type": "BPE", "vocab": {"a": 0}}}"#, invalid("added_tokens[0].content"))
        expectError(#"{"added_tokens": [{"id": 5, "content": "a"}], "model": {"type": "BPE", "vocab": {"a": 0}}}"#, invalid("added_tokens"))
        expectError(Self.byteLevelJSON(root: #", "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}}"#)
                        .replacingOccurrences(of: #""post_processor": {"type": "ByteLevel"},"#, with: ""), invalid("special_tokens"))
        expectError(Self.byteLevelJSON(), config: #"{"eos_token": "<nope>"}"#, invalid("eos_token"))
        expectError(Self.byteLevelJSON(), config: "not json", invalid("tokenizer_config.json"))
    }

    func testUnsupportedComponentsAreNamed() {
        expectError(#"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}"#, unsupported("WordPiece"))
        expectError(#"{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}"#, unsupported("Unigram"))
        let base = Self.byteLevelJSON()
        expectError(base.replacingOccurrences(of: #""normalizer": null"#, with: #""normalizer": {"type": "NFKC"}"#), unsupported("NFKC"))
        expectError(base.replacingOccurrences(of: #""normalizer": null"#, with: #""normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}]}"#), unsupported("Prepend"))
        expectError(base.replacingOccurrences(of: #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#,
                                              with: #"{"type": "Metaspace", "replacement": "▁"}"#), unsupported("Metaspace"))
        expectError(base.replacingOccurrences(of: #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#,
                                              with: #"{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}"#), unsupported("Regex"))
        expectError(base.replacingOccurrences(of: #""post_processor": {"type": "ByteLevel"}"#, with: #""post_processor": {"type": "RobertaProcessing"}"#), unsupported("RobertaProcessing"))
        expectError(base.replacingOccurrences(of: #""decoder": {"type": "ByteLevel"}"#, with: #""decoder": {"type": "WordPiece"}"#), unsupported("WordPiece"))
        expectError(base.replacingOccurrences(of: #""special": true"#, with: #""special": true, "lstrip": true"#), unsupported("lstrip"))
        expectError(Self.byteLevelJSON(model: ###", "continuing_subword_prefix": "##""###), unsupported("continuing_subword_prefix"))
    }

    func testCheckpointWithoutTokenizerOrWithABrokenOneFails() throws {
        let dir = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try Tokenizer.read(from: dir)) { XCTAssertEqual($0 as? ModelError, .missingFile(path: dir + "/tokenizer.json")) }
        try Data("{".utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        XCTAssertThrowsError(try Tokenizer.read(from: dir)) { error in
            guard case .invalidTokenizer(let why)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains(dir + "/tokenizer.json"), why)
        }
    }

    func testChatTemplateFileWinsOverTheConfigAndRoundTrips() throws {
        let dir = try makeTemporaryDirectory(self)
        try Tokenizer(files: .init(tokenizerJSON: Data(Self.byteLevelJSON().utf8),
                                   tokenizerConfigJSON: Data(#"{"chat_template": "from config"}"#.utf8),
                                   chatTemplateFile: "from file")).write(to: dir)
        let back = try Tokenizer.read(from: dir)
        XCTAssertEqual(back.chatTemplate, "from file")
        XCTAssertEqual(back.files.chatTemplateFile, "from file")
    }
}

/// GPT-2's byte-to-character table, written out independently of the one under test.
enum ByteLevelTable {
    static let characters: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable.map { Character(Unicode.Scalar(UInt8($0))) }
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b); chars.append(Character(Unicode.Scalar(UInt32(256 + n))!)); n += 1
        }
        var byByte = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, chars) { byByte[b] = c }
        return byByte
    }()
}
