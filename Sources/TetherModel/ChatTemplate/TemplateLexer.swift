/// One lexical token of a template: literal text between tags, a tag delimiter, or a token inside
/// a tag. `offset` indexes the source's Unicode scalars; `SourceMap` turns it into line and column.
struct TemplateToken {
    enum Kind: Equatable {
        case text(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case end
    }

    var kind: Kind
    var offset: Int
}

/// Maps a scalar offset to a line and column, for error messages.
struct SourceMap: Sendable {
    private let lineStarts: [Int]

    init(_ scalars: [Unicode.Scalar]) {
        var starts = [0]
        for (i, s) in scalars.enumerated() where s == "\n" { starts.append(i + 1) }
        lineStarts = starts
    }

    func location(_ offset: Int) -> TemplateLocation {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return TemplateLocation(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }
}

/// Python's `str.isspace`: Unicode White_Space plus the ASCII separators U+001C…U+001F.
func isPythonWhitespace(_ s: Unicode.Scalar) -> Bool {
    s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
}

/// Splits a template into tokens the way Jinja's lexer does under the environment `transformers`
/// builds for chat templates (`trim_blocks=True`, `lstrip_blocks=True`, `keep_trailing_newline=False`;
/// transformers' `_compile_jinja_template`):
/// - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` all after it;
/// - trim_blocks removes the first newline after a block or comment tag (`+%}` keeps it);
/// - lstrip_blocks removes spaces and tabs between a line's start and a block or comment tag
///   (`{%+` keeps them); never before `{{`;
/// - one trailing newline of the template is dropped; line endings in text become `\n`.
struct TemplateLexer {
    private let s: [Unicode.Scalar]
    private let map: SourceMap
    private var tokens: [TemplateToken] = []

    init(_ source: [Unicode.Scalar], map: SourceMap) {
        var scalars = source
        // Jinja drops the last line break of the source (`\n`, `\r\n` or `\r`).
        if scalars.last == "\n" {
            scalars.removeLast()
            if scalars.last == "\r" { scalars.removeLast() }
        } else if scalars.last == "\r" {
            scalars.removeLast()
        }
        self.s = scalars
        self.map = map
    }

    private func fail(_ why: String, _ offset: Int) -> ChatTemplateError { .syntax(why, map.location(offset)) }

    mutating func tokenize() throws -> [TemplateToken] {
        let n = s.count
        var pos = 0
        var lineStarting = true
        while pos < n {
            var k = pos
            while k + 1 < n && !(s[k] == "{" && (s[k + 1] == "{" || s[k + 1] == "%" || s[k + 1] == "#")) { k += 1 }
            guard k + 1 < n else {
                emitText(s[pos..<n], at: pos)
                break
            }
            let open = s[k + 1]
            var after = k + 2
            var sign: Unicode.Scalar?
            if after < n && (s[after] == "-" || s[after] == "+") { sign = s[after]; after += 1 }

            var textEnd = k
            if sign == "-" {
                while textEnd > pos && isPythonWhitespace(s[textEnd - 1]) { textEnd -= 1 }
            } else if sign != "+" && open != "{" {
                var lineStart = textEnd
                while lineStart > pos && s[lineStart - 1] != "\n" { lineStart -= 1 }
                let afterNewline = lineStart > pos
                if (afterNewline || lineStarting) && lineStart < textEnd
                    && s[lineStart..<textEnd].allSatisfy(isPythonWhitespace) {
                    textEnd = lineStart
                }
            }
            emitText(s[pos..<textEnd], at: pos)

            switch open {
            case "#":
                var j = after
                while j + 1 < n && !(s[j] == "#" && s[j + 1] == "}") { j += 1 }
                guard j + 1 < n else { throw fail("missing end of comment tag", k) }
                let endSign: Unicode.Scalar? = (j > after && (s[j - 1] == "-" || s[j - 1] == "+")) ? s[j - 1] : nil
                pos = j + 2
                lineStarting = false
                consumeAfterTag(sign: endSign, trimNewline: true, pos: &pos, lineStarting: &lineStarting)
            case "%":
                if isRawBlock(from: after) { throw ChatTemplateError.unsupported("'{% raw %}' blocks", map.location(k)) }
                tokens.append(TemplateToken(kind: .blockBegin, offset: k))
                pos = after
                try lexTag(block: true, pos: &pos, lineStarting: &lineStarting, tagStart: k)
            default:
                tokens.append(TemplateToken(kind: .variableBegin, offset: k))
                pos = after
                try lexTag(block: false, pos: &pos, lineStarting: &lineStarting, tagStart: k)
            }
        }
        tokens.append(TemplateToken(kind: .end, offset: n))
        return tokens
    }

    /// Text between tags, with `\r\n` and `\r` normalised to `\n` as Jinja's `newline_sequence` does.
    private mutating func emitText(_ slice: ArraySlice<Unicode.Scalar>, at offset: Int) {
        guard !slice.isEmpty else { return }
        var out = String.UnicodeScalarView()
        var i = slice.startIndex
        while i < slice.endIndex {
            let c = slice[i]
            if c == "\r" {
                out.append("\n")
                if i + 1 < slice.endIndex && slice[i + 1] == "\n" { i += 1 }
            } else {
                out.append(c)
            }
            i += 1
        }
        tokens.append(TemplateToken(kind: .text(String(out)), offset: offset))
    }

    /// After a tag's closing delimiter: `-` eats all whitespace, no sign eats one `\n` when the
    /// tag is a block or comment (trim_blocks), `+` eats nothing.
    private func consumeAfterTag(sign: Unicode.Scalar?, trimNewline: Bool, pos: inout Int, lineStarting: inout Bool) {
        if sign == "-" {
            while pos < s.count && isPythonWhitespace(s[pos]) { pos += 1; lineStarting = s[pos - 1] == "\n" }
        } else if sign == nil && trimNewline && pos < s.count && s[pos] == "\n" {
            pos += 1
            lineStarting = true
        }
    }

    private func isRawBlock(from start: Int) -> Bool {
        var i = start
        while i < s.count && isPythonWhitespace(s[i]) { i += 1 }
        guard i + 3 <= s.count, String(String.UnicodeScalarView(s[i..<i + 3])) == "raw" else { return false }
        return i + 3 == s.count || !(isIdentifierScalar(s[i + 3]))
    }

    private func isIdentifierScalar(_ c: Unicode.Scalar) -> Bool {
        c == "_" || (c.value < 128 && (c.properties.isAlphabetic || ("0"..."9").contains(c)))
    }

    private func matches(_ literal: String, at i: Int) -> Bool {
        var j = i
        for c in literal.unicodeScalars {
            guard j < s.count, s[j] == c else { return false }
            j += 1
        }
        return true
    }

    private static let operators = ["//", "**", "==", "!=", ">=", "<=",
                                    "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
                                    ">", "<", "=", ".", ":", "|", ",", ";"]

    /// Tokens inside `{{ … }}` or `{% … %}` up to the closing delimiter. As in Jinja, a closing
    /// delimiter only counts when every bracket opened in the tag is closed, so `{{ {'a': {}} }}` works.
    private mutating func lexTag(block: Bool, pos: inout Int, lineStarting: inout Bool, tagStart: Int) throws {
        var brackets: [Unicode.Scalar] = []
        let n = s.count
        while true {
            while pos < n && isPythonWhitespace(s[pos]) { pos += 1 }
            guard pos < n else { throw fail("unexpected end of template, expected '\(block ? "%}" : "}}")'", tagStart) }
            if brackets.isEmpty {
                if block {
                    if matches("-%}", at: pos) || matches("+%}", at: pos) || matches("%}", at: pos) {
                        let sign: Unicode.Scalar? = s[pos] == "%" ? nil : s[pos]
                        tokens.append(TemplateToken(kind: .blockEnd, offset: pos))
                        pos += sign == nil ? 2 : 3
                        lineStarting = false
                        consumeAfterTag(sign: sign, trimNewline: true, pos: &pos, lineStarting: &lineStarting)
                        return
                    }
                } else if matches("-}}", at: pos) || matches("}}", at: pos) {
                    let sign: Unicode.Scalar? = s[pos] == "-" ? "-" : nil
                    tokens.append(TemplateToken(kind: .variableEnd, offset: pos))
                    pos += sign == nil ? 2 : 3
                    lineStarting = false
                    consumeAfterTag(sign: sign, trimNewline: false, pos: &pos, lineStarting: &lineStarting)
                    return
                }
            }
            let c = s[pos]
            let start = pos
            if ("0"..."9").contains(c) {
                tokens.append(TemplateToken(kind: try lexNumber(&pos), offset: start))
            } else if c == "_" || (c.value < 128 && c.properties.isAlphabetic) {
                while pos < n && isIdentifierScalar(s[pos]) { pos += 1 }
                tokens.append(TemplateToken(kind: .name(String(String.UnicodeScalarView(s[start..<pos]))), offset: start))
            } else if c == "'" || c == "\"" {
                tokens.append(TemplateToken(kind: .string(try lexString(&pos)), offset: start))
            } else if let op = Self.operators.first(where: { matches($0, at: pos) }) {
                switch op {
                case "(": brackets.append(")")
                case "[": brackets.append("]")
                case "{": brackets.append("}")
                case ")", "]", "}":
                    guard let expected = brackets.popLast() else { throw fail("unexpected '\(op)'", pos) }
                    guard String(expected) == op else { throw fail("unexpected '\(op)', expected '\(expected)'", pos) }
                default: break
                }
                pos += op.unicodeScalars.count
                tokens.append(TemplateToken(kind: .op(op), offset: start))
            } else {
                throw fail("unexpected character \(String(c).debugDescription)", pos)
            }
        }
    }

    /// Integers and floats as Jinja reads them (`_` separators allowed; a number right after `.`
    /// is an integer, so `foo.0.1` is two subscripts).
    private func lexNumber(_ pos: inout Int) throws -> TemplateToken.Kind {
        let start = pos
        func digits() { while pos < s.count && (("0"..."9").contains(s[pos]) || (s[pos] == "_" && pos + 1 < s.count && ("0"..."9").contains(s[pos + 1]))) { pos += 1 } }
        digits()
        let afterDot = tokens.last?.kind == .op(".")
        var isFloat = false
        if !afterDot {
            if pos + 1 < s.count && s[pos] == "." && ("0"..."9").contains(s[pos + 1]) {
                pos += 1; digits(); isFloat = true
            }
            if pos < s.count && (s[pos] == "e" || s[pos] == "E") {
                var j = pos + 1
                if j < s.count && (s[j] == "+" || s[j] == "-") { j += 1 }
                if j < s.count && ("0"..."9").contains(s[j]) { pos = j; digits(); isFloat = true }
            }
        }
        let text = String(String.UnicodeScalarView(s[start..<pos])).replacingOccurrences(of: "_", with: "")
        if isFloat {
            guard let v = Double(text) else { throw fail("invalid number \(text)", start) }
            return .float(v)
        }
        guard let v = Int(text) else { throw ChatTemplateError.unsupported("the integer \(text), larger than 64 bits", map.location(start)) }
        return .integer(v)
    }

    /// A quoted string with Python's `unicode-escape` escapes, which is how Jinja decodes them.
    private func lexString(_ pos: inout Int) throws -> String {
        let quote = s[pos]
        let start = pos
        pos += 1
        var out = String.UnicodeScalarView()
        while true {
            guard pos < s.count else { throw fail("unterminated string", start) }
            let c = s[pos]
            if c == quote { pos += 1; return String(out) }
            if c == "\r" {
                out.append("\n")
                if pos + 1 < s.count && s[pos + 1] == "\n" { pos += 1 }
                pos += 1
                continue
            }
            guard c == "\\" else { out.append(c); pos += 1; continue }
            guard pos + 1 < s.count else { throw fail("unterminated string", start) }
            let e = s[pos + 1]
            pos += 2
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "\n": break
            case "x", "u", "U":
                let width = e == "x" ? 2 : (e == "u" ? 4 : 8)
                guard pos + width <= s.count,
                      let v = UInt32(String(String.UnicodeScalarView(s[pos..<pos + width])), radix: 16),
                      let scalar = Unicode.Scalar(v) else {
                    throw fail("invalid \\\(e) escape in string", pos - 2)
                }
                out.append(scalar)
                pos += width
            case "0"..."7":
                var v = e.value - 48
                var count = 1
                while count < 3 && pos < s.count && ("0"..."7").contains(s[pos]) { v = v * 8 + s[pos].value - 48; pos += 1; count += 1 }
                out.append(Unicode.Scalar(v)!)
            case "N": throw ChatTemplateError.unsupported("the \\N{…} string escape", map.location(pos - 2))
            default:
                out.append("\\")
                out.append(e)
            }
        }
    }
}
