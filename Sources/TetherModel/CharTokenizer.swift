import Foundation

/// A character-level tokenizer: one id per Unicode scalar, plus `<pad>`, `<bos>`, `<eos>`.
///
/// The built-in vocabulary (`standard`) has exactly 64 ids, the `vocab_size` of the reference
/// model: 0 `<pad>`, 1 `<bos>`, 2 `<eos>`, 3–12 digits, 13–38 `a`–`z`, then 39–63 the 25 symbols
/// space, newline, `+ - * / = ? ! , . : ; ( ) < > [ ] ' " # % & _`. Other modules rely on these ids.
///
/// It is stored as a Hugging Face `tokenizer.json` with a BPE model that has no merges, no
/// normalizer and no pre-tokenizer (so every scalar, spaces and newlines included, is its own
/// token), a `TemplateProcessing` post-processor that puts `<bos>` before a sequence (Tether's
/// prompts start with it, and so `transformers` encodes them the same way) and a `Fuse` decoder
/// (so decoding concatenates without inserting spaces). Checkpoints read it back through the
/// general `Tokenizer`, which gives the same ids as this type and as the `tokenizers` library.
/// One deliberate difference: `tokenizers` (and `Tokenizer` unless told to split special tokens)
/// turns the literal text `<bos>` (etc.) into the special token, while `encode` here spells it out
/// character by character.
public struct CharTokenizer: Equatable, Sendable {
    /// `tokens[id]` is the text of an id; special tokens are the first `specialCount` ids.
    public let tokens: [String]
    public let padId: Int
    public let bosId: Int
    public let eosId: Int
    private let idOfScalar: [Unicode.Scalar: Int]

    public static let padToken = "<pad>"
    public static let bosToken = "<bos>"
    public static let eosToken = "<eos>"
    static let specials = [padToken, bosToken, eosToken]

    /// The 61 characters of the built-in vocabulary, in id order starting at 3.
    public static let standardCharacters: [Character] =
        Array("0123456789abcdefghijklmnopqrstuvwxyz") + [" ", "\n"] + Array("+-*/=?!,.:;()<>[]'\"#%&_")

    public static let standard = try! CharTokenizer(tokens: specials + standardCharacters.map(String.init))

    /// `tokens` must start with `<pad>`, `<bos>`, `<eos>`; every other token is one Unicode scalar.
    public init(tokens: [String]) throws {
        guard Array(tokens.prefix(3)) == Self.specials else {
            throw ModelError.invalidTokenizer("the first three tokens must be \(Self.specials), found \(Array(tokens.prefix(3)))")
        }
        var map: [Unicode.Scalar: Int] = [:]
        for (id, t) in tokens.enumerated().dropFirst(3) {
            let scalars = Array(t.unicodeScalars)
            guard scalars.count == 1 else {
                throw ModelError.invalidTokenizer("token \(id) \(t.debugDescription) is not a single character")
            }
            guard map.updateValue(id, forKey: scalars[0]) == nil else {
                throw ModelError.invalidTokenizer("character \(t.debugDescription) appears twice")
            }
        }
        self.tokens = tokens
        self.padId = 0
        self.bosId = 1
        self.eosId = 2
        self.idOfScalar = map
    }

    public var vocabSize: Int { tokens.count }

    /// Ids of `text`, one per Unicode scalar, without `<bos>`/`<eos>` (callers add those).
    public func encode(_ text: String) throws -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.unicodeScalars.count)
        for u in text.unicodeScalars {
            guard let id = idOfScalar[u] else { throw ModelError.unknownToken(String(u)) }
            ids.append(id)
        }
        return ids
    }

    /// Text of `ids`. Special tokens are dropped unless `skipSpecialTokens` is false (as in `tokenizers`).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) throws -> String {
        var out = ""
        for id in ids {
            guard id >= 0, id < tokens.count else { throw ModelError.tokenOutOfRange(token: id, vocabSize: tokens.count) }
            if id < Self.specials.count, skipSpecialTokens { continue }
            out += tokens[id]
        }
        return out
    }

    /// Whether every scalar of `text` is in the vocabulary.
    public func canEncode(_ text: String) -> Bool { text.unicodeScalars.allSatisfy { idOfScalar[$0] != nil } }
}

// MARK: - tokenizer.json

extension CharTokenizer {
    /// The `tokenizer.json` text (vocabulary written in id order so a reader can diff it).
    public func tokenizerJSON() -> String {
        let added = Self.specials.enumerated().map { id, t in
            "    {\"id\": \(id), \"content\": \(jsonString(t)), \"single_word\": false, \"lstrip\": false, "
                + "\"rstrip\": false, \"normalized\": false, \"special\": true}"
        }.joined(separator: ",\n")
        let vocab = tokens.enumerated().map { id, t in "      \(jsonString(t)): \(id)" }.joined(separator: ",\n")
        return """
        {
          "version": "1.0",
          "truncation": null,
          "padding": null,
          "added_tokens": [
        \(added)
          ],
          "normalizer": null,
          "pre_tokenizer": null,
          "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [\(bosId)], "tokens": ["<bos>"]}}
          },
          "decoder": {"type": "Fuse"},
          "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": {
        \(vocab)
            },
            "merges": []
          }
        }

        """
    }

    /// `tokenizer_config.json`, so `transformers.AutoTokenizer.from_pretrained(dir)` finds the specials.
    public func tokenizerConfigJSON() -> String {
        """
        {
          "tokenizer_class": "PreTrainedTokenizerFast",
          "bos_token": "\(Self.bosToken)",
          "eos_token": "\(Self.eosToken)",
          "pad_token": "\(Self.padToken)",
          "add_bos_token": true,
          "add_eos_token": false,
          "clean_up_tokenization_spaces": false,
          "model_max_length": 1000000000
        }

        """
    }
}
