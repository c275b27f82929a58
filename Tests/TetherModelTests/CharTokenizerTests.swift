import Foundation
import TetherModel
import XCTest

final class CharTokenizerTests: XCTestCase {
    let tok = CharTokenizer.standard

    func testStandardVocabularyHasTheAgreedIds() throws {
        XCTAssertEqual(tok.vocabSize, 64)
        XCTAssertEqual([tok.padId, tok.bosId, tok.eosId], [0, 1, 2])
        XCTAssertEqual(Array(tok.tokens[0..<3]), ["<pad>", "<bos>", "<eos>"])
        XCTAssertEqual(try tok.encode("0"), [3]); XCTAssertEqual(try tok.encode("9"), [12])
        XCTAssertEqual(try tok.encode("a"), [13]); XCTAssertEqual(try tok.encode("z"), [38])
        XCTAssertEqual(try tok.encode(" \n"), [39, 40])
        XCTAssertEqual(try tok.encode("+-*/=?!,.:;()<>[]'\"#%&_"), Array(41...63))
    }

    func testEncodeDecodeRoundTrip() throws {
        let text = "what is 12+30?\n  answer: (42)!"
        let ids = try tok.encode(text)
        XCTAssertEqual(ids.count, text.unicodeScalars.count)
        XCTAssertEqual(try tok.decode(ids), text)
        XCTAssertEqual(try tok.decode([tok.bosId] + ids + [tok.eosId, tok.padId]), text)
        XCTAssertEqual(try tok.decode([tok.bosId, 13, tok.eosId], skipSpecialTokens: false), "<bos>a<eos>")
    }

    func testUnknownCharacterAndOutOfRangeIdAreNamed() {
        XCTAssertThrowsError(try tok.encode("abC")) { XCTAssertEqual($0 as? ModelError, .unknownToken("C")) }
        XCTAssertThrowsError(try tok.encode("a\r\nb")) { XCTAssertEqual($0 as? ModelError, .unknownToken("\r")) }
        XCTAssertThrowsError(try tok.decode([5, 64])) { XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: 64, vocabSize: 64)) }
    }

    func testTokenizerJSONRoundTripsInSwift() throws {
        let back = try CharTokenizer(tokenizerJSON: Data(tok.tokenizerJSON().utf8))
        XCTAssertEqual(back, tok)
    }

    func testOtherTokenizerKindsAreRejectedWithAReason() {
        let wordPiece = #"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}"#
        XCTAssertThrowsError(try CharTokenizer(tokenizerJSON: Data(wordPiece.utf8))) {
            guard case .invalidTokenizer(let why) = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("WordPiece"), why)
        }
        let merges = #"{"model": {"type": "BPE", "vocab": {"<pad>": 0, "<bos>": 1, "<eos>": 2, "a": 3, "b": 4, "ab": 5}, "merges": ["a b"]}}"#
        XCTAssertThrowsError(try CharTokenizer(tokenizerJSON: Data(merges.utf8))) {
            guard case .invalidTokenizer(let why) = $0 as? ModelError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("merges"), why)
        }
        XCTAssertThrowsError(try CharTokenizer(tokenizerJSON: Data("[1,2]".utf8)))
    }

    /// The `tokenizers` library reads our tokenizer.json, encodes to our ids and decodes back exactly.
    func testHuggingFaceTokenizersAgrees() throws {
        try PeerPython.require(["tokenizers"])
        let dir = try makeTemporaryDirectory(self)
        try tok.tokenizerJSON().write(toFile: dir + "/tokenizer.json", atomically: true, encoding: .utf8)
        let texts = ["hello world", "  12+34=46\n\nx", "(a<b)!'\"#%&_ [c]: d; e, f. g/h*i-j?"]
        let script = """
        import json, sys
        from tokenizers import Tokenizer
        t = Tokenizer.from_file(sys.argv[1])
        out = []
        for s in json.loads(sys.argv[2]):
            ids = t.encode(s).ids
            out.append({"ids": ids, "decoded": t.decode(ids), "with_specials": t.decode([1] + ids + [2])})
        print(json.dumps(out))
        """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: texts), as: UTF8.self)
        let out = try PeerPython.run(script, [dir + "/tokenizer.json", json])
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        for (text, row) in zip(texts, rows) {
            XCTAssertEqual(row["ids"] as? [Int], try tok.encode(text), text)
            XCTAssertEqual(row["decoded"] as? String, text)
            XCTAssertEqual(row["with_specials"] as? String, text)
        }
    }
}
