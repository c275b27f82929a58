import Foundation

/// A checkpoint's tokenizer, read from Hugging Face's `tokenizer.json` (plus `tokenizer_config.json`
/// and `chat_template.jinja` when present) and encoding to the same ids as the `tokenizers` library.
///
/// It implements what the Llama family ships — byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM2)
/// and Tether's own character vocabulary (`CharTokenizer`, a BPE without merges):
/// added tokens matched before anything else and never split, an NFC or no normalizer, the
/// `ByteLevel` / `Split` / `Digits` pre-tokenizers, BPE with merges in either JSON form and
/// `ignore_merges`, `TemplateProcessing` / `ByteLevel` post-processors and the `ByteLevel` /
/// `Fuse` decoders. Any other component is refused by name when the file is read
/// (`ModelError.unsupportedTokenizer`), because tokenizing differently from `tokenizers` would
/// silently corrupt training and generation.
///
/// The source files are kept verbatim (`files`) so that saving a checkpoint writes back exactly
/// the tokenizer it was loaded with; two tokenizers are equal when their files are.
public struct Tokenizer: Sendable, Equatable {
    /// The files the tokenizer was read from (written back unchanged by `write(to:)`).
    public struct Files: Sendable, Equatable {
        public var tokenizerJSON: Data
        public var tokenizerConfigJSON: Data?
        /// `chat_template.jinja`, when it sits beside tokenizer.json.
        public var chatTemplateFile: String?

        public init(tokenizerJSON: Data, tokenizerConfigJSON: Data? = nil, chatTemplateFile: String? = nil) {
            self.tokenizerJSON = tokenizerJSON
            self.tokenizerConfigJSON = tokenizerConfigJSON
            self.chatTemplateFile = chatTemplateFile
        }
    }

    /// A token matched in raw text before normalization and BPE (`added_tokens`).
    public struct AddedToken: Sendable, Equatable {
        public var id: Int
        public var content: String
        /// Special tokens are dropped by `decode(_:skipSpecialTokens: true)`.
        public var special: Bool
    }

    public static let fileName = "tokenizer.json"
    public static let configFileName = "tokenizer_config.json"
    public static let chatTemplateFileName = "chat_template.jinja"

    public let files: Files
    public let addedTokens: [AddedToken]
    /// Ids named by tokenizer_config.json's `bos_token` / `eos_token` / `pad_token` (nil when it names none).
    public let bosId: Int?
    public let eosId: Int?
    public let padId: Int?
    /// The raw Jinja chat template: `chat_template.jinja`, else tokenizer_config.json's `chat_template`.
    public let chatTemplate: String?
    /// `chatTemplate` parsed once when the tokenizer is read, so every prompt rendered through it
    /// (`ChatFormat`, `taskPromptIds`) reuses the parse; a template outside the renderer's subset
    /// keeps its error for the first caller that needs it, and raw-text encoding still works.
    let parsedChatTemplate: Result<ChatTemplate, ChatTemplateError>?
    /// Token count: one more than the largest id of the vocabulary and the added tokens.
    public let vocabSize: Int

    let model: BytePairModel
    let normalizer: Normalizer
    let preTokenizer: PreTokenizer
    /// Ids the post-processor puts around one sequence when special tokens are added.
    let prefixIds: [Int], suffixIds: [Int]
    let decoders: [DecoderStep]
    let tokenOfId: [String?]
    let specialIds: Set<Int>
    let addedMatcher: AddedTokenMatcher

    public static func == (a: Tokenizer, b: Tokenizer) -> Bool { a.files == b.files }

    /// The built-in character vocabulary (`CharTokenizer.standard`), as the checkpoint files Tether writes for it.
    public static let standard = try! Tokenizer(CharTokenizer.standard)

    /// The tokenizer stored by `CharTokenizer`'s own tokenizer.json and tokenizer_config.json.
    public init(_ vocabulary: CharTokenizer) throws {
        try self.init(files: Files(tokenizerJSON: Data(vocabulary.tokenizerJSON().utf8),
                                   tokenizerConfigJSON: Data(vocabulary.tokenizerConfigJSON().utf8)))
    }

    /// Reads `tokenizer.json` from `directory`, with `tokenizer_config.json` and `chat_template.jinja` when present.
    public static func read(from directory: String) throws -> Tokenizer {
        let dir = URL(fileURLWithPath: directory).standardizedFileURL.path
        func optional(_ name: String) throws -> Data? {
            let path = dir + "/" + name
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            return try LlamaCheckpoint.readFile(path)
        }
        let json = try LlamaCheckpoint.readFile(dir + "/" + fileName)
        let config = try optional(configFileName)
        let template = try optional(chatTemplateFileName).map { String(decoding: $0, as: UTF8.self) }
        return try Tokenizer(files: Files(tokenizerJSON: json, tokenizerConfigJSON: config, chatTemplateFile: template),
                             path: dir + "/" + fileName)
    }

    /// Writes the source files into `directory` (atomically each).
    public func write(to directory: String) throws {
        try AtomicFile.write(files.tokenizerJSON, to: directory + "/" + Self.fileName)
        if let c = files.tokenizerConfigJSON { try AtomicFile.write(c, to: directory + "/" + Self.configFileName) }
        if let t = files.chatTemplateFile { try AtomicFile.write(Data(t.utf8), to: directory + "/" + Self.chatTemplateFileName) }
    }

    // MARK: lookup

    /// The id of a token (an added token's content, or a vocabulary entry in its stored form —
    /// byte-level tokens spell a space as `Ġ`).
    public func id(of token: String) -> Int? { addedMatcher.idOfContent[token] ?? model.idOfToken[token] }

    /// The stored text of an id, nil outside the vocabulary.
    public func token(of id: Int) -> String? { id >= 0 && id < tokenOfId.count ? tokenOfId[id] : nil }

    /// Whether `id` is a special added token (dropped when decoding with `skipSpecialTokens`).
    public func isSpecial(_ id: Int) -> Bool { specialIds.contains(id) }

    /// `eosId`, or an error naming the missing setting for callers that must end sequences.
    public func requireEOS() throws -> Int {
        guard let eosId else { throw ModelError.invalidTokenizer("\(Self.configFileName) names no eos_token") }
        return eosId
    }

    /// Ids of a prompt: the text with the special tokens the post-processor adds (`<bos>` first for
    /// Llama 3 and the built-in vocabulary, nothing for SmolLM2 and Qwen2), as transformers encodes it.
    public func promptIds(_ text: String) throws -> [Int] { try encode(text, addSpecialTokens: true) }

    /// Ids of a completion the policy learns to end: the text, then `eos_token`.
    public func completionIds(_ text: String) throws -> [Int] { try encode(text, addSpecialTokens: false) + [requireEOS()] }

    /// The id that fills padded positions (they are masked, so any id works): `pad_token`, else `eos_token`, else 0.
    public var paddingId: Int { padId ?? eosId ?? 0 }

    // MARK: encoding

    /// Ids of `text` as `tokenizers`' `encode(text, add_special_tokens=addSpecialTokens)` gives them.
    /// Added tokens in the text are matched as such; with `splitSpecialTokens` the special ones are
    /// spelled out instead (transformers' `split_special_tokens`), so user text cannot inject them.
    public func encode(_ text: String, addSpecialTokens: Bool, splitSpecialTokens: Bool = false) throws -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.utf8.count / 3 + prefixIds.count + suffixIds.count)
        if addSpecialTokens { out += prefixIds }
        var work = PreTokenizer.Work()
        var bytes: [UInt8] = []
        var segmentStart = text.unicodeScalars.startIndex
        for match in addedMatcher.matches(in: text, skipSpecial: splitSpecialTokens) {
            try encodeSegment(text.unicodeScalars[segmentStart..<match.range.lowerBound], &work, &bytes, &out)
            out.append(match.id)
            segmentStart = match.range.upperBound
        }
        try encodeSegment(text.unicodeScalars[segmentStart...], &work, &bytes, &out)
        if addSpecialTokens { out += suffixIds }
        return out
    }

    private func encodeSegment(_ segment: Substring.UnicodeScalarView, _ work: inout PreTokenizer.Work,
                               _ bytes: inout [UInt8], _ out: inout [Int]) throws {
        if segment.isEmpty { return }
        switch normalizer {
        case .none: work.load(segment)
        case .nfc: work.load(Substring(String(Substring(segment)).precomposedStringWithCanonicalMapping).unicodeScalars)
        }
        preTokenizer.run(&work)
        if preTokenizer.isByteLevel {
            for piece in work.pieces {
                bytes.removeAll(keepingCapacity: true)
                for v in work.scalars[piece] { UTF8.encode(Unicode.Scalar(v)!) { bytes.append($0) } }
                try bytes.withUnsafeBufferPointer { try model.encodeByteLevel($0, into: &out) }
            }
        } else {
            for piece in work.pieces { try model.encodeScalars(work.scalars[piece], into: &out) }
        }
    }

    // MARK: decoding

    /// Text of `ids` as `tokenizers`' `decode` gives it; special added tokens are dropped when
    /// `skipSpecialTokens`. An id outside the vocabulary is an error (`tokenizers` would skip it).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) throws -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = token(of: id) else { throw ModelError.tokenOutOfRange(token: id, vocabSize: vocabSize) }
            if skipSpecialTokens, specialIds.contains(id) { continue }
            tokens.append(t)
        }
        if decoders.isEmpty { return tokens.joined(separator: " ") }
        for step in decoders { tokens = step.decode(tokens) }
        return tokens.joined()
    }
}

/// The `normalizer` of a `tokenizer.json` that Tether applies to text between added tokens.
enum Normalizer: Sendable, Equatable { case none, nfc }

/// One `decoder` of a `tokenizer.json`, applied to the token strings in order (`decode_chain`).
enum DecoderStep: Sendable, Equatable {
    /// Undoes the byte-to-character table; a token with a character outside it contributes its
    /// own UTF-8 (as `tokenizers` does for added tokens); invalid UTF-8 becomes U+FFFD.
    case byteLevel
    /// Concatenates the tokens.
    case fuse

    func decode(_ tokens: [String]) -> [String] {
        switch self {
        case .fuse: return [tokens.joined()]
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                let start = bytes.count
                var mapped = true
                for u in t.unicodeScalars {
                    let b = u.value < 0x144 ? ByteLevelAlphabet.byteOfScalar[Int(u.value)] : -1
                    if b < 0 { mapped = false; break }
                    bytes.append(UInt8(b))
                }
                if !mapped { bytes.removeLast(bytes.count - start); bytes.append(contentsOf: t.utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        }
    }
}

/// Finds added tokens in text, leftmost first and the longest at a position (the
/// leftmost-longest Aho–Corasick matching of `tokenizers`' `AddedVocabulary`).
struct AddedTokenMatcher: Sendable {
    struct Candidate: Sendable { var scalars: [Unicode.Scalar]; var id: Int; var special: Bool }
    let byFirstScalar: [Unicode.Scalar: [Candidate]]
    let idOfContent: [String: Int]

    init(_ tokens: [Tokenizer.AddedToken]) {
        var map: [Unicode.Scalar: [Candidate]] = [:]
        var ids: [String: Int] = [:]
        for t in tokens where !t.content.isEmpty {
            let s = Array(t.content.unicodeScalars)
            map[s[0], default: []].append(Candidate(scalars: s, id: t.id, special: t.special))
            ids[t.content] = t.id
        }
        byFirstScalar = map.mapValues { $0.sorted { $0.scalars.count > $1.scalars.count } }
        idOfContent = ids
    }

    struct Match { var range: Range<String.UnicodeScalarView.Index>; var id: Int }

    func matches(in text: String, skipSpecial: Bool) -> [Match] {
        guard !byFirstScalar.isEmpty else { return [] }
        let view = text.unicodeScalars
        var out: [Match] = []
        var i = view.startIndex
        outer: while i < view.endIndex {
            if let candidates = byFirstScalar[view[i]] {
                for c in candidates where !(skipSpecial && c.special) {
                    var j = i, k = 0
                    while k < c.scalars.count, j < view.endIndex, view[j] == c.scalars[k] { j = view.index(after: j); k += 1 }
                    if k == c.scalars.count {
                        out.append(Match(range: i..<j, id: c.id))
                        i = j
                        continue outer
                    }
                }
            }
            i = view.index(after: i)
        }
        return out
    }
}
