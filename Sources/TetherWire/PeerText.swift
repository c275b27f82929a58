/// Strings a peer sent, made safe for logs and metrics, and the rules an identifier must meet.
///
/// A peer controls every byte of its strings: a newline forges a log line, an ANSI escape rewrites
/// the operator's terminal, a U+202E reverses what follows, and an 8 MiB "actor id" stalls whatever
/// writes it (log lines are merged line by line). Identifiers (actor ids) are therefore checked
/// strictly on the wire (`WireValidation`), and every peer string that reaches a log goes through
/// `loggable`, which escapes instead of dropping so nothing is hidden from the reader.
public enum PeerText {
    /// Longest actor id accepted (UTF-8 bytes); a Kubernetes pod name is at most 253.
    public static let maxIdentifierBytes = 256
    /// Longest free-text field accepted (reasons, host names, scorer and reward-component names…).
    public static let maxTextBytes = 4096
    /// Characters of a peer string kept in one log line; the rest is summarised by its length.
    public static let logPrefixCharacters = 200

    /// True for scalars that must never appear in an identifier: controls (C0, DEL, C1), format
    /// characters (bidi overrides, zero-width joiners), separators and whitespace, and U+FFFD
    /// (what invalid UTF-8 decodes to).
    public static func isForbiddenInIdentifier(_ s: Unicode.Scalar) -> Bool {
        if s.value == 0xFFFD || s.properties.isWhitespace { return true }
        switch s.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .spaceSeparator, .surrogate, .privateUse, .unassigned:
            return true
        default:
            return false
        }
    }

    /// Why `id` is not an acceptable identifier, or nil when it is.
    public static func identifierProblem(_ id: String) -> String? {
        if id.isEmpty { return "must not be empty" }
        let bytes = id.utf8.count
        if bytes > maxIdentifierBytes { return "is \(bytes) bytes, longer than the limit of \(maxIdentifierBytes)" }
        if let bad = id.unicodeScalars.first(where: isForbiddenInIdentifier) {
            return "contains \(escaped(bad)) (control, format, whitespace or invalid UTF-8 characters are not allowed)"
        }
        return nil
    }

    /// `text` for a log line: control and format characters escaped (`\n`, `\u{1B}`), at most
    /// `logPrefixCharacters` characters with the total length appended when cut.
    public static func loggable(_ text: String) -> String {
        var out = ""
        var kept = 0
        for s in text.unicodeScalars {
            if kept == logPrefixCharacters {
                out += "…(\(text.utf8.count) bytes)"
                return out
            }
            out += isForbiddenInIdentifier(s) && s != " " ? escaped(s) : String(s)
            kept += 1
        }
        return out
    }

    private static func escaped(_ s: Unicode.Scalar) -> String {
        switch s {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default: return "\\u{\(String(s.value, radix: 16, uppercase: true))}"
        }
    }
}
