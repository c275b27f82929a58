import Foundation

/// Reading `tokenizer.json` (the `tokenizers` serialization) and `tokenizer_config.json`
/// (transformers' settings). Every field is checked: a malformed one is `invalidTokenizer` naming
/// the field, a component Tether does not implement is `unsupportedTokenizer` naming it.
extension Tokenizer {
    public init(files: Files, path: String = "tokenizer.json") throws {
        func invalid(_ field: String, _ why: String) -> ModelError { .invalidTokenizer("\(path): \(field) \(why)") }
        func unsupported(_ field: String, _ what: String) -> ModelError { .unsupportedTokenizer(path: path, component: "\(field) \(what)") }
        guard let root = try? JSONSerialization.jsonObject(with: files.tokenizerJSON) as? [String: Any] else {
            throw ModelError.invalidTokenizer("\(path): not a JSON object")
        }
        func object(_ v: Any?) -> [String: Any]? { v is NSNull ? nil : v as? [String: Any] }
        func isNull(_ v: Any?) -> Bool { v == nil || v is NSNull }
        func int(_ v: Any?, _ field: String) throws -> Int {
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0, i < Int(Int32.max) else {
                throw invalid(field, "is not a token id (a non-negative integer), found \(v.map { "\($0)" } ?? "nothing")")
            }
            return i
        }
        /// The members of a `Sequence` component (`p[key]`), each with its field path.
        func members(_ p: [String: Any], _ key: String, _ field: String, _ body: ([String: Any], String) throws -> Void) throws {
            guard let list = p[key] as? [Any] else { throw invalid("\(field).\(key)", "is not a list") }
            for (i, q) in list.enumerated() {
                guard let q = object(q) else { throw invalid("\(field).\(key)[\(i)]", "is not an object") }
                try body(q, "\(field).\(key)[\(i)]")
            }
        }
        func bool(_ v: Any?, _ field: String, default d: Bool) throws -> Bool {
            if isNull(v) { return d }
            guard let b = v as? Bool else { throw invalid(field, "is not true or false") }
            return b
        }

        // model
        guard let model = object(root["model"]) else { throw invalid("model", "is missing or not an object") }
        guard let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : nil) else {
            throw invalid("model.type", "is missing")
        }
        guard type == "BPE" else { throw unsupported("model.type", type) }
        guard let vocab = object(model["vocab"]) else { throw invalid("model.vocab", "is missing or not an object") }
        var idOfToken: [String: Int] = [:]
        idOfToken.reserveCapacity(vocab.count)
        for (token, v) in vocab { idOfToken[token] = try int(v, "model.vocab[\(token.debugDescription)]") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key] as? String, !s.isEmpty { throw unsupported("model.\(key)", s.debugDescription) }
        }
        if let d = model["dropout"] as? NSNumber, d.doubleValue != 0 { throw unsupported("model.dropout", "\(d)") }
        let ignoreMerges = try bool(model["ignore_merges"], "model.ignore_merges", default: false)
        let byteFallback = try bool(model["byte_fallback"], "model.byte_fallback", default: false)
        if let unk = model["unk_token"] as? String, idOfToken[unk] == nil { throw invalid("model.unk_token", "\(unk.debugDescription) is not in the vocabulary") }

        var merges: [UInt64: UInt64] = [:]
        let mergeList: [Any]
        if isNull(model["merges"]) { mergeList = [] } else {
            guard let m = model["merges"] as? [Any] else { throw invalid("model.merges", "is not a list") }
            mergeList = m
        }
        merges.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let pair: [String]
            if let s = entry as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw invalid("model.merges[\(rank)]", "\(s.debugDescription) is not two tokens separated by one space") }
                pair = parts.map(String.init)
            } else if let p = entry as? [String], p.count == 2 {
                pair = p
            } else {
                throw invalid("model.merges[\(rank)]", "is neither \"a b\" nor [\"a\", \"b\"]")
            }
            guard let a = idOfToken[pair[0]], let b = idOfToken[pair[1]] else {
                throw invalid("model.merges[\(rank)]", "\(pair) names a token that is not in the vocabulary")
            }
            guard let merged = idOfToken[pair[0] + pair[1]] else {
                throw invalid("model.merges[\(rank)]", "merges \(pair) into \((pair[0] + pair[1]).debugDescription), which is not in the vocabulary")
            }
            let key = BytePairModel.pairKey(Int32(a), Int32(b))
            if merges[key] == nil { merges[key] = UInt64(rank) << 32 | UInt64(merged) }
        }

        // added tokens
        var added: [AddedToken] = []
        if !isNull(root["added_tokens"]) {
            guard let list = root["added_tokens"] as? [Any] else { throw invalid("added_tokens", "is not a list") }
            for (i, entry) in list.enumerated() {
                let field = "added_tokens[\(i)]"
                guard let t = object(entry) else { throw invalid(field, "is not an object") }
                guard let content = t["content"] as? String, !content.isEmpty else { throw invalid(field + ".content", "is missing or empty") }
                let id = try int(t["id"], field + ".id")
                for flag in ["single_word", "lstrip", "rstrip"] where try bool(t[flag], "\(field).\(flag)", default: false) {
                    throw unsupported("\(field).\(flag)", "true (added token \(content.debugDescription))")
                }
                added.append(AddedToken(id: id, content: content, special: try bool(t["special"], field + ".special", default: false)))
            }
        }

        // normalizer
        let normalizer: Normalizer
        if let n = object(root["normalizer"]) {
            func kind(_ n: [String: Any], _ field: String) throws -> Normalizer {
                switch n["type"] as? String {
                case "NFC": return .nfc
                case "Sequence":
                    var parts: [Normalizer] = []
                    try members(n, "normalizers", field) { parts.append(try kind($0, $1)) }
                    guard parts.count <= 1 else { throw unsupported(field, "a Sequence of \(parts.count) normalizers") }
                    return parts.first ?? .none
                case let other?: throw unsupported(field, other)
                case nil: throw invalid(field + ".type", "is missing")
                }
            }
            normalizer = try kind(n, "normalizer")
        } else { normalizer = .none }

        // pre-tokenizer
        var steps: [PreTokenizer.Step] = []
        func preStep(_ p: [String: Any], _ field: String) throws {
            switch p["type"] as? String {
            case "ByteLevel":
                steps.append(.byteLevel(addPrefixSpace: try bool(p["add_prefix_space"], field + ".add_prefix_space", default: true),
                                        useRegex: try bool(p["use_regex"], field + ".use_regex", default: true)))
            case "Split":
                guard let pattern = object(p["pattern"]) else { throw invalid(field + ".pattern", "is missing or not an object") }
                guard let regex = pattern["Regex"] as? String else {
                    throw unsupported(field + ".pattern", "\(pattern.keys.sorted()) (only the Regex patterns of GPT-2, Llama 3 and Qwen2 are implemented)")
                }
                guard let split = SplitPattern(regex: regex) else {
                    throw unsupported(field + ".pattern.Regex", "\(regex.debugDescription) (only the GPT-2, Llama 3 and Qwen2 regexes are implemented)")
                }
                guard (p["behavior"] as? String) == "Isolated" else { throw unsupported(field + ".behavior", "\(p["behavior"] ?? "missing") (only Isolated)") }
                guard try !bool(p["invert"], field + ".invert", default: false) else { throw unsupported(field + ".invert", "true") }
                steps.append(.split(split))
            case "Digits":
                steps.append(.digits(individual: try bool(p["individual_digits"], field + ".individual_digits", default: false)))
            case "Sequence":
                try members(p, "pretokenizers", field, preStep)
            case let other?: throw unsupported(field, other)
            case nil: throw invalid(field + ".type", "is missing")
            }
        }
        if let p = object(root["pre_tokenizer"]) { try preStep(p, "pre_tokenizer") }
        let preTokenizer = PreTokenizer(steps: steps)

        // post-processor
        var prefix: [Int] = [], suffix: [Int] = []
        func postStep(_ p: [String: Any], _ field: String) throws {
            switch p["type"] as? String {
            case "ByteLevel": break  // only trims offsets; ids are unchanged
            case "TemplateProcessing":
                guard let single = p["single"] as? [Any] else { throw invalid(field + ".single", "is not a list") }
                let specials = object(p["special_tokens"]) ?? [:]
                prefix = []; suffix = []
                var seenSequence = false
                for (i, item) in single.enumerated() {
                    let itemField = "\(field).single[\(i)]"
                    guard let item = object(item) else { throw invalid(itemField, "is not an object") }
                    if let s = object(item["Sequence"]) {
                        guard (s["id"] as? String) == "A", !seenSequence else { throw invalid(itemField, "is not the one sequence A") }
                        seenSequence = true
                    } else if let s = object(item["SpecialToken"]) {
                        guard let name = s["id"] as? String else { throw invalid(itemField + ".SpecialToken.id", "is missing") }
                        guard let spec = object(specials[name]), let ids = spec["ids"] as? [Any] else {
                            throw invalid("\(field).special_tokens", "has no ids for \(name.debugDescription)")
                        }
                        let values = try ids.enumerated().map { try int($1, "\(field).special_tokens[\(name.debugDescription)].ids[\($0)]") }
                        if seenSequence { suffix += values } else { prefix += values }
                    } else { throw invalid(itemField, "is neither a Sequence nor a SpecialToken") }
                }
                guard seenSequence else { throw invalid(field + ".single", "has no sequence A") }
            case "Sequence":
                try members(p, "processors", field, postStep)
            case let other?: throw unsupported(field, other)
            case nil: throw invalid(field + ".type", "is missing")
            }
        }
        if let p = object(root["post_processor"]) { try postStep(p, "post_processor") }

        // decoder
        var decoders: [DecoderStep] = []
        func decoderStep(_ d: [String: Any], _ field: String) throws {
            switch d["type"] as? String {
            case "ByteLevel": decoders.append(.byteLevel)
            case "Fuse": decoders.append(.fuse)
            case "Sequence":
                try members(d, "decoders", field, decoderStep)
            case let other?: throw unsupported(field, other)
            case nil: throw invalid(field + ".type", "is missing")
            }
        }
        if let d = object(root["decoder"]) { try decoderStep(d, "decoder") }

        // ids ↔ tokens
        let maxId = max(idOfToken.values.max() ?? -1, added.map(\.id).max() ?? -1)
        var tokenOfId = [String?](repeating: nil, count: maxId + 1)
        for (t, id) in idOfToken {
            if let other = tokenOfId[id] { throw invalid("model.vocab", "gives id \(id) to both \(other.debugDescription) and \(t.debugDescription)") }
            tokenOfId[id] = t
        }
        for t in added {
            if let v = idOfToken[t.content], v != t.id { throw invalid("added_tokens", "gives \(t.content.debugDescription) id \(t.id) but the vocabulary gives it \(v)") }
            tokenOfId[t.id] = t.content
        }
        for id in prefix + suffix where id >= tokenOfId.count || tokenOfId[id] == nil {
            throw invalid("post_processor", "adds id \(id), which is not in the vocabulary")
        }

        // tokenizer_config.json
        var bos: Int?, eos: Int?, pad: Int?
        var configTemplate: String?
        if let data = files.tokenizerConfigJSON {
            let configPath = (path as NSString).deletingLastPathComponent.isEmpty ? Self.configFileName
                : (path as NSString).deletingLastPathComponent + "/" + Self.configFileName
            guard let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ModelError.invalidTokenizer("\(configPath): not a JSON object")
            }
            func special(_ key: String) throws -> Int? {
                let v = config[key]
                if isNull(v) { return nil }
                guard let content = (v as? String) ?? (object(v)?["content"] as? String) else {
                    throw ModelError.invalidTokenizer("\(configPath): \(key) is neither a string nor an object with content")
                }
                guard let id = added.first(where: { $0.content == content })?.id ?? idOfToken[content] else {
                    throw ModelError.invalidTokenizer("\(configPath): \(key) \(content.debugDescription) is not a token of \(path)")
                }
                return id
            }
            bos = try special("bos_token"); eos = try special("eos_token"); pad = try special("pad_token")
            switch config["chat_template"] {
            case let s as String: configTemplate = s
            case let list as [[String: Any]]:
                configTemplate = list.first { ($0["name"] as? String) == "default" }?["template"] as? String
            default: configTemplate = nil
            }
        }

        self.files = files
        self.addedTokens = added
        self.bosId = bos; self.eosId = eos; self.padId = pad
        self.chatTemplate = files.chatTemplateFile ?? configTemplate
        self.parsedChatTemplate = chatTemplate.map { source in
            do { return .success(try ChatTemplate(source: source)) } catch let error as ChatTemplateError {
                return .failure(error)
            } catch {
                return .failure(.syntax("\(error)", TemplateLocation(line: 1, column: 1)))
            }
        }
        self.vocabSize = tokenOfId.count
        self.model = BytePairModel(idOfToken: idOfToken, merges: merges, ignoreMerges: ignoreMerges, byteFallback: byteFallback)
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.prefixIds = prefix; self.suffixIds = suffix
        self.decoders = decoders
        self.tokenOfId = tokenOfId
        self.specialIds = Set(added.filter(\.special).map(\.id))
        self.addedMatcher = AddedTokenMatcher(added)
    }
}
