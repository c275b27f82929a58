/// Reading an integer answer out of a completion. The rules, chosen so a verifier neither rewards
/// junk nor punishes harmless variation a tiny model produces:
///
/// 1. The completion ends at the first `<eos>` if the decoded text contains one.
/// 2. With `<answer>` tags present (required for `.tagged`), only the text between the first
///    `<answer>` and the next `</answer>` (or the end) is read; a `.tagged` completion without them
///    has no answer.
/// 3. Leading spaces and newlines are skipped; then the answer is an optional `-` followed by
///    digits. Anything else first (`x47`, `+47`, `= 47`) means no answer.
/// 4. Only that first integer token counts: it ends at the first non-digit, and whatever follows
///    (`47 cats`, `47\n12+3=`, `47abc`) is ignored. A policy that keeps talking after the answer is
///    the length penalty's and the format reward's business, not correctness's.
/// 5. Leading zeros do not change the value: `047` = 47, `-0` = 0. Values compare as canonical
///    decimal strings, so arbitrarily long digit runs cannot overflow.
public enum IntegerAnswer {
    /// The canonical decimal form of the answer in `completion` (`-12`, `0`, `47`), or nil.
    public static func extract(from completion: String, format: AnswerFormat = .bare) -> String? {
        var text = Substring(completion)
        if let eos = text.range(of: "<eos>") { text = text[..<eos.lowerBound] }
        if let open = text.range(of: "<answer>") {
            text = text[open.upperBound...]
            if let close = text.range(of: "</answer>") { text = text[..<close.lowerBound] }
        } else if format == .tagged {
            return nil
        }
        return canonicalPrefix(text)
    }

    /// The canonical form of the integer at the start of `text` after spaces and newlines.
    static func canonicalPrefix(_ text: Substring) -> String? {
        var s = text.drop { $0 == " " || $0 == "\n" }
        var negative = false
        if s.first == "-" { negative = true; s = s.dropFirst() }
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        return canonical(negative: negative, digits: digits)
    }

    /// The canonical form of a whole string that is exactly an integer (no surrounding text).
    public static func canonical(_ text: String) -> String? {
        var s = Substring(text)
        var negative = false
        if s.first == "-" { negative = true; s = s.dropFirst() }
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return canonical(negative: negative, digits: s)
    }

    static func canonical(negative: Bool, digits: Substring) -> String {
        let trimmed = digits.drop { $0 == "0" }
        if trimmed.isEmpty { return "0" }
        return (negative ? "-" : "") + trimmed
    }
}
