import Foundation

/// Rebuilds a Hugging Face `tokenizer.json` and `tokenizer_config.json` from a GGUF file's
/// `tokenizer.*` metadata, producing what `transformers` builds when it loads the same file with
/// `from_pretrained(dir, gguf_file=…)` (integrations/gguf/gguf_tokenizer_mapping.py): a byte-level
/// BPE over the file's vocabulary and merges, the GPT-2 `ByteLevel` pre-tokenizer or, for the
/// vocabularies whose `tokenizer.ggml.pre` names a Llama 3 or Qwen2 split regex, that regex before
/// a regex-free `ByteLevel`; control tokens (type 3) become special added tokens, user-defined
/// ones (type 4) plain added tokens, so both are matched whole before BPE.
///
/// Only byte-level BPE vocabularies (`tokenizer.ggml.model` "gpt2") are rebuilt; a pre-tokenizer
/// name whose split rule is not known here is an error rather than a silently different tokenizer.
public struct GGUFTokenizer: Sendable {
    public let tokens: [String]
    public let tokenTypes: [Int]
    public let merges: [(String, String)]
    public let preTokenizer: String?
    public let bosTokenId: Int?
    public let eosTokenId: Int?
    public let unknownTokenId: Int?
    public let paddingTokenId: Int?
    public let addBosToken: Bool
    public let addEosToken: Bool
    public let chatTemplate: String?

    static let controlType = 3
    static let userDefinedType = 4

    /// GPT-2's pre-tokenizer regex applies to these (for SmolLM's vocabulary, which has no
    /// multi-digit tokens, llama.cpp's one-digit split gives the same pieces).
    static let byteLevelPreTokenizers: Set<String> = ["default", "gpt2", "smollm"]
    static let llama3Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// `tokenizer.ggml.pre` names whose split regex `transformers` uses (GGUF_PRE_TOKENIZER_SPLITS).
    static let splitRegexes: [String: String] = [
        "llama3": llama3Split, "llama-v3": llama3Split, "llama-bpe": llama3Split, "falcon3": llama3Split,
        "dbrx": llama3Split, "smaug-bpe": llama3Split,
        "qwen2": qwen2Split, "deepseek-r1-qwen": qwen2Split, "megrez": qwen2Split,
    ]

    public init(file: GGUFFile) throws {
        let path = file.path
        func meta(_ key: String) -> GGUFValue? { file.metadata["tokenizer." + key] }
        func invalid(_ key: String, _ why: String) -> GGUFError { .invalidMetadata(path: path, key: "tokenizer." + key, detail: why) }

        guard let model = meta("ggml.model") else { throw invalid("ggml.model", "missing: the file carries no tokenizer") }
        guard model.string == "gpt2" else {
            throw GGUFError.unsupportedTokenizer(path: path, key: "tokenizer.ggml.model",
                                                 detail: "\(model) is not a byte-level BPE vocabulary (\"gpt2\"); only those are rebuilt")
        }
        guard let tokenValues = meta("ggml.tokens")?.array else { throw invalid("ggml.tokens", "missing or not an array") }
        let tokens: [String] = try tokenValues.enumerated().map { i, v in
            guard let s = v.string else { throw invalid("ggml.tokens", "entry \(i) is not a string") }
            return s
        }
        guard !tokens.isEmpty else { throw invalid("ggml.tokens", "is empty") }
        self.tokens = tokens
        if let types = meta("ggml.token_type") {
            guard let a = types.array, a.count == tokens.count else {
                throw invalid("ggml.token_type", "is not an array of \(tokens.count) integers, one per token")
            }
            tokenTypes = try a.enumerated().map { i, v in
                guard let t = v.int else { throw invalid("ggml.token_type", "entry \(i) is not an integer") }
                return t
            }
        } else {
            tokenTypes = Array(repeating: 1, count: tokens.count)
        }
        guard let mergeValues = meta("ggml.merges")?.array else { throw invalid("ggml.merges", "missing: a BPE vocabulary needs its merges") }
        merges = try mergeValues.enumerated().map { i, v in
            guard let s = v.string else { throw invalid("ggml.merges", "entry \(i) is not a string") }
            let parts = s.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw invalid("ggml.merges", "entry \(i) \(s.debugDescription) is not two tokens separated by one space")
            }
            return (String(parts[0]), String(parts[1]))
        }
        if let pre = meta("ggml.pre") {
            guard let name = pre.string else { throw invalid("ggml.pre", "is not a string") }
            guard Self.byteLevelPreTokenizers.contains(name) || Self.splitRegexes[name] != nil else {
                throw GGUFError.unsupportedTokenizer(
                    path: path, key: "tokenizer.ggml.pre",
                    detail: "pre-tokenizer \(name.debugDescription) is not one Tether can rebuild exactly (known: \((Self.byteLevelPreTokenizers.union(Self.splitRegexes.keys)).sorted().joined(separator: ", ")))")
            }
            preTokenizer = name
        } else {
            preTokenizer = nil
        }
        let tokenCount = tokens.count
        func tokenId(_ key: String) throws -> Int? {
            guard let v = meta(key) else { return nil }
            guard let id = v.int, id >= 0, id < tokenCount else { throw invalid(key, "\(v) is not a token id below \(tokenCount)") }
            return id
        }
        bosTokenId = try tokenId("ggml.bos_token_id")
        eosTokenId = try tokenId("ggml.eos_token_id")
        unknownTokenId = try tokenId("ggml.unknown_token_id")
        paddingTokenId = try tokenId("ggml.padding_token_id")
        func flag(_ key: String) throws -> Bool {
            guard let v = meta(key) else { return false }
            guard let b = v.bool else { throw invalid(key, "\(v) is not a bool") }
            return b
        }
        addBosToken = try flag("ggml.add_bos_token")
        addEosToken = try flag("ggml.add_eos_token")
        if let t = meta("chat_template") {
            guard let s = t.string else { throw invalid("chat_template", "is not a string") }
            chatTemplate = s
        } else {
            chatTemplate = nil
        }
        if addBosToken, self.bosTokenId == nil { throw invalid("ggml.add_bos_token", "is true but there is no tokenizer.ggml.bos_token_id") }
        if addEosToken, self.eosTokenId == nil { throw invalid("ggml.add_eos_token", "is true but there is no tokenizer.ggml.eos_token_id") }
    }

    /// GPT-2's reversible byte → character map (`bytes_to_unicode`): printable Latin-1 bytes stand
    /// for themselves, the other 68 are moved to U+0100 onwards, so every byte string is visible text.
    static let byteCharacters: [Unicode.Scalar] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var map = [Unicode.Scalar](repeating: " ", count: 256)
        for b in printable { map[b] = Unicode.Scalar(UInt32(b))! }
        var next: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) {
            map[b] = Unicode.Scalar(next)!
            next += 1
            printable.append(b)
        }
        return map
    }()
    static let byteAlphabet = Set(byteCharacters)

    static func inByteAlphabet(_ token: String) -> Bool { token.unicodeScalars.allSatisfy { byteAlphabet.contains($0) } }

    /// A token as the byte-level vocabulary spells it: unchanged when it already is byte-level
    /// text, else its UTF-8 bytes mapped through `byteCharacters` (as transformers does).
    static func byteLevelSpelling(_ token: String) -> String {
        if inByteAlphabet(token) { return token }
        var s = String.UnicodeScalarView()
        for b in token.utf8 { s.append(byteCharacters[Int(b)]) }
        return String(s)
    }

    /// Tokens matched whole before BPE: (id, text, special).
    var addedTokens: [(id: Int, content: String, special: Bool)] {
        var out: [(Int, String, Bool)] = []
        for (id, (token, type)) in zip(tokens, tokenTypes).enumerated() where Self.inByteAlphabet(token) {
            if type == Self.controlType { out.append((id, token, true)) }
            else if type == Self.userDefinedType { out.append((id, token, false)) }
        }
        return out
    }

    /// The `tokenizer.json` text, vocabulary in id order.
    public func tokenizerJSON() -> String {
        var vocabulary: [(String, Int)] = []
        var lastId: [String: Int] = [:]
        let spelled = tokens.map(Self.byteLevelSpelling)
        for (id, s) in spelled.enumerated() { lastId[s] = id }  // a repeated spelling keeps its last id, as a Python dict does
        for (id, s) in spelled.enumerated() where lastId[s] == id { vocabulary.append((s, id)) }

        var j = "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ["
        j += addedTokens.map { t in
            "\n    {\"id\": \(t.id), \"content\": \(jsonString(t.content)), \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": \(t.special)}"
        }.joined(separator: ",")
        j += "\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": \(preTokenizerJSON()),\n"
        j += "  \"post_processor\": \(postProcessorJSON()),\n"
        j += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n"
        j += "  \"model\": {\n    \"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\",\n"
        j += "    \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,\n    \"vocab\": {"
        j += vocabulary.map { "\n      \(jsonString($0.0)): \($0.1)" }.joined(separator: ",")
        j += "\n    },\n    \"merges\": ["
        j += merges.map { "\n      [\(jsonString($0.0)), \(jsonString($0.1))]" }.joined(separator: ",")
        j += "\n    ]\n  }\n}\n"
        return j
    }

    func preTokenizerJSON() -> String {
        if let name = preTokenizer, let regex = Self.splitRegexes[name] {
            return "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \(jsonString(regex))}, \"behavior\": \"Isolated\", \"invert\": false}, "
                + "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}"
        }
        return "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}"
    }

    /// `TemplateProcessing` that adds BOS/EOS exactly when the file's `add_bos_token`/`add_eos_token` say so.
    func postProcessorJSON() -> String {
        func special(_ id: Int, _ typeId: Int) -> String { "{\"SpecialToken\": {\"id\": \(jsonString(tokens[id])), \"type_id\": \(typeId)}}" }
        func sequence(_ name: String, _ typeId: Int) -> String { "{\"Sequence\": {\"id\": \"\(name)\", \"type_id\": \(typeId)}}" }
        let bos = addBosToken ? bosTokenId : nil, eos = addEosToken ? eosTokenId : nil
        var single: [String] = [], pair: [String] = []
        if let bos { single.append(special(bos, 0)) }
        single.append(sequence("A", 0))
        if let eos { single.append(special(eos, 0)) }
        pair = single
        if let bos { pair.append(special(bos, 1)) }
        pair.append(sequence("B", 1))
        if let eos { pair.append(special(eos, 1)) }
        var specials: [Int] = []
        for id in [bos, eos].compactMap({ $0 }) where !specials.contains(id) { specials.append(id) }
        let map = specials.map { id in
            "\(jsonString(tokens[id])): {\"id\": \(jsonString(tokens[id])), \"ids\": [\(id)], \"tokens\": [\(jsonString(tokens[id]))]}"
        }.joined(separator: ", ")
        return "{\"type\": \"TemplateProcessing\", \"single\": [\(single.joined(separator: ", "))], \"pair\": [\(pair.joined(separator: ", "))], \"special_tokens\": {\(map)}}"
    }

    /// `tokenizer_config.json`: the special tokens by text, whether BOS/EOS are added, the chat template.
    public func tokenizerConfigJSON(modelMaxLength: Int) throws -> Data {
        func token(_ id: Int?) -> Any { id.map { tokens[$0] } ?? NSNull() }
        var dict: [String: Any] = [
            "add_bos_token": addBosToken,
            "add_eos_token": addEosToken,
            "bos_token": token(bosTokenId),
            "eos_token": token(eosTokenId),
            "unk_token": token(unknownTokenId),
            "pad_token": token(paddingTokenId),
            "clean_up_tokenization_spaces": false,
            "model_max_length": modelMaxLength,
            "tokenizer_class": "PreTrainedTokenizerFast",
        ]
        if let chatTemplate { dict["chat_template"] = chatTemplate }
        var data = try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
