/// The pre-tokenizer regexes that byte-level BPE families ship, as hand-written matchers over
/// Unicode scalars.
///
/// `tokenizers` runs these patterns through Oniguruma: leftmost-first alternation, greedy
/// quantifiers with backtracking, `\s` = the Unicode `White_Space` property, `\p{L}` / `\p{N}` =
/// general categories L* / N*. Each matcher below is that regex unrolled by hand, alternative by
/// alternative in the regex's order, so the split points are the same; it is an order of
/// magnitude faster than a general regex engine, and Foundation's `NSRegularExpression` (ICU)
/// differs from Oniguruma in what `\s` and `\p{…}` include.
enum SplitPattern: Equatable, Sendable {
    /// GPT-2 (`ByteLevel` with `use_regex`, SmolLM2):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3 (and Qwen2 with `maxDigits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int)

    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The matcher for a `Split` regex, nil for a pattern Tether does not implement.
    init?(regex: String) {
        switch regex {
        case Self.gpt2Regex: self = .gpt2
        case Self.llama3Regex: self = .llama3(maxDigits: 3)
        case Self.qwen2Regex: self = .llama3(maxDigits: 1)
        default: return nil
        }
    }

    /// End of the match that starts at `i` (the patterns match at every position, so pieces tile
    /// the text). `end` is the end of the text the regex sees: lookahead stops there.
    func matchEnd(_ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<ScalarClass>, at i: Int, end: Int) -> Int {
        switch self {
        case .gpt2: return Self.gpt2Match(s, c, i, end)
        case .llama3(let maxDigits): return Self.llama3Match(s, c, i, end, maxDigits: maxDigits)
        }
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, case-insensitively when `folding` (Oniguruma's `(?i:…)` also
    /// folds U+017F LONG S to s); returns the end or nil.
    @inline(__always)
    static func contraction(_ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ end: Int, folding: Bool) -> Int? {
        guard s[i] == 0x27, i + 1 < end else { return nil }
        @inline(__always) func lower(_ v: UInt32) -> UInt32 {
            guard folding else { return v }
            if v >= 0x41 && v <= 0x5A { return v | 0x20 }
            return v == 0x17F ? 0x73 : v
        }
        let a = lower(s[i + 1])
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: return i + 2  // s t m d
        case 0x72, 0x76:  // re ve
            return i + 2 < end && lower(s[i + 2]) == 0x65 ? i + 3 : nil
        case 0x6C:  // ll
            return i + 2 < end && lower(s[i + 2]) == 0x6C ? i + 3 : nil
        default: return nil
        }
    }

    @inline(__always)
    static func run(_ c: UnsafeBufferPointer<ScalarClass>, from i: Int, _ end: Int, max: Int = .max, _ test: (ScalarClass) -> Bool) -> Int {
        var j = i
        while j < end, j - i < max, test(c[j]) { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar: the whole run when it reaches the end of the text,
    /// else all but its last scalar (which then leads the next piece), or the single scalar.
    @inline(__always)
    static func whitespaceTail(_ c: UnsafeBufferPointer<ScalarClass>, _ i: Int, _ end: Int) -> Int {
        let j = run(c, from: i, end) { $0.isWhitespace }
        if j == end || j - i == 1 { return j }
        return j - 1
    }

    static func gpt2Match(_ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<ScalarClass>, _ i: Int, _ end: Int) -> Int {
        if let e = contraction(s, i, end, folding: false) { return e }
        var start = i
        if c[i] == .space, i + 1 < end, !c[i + 1].isWhitespace { start = i + 1 }
        switch c[start] {
        case .letter: return run(c, from: start, end) { $0 == .letter }
        case .number: return run(c, from: start, end) { $0 == .number }
        case .other: return run(c, from: start, end) { $0 == .other }
        default: return whitespaceTail(c, i, end)
        }
    }

    static func llama3Match(_ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<ScalarClass>, _ i: Int, _ end: Int, maxDigits: Int) -> Int {
        if let e = contraction(s, i, end, folding: true) { return e }
        let k = c[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if k == .letter { return run(c, from: i, end) { $0 == .letter } }
        if k != .newline, k != .number, i + 1 < end, c[i + 1] == .letter {
            return run(c, from: i + 1, end) { $0 == .letter }
        }
        // \p{N}{1,maxDigits}
        if k == .number { return run(c, from: i, end, max: maxDigits) { $0 == .number } }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start = i
        if k == .space, i + 1 < end, c[i + 1] == .other { start = i + 1 }
        if c[start] == .other {
            let j = run(c, from: start, end) { $0 == .other }
            return run(c, from: j, end) { $0 == .newline }
        }
        // \s*[\r\n]+ : up to and including the last line break of the whitespace run
        let j = run(c, from: i, end) { $0.isWhitespace }
        var lastBreak = -1
        var m = j - 1
        while m >= i { if c[m] == .newline { lastBreak = m; break }; m -= 1 }
        if lastBreak >= 0 { return lastBreak + 1 }
        return whitespaceTail(c, i, end)
    }
}

/// What the split patterns need to know about a scalar. `space` is U+0020 (the optional ` ?`
/// of the patterns), `newline` is `\r` or `\n`; both are also whitespace.
enum ScalarClass: UInt8, Sendable {
    case letter, number, space, newline, whitespace, other

    var isWhitespace: Bool { self == .space || self == .newline || self == .whitespace }

    static let ascii: [ScalarClass] = (0..<128).map { v in classify(Unicode.Scalar(UInt8(v))) }

    @inline(__always)
    static func of(_ v: UInt32) -> ScalarClass {
        if v < 128 { return ascii[Int(v)] }
        return classify(Unicode.Scalar(v) ?? " ")
    }

    static func classify(_ u: Unicode.Scalar) -> ScalarClass {
        if u == " " { return .space }
        if u == "\n" || u == "\r" { return .newline }
        let p = u.properties
        if p.isWhitespace { return .whitespace }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }
}
