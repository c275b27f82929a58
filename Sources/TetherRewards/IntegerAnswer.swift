/// Reading an integer answer out of a completion, after `AnswerFormat.answerText` has found where
/// the format puts it. The rules, chosen so a verifier neither rewards junk nor punishes harmless
/// variation a small model produces:
///
/// 1. The completion ends at the first `<eos>` if the decoded text contains one.
/// 2. `bare` and `tagged`: the answer text is read from its start — leading spaces and newlines
///    skipped, then an optional `-` and digits; anything else first (`x47`, `+47`, `= 47`) means no
///    answer, and whatever follows the digits (`47 cats`, `47\n12+3=`) is ignored: a policy that
///    keeps talking after the answer is the length penalty's and the format reward's business.
///    `tagged` without `<answer>` has no answer.
/// 3. `boxed`: the box must hold exactly an integer (`\boxed{ -3 }`; `\boxed{\frac{1}{2}}` is no integer).
/// 4. `last-integer`: the last number in the text; `-` is its sign only where it cannot be a minus
///    (not after a digit, letter or closing bracket: `5-3=2` ends in 2, `is -12.` in −12); a
///    number with a fractional part (`2.5`) is not an integer, `12.0` is 12, a sentence's final
///    period is not a decimal point.
/// 5. Leading zeros do not change the value: `047` = 47, `-0` = 0. Values compare as canonical
///    decimal strings, so arbitrarily long digit runs cannot overflow.
public enum IntegerAnswer {
    /// The canonical decimal form of the answer in `completion` (`-12`, `0`, `47`), or nil.
    public static func extract(from completion: String, format: AnswerFormat = .bare) -> String? {
        guard let text = format.answerText(in: completion) else { return nil }
        switch format {
        case .bare, .tagged: return canonicalPrefix(text)
        case .boxed, .lastInteger: return canonical(String(AnswerFormat.trimmed(text)))
        }
    }

    /// The last number token of `text` (`-?digits`, with `.digits` when a fractional part
    /// follows), as written; nil when it has no digit.
    static func lastNumber(in text: Substring) -> Substring? {
        guard var end = text.lastIndex(where: isDigit) else { return nil }
        var start = end
        while start > text.startIndex, isDigit(text[text.index(before: start)]) { start = text.index(before: start) }
        end = text.index(after: end)
        // A fractional part: digits '.' digits, where we stopped at the fraction's digits.
        if start > text.startIndex {
            let dot = text.index(before: start)
            if text[dot] == ".", dot > text.startIndex, isDigit(text[text.index(before: dot)]) {
                start = dot
                while start > text.startIndex, isDigit(text[text.index(before: start)]) { start = text.index(before: start) }
            }
        }
        if start > text.startIndex {
            let sign = text.index(before: start)
            if text[sign] == "-" {
                let prev = sign > text.startIndex ? text[text.index(before: sign)] : " "
                if !(prev.isLetter || prev.isNumber || ")]}".contains(prev)) { start = sign }
            }
        }
        let token = text[start ..< end]
        guard let dot = token.firstIndex(of: ".") else { return token }
        // 12.0 is the integer 12; 2.5 is a number but not an integer (kept, so it compares unequal).
        let fraction = token[token.index(after: dot)...]
        return fraction.allSatisfy { $0 == "0" } ? token[..<dot] : token
    }

    static func isDigit(_ c: Character) -> Bool { c.isASCII && c.isNumber }

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
