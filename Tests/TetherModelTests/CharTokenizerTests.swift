import Foundation
import TetherModel
import TetherTestSupport
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

    /// The general tokenizer reads the char vocabulary's files back to the same ids, `<bos>` first.
    func testGeneralTokenizerReadsTheCharVocabulary() throws {
        let general = try Tokenizer(tok)
        XCTAssertEqual(general.vocabSize, 64)
        XCTAssertEqual([general.padId, general.bosId, general.eosId], [0, 1, 2])
        let text = "what is 12+30?\n  answer: (42)!"
        XCTAssertEqual(try general.encode(text, addSpecialTokens: false), try tok.encode(text))
        XCTAssertEqual(try general.encode(text, addSpecialTokens: true), [1] + (try tok.encode(text)))
        XCTAssertEqual(try general.encode("a<eos>", addSpecialTokens: false), [13, 2])
        XCTAssertEqual(try general.encode("a<eos>", addSpecialTokens: false, splitSpecialTokens: true), try tok.encode("a<eos>"))
        XCTAssertEqual(try general.decode([1, 13, 2], skipSpecialTokens: false), "<bos>a<eos>")
        XCTAssertEqual(try general.decode([1, 13, 2]), "a")
        XCTAssertThrowsError(try general.encode("abC", addSpecialTokens: false)) { XCTAssertEqual($0 as? ModelError, .unknownToken("C")) }
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
            ids = t.encode(s, add_special_tokens=False).ids
            out.append({"ids": ids, "decoded": t.decode(ids), "with_specials": t.decode([1] + ids + [2]),
                        "bos_first": t.encode(s).ids == [1] + ids})
        print(json.dumps(out))
        """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: texts), as: UTF8.self)
        let out = try PeerPython.run(script, [dir + "/tokenizer.json", json])
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])
        for (text, row) in zip(texts, rows) {
            XCTAssertEqual(row["ids"] as? [Int], try tok.encode(text), text)
            XCTAssertEqual(row["decoded"] as? String, text)
            XCTAssertEqual(row["with_specials"] as? String, text)
            XCTAssertEqual(row["bos_first"] as? Bool, true)
        }
    }
}
