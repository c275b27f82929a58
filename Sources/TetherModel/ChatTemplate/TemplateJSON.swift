/// The `tojson` filter as transformers defines it for chat templates: Python's
/// `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)`
/// (transformers replaces Jinja's HTML-escaping `tojson`). Byte-for-byte Python's output: `", "` and
/// `": "` separators by default, `","` between items once `indent` is given, floats as `repr`.
struct PythonJSONEncoder {
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys = false
    var ensureASCII = false

    init(indent: String? = nil, separators: (String, String)? = nil, sortKeys: Bool = false, ensureASCII: Bool = false) {
        self.indent = indent
        self.itemSeparator = separators?.0 ?? (indent == nil ? ", " : ",")
        self.keySeparator = separators?.1 ?? ": "
        self.sortKeys = sortKeys
        self.ensureASCII = ensureASCII
    }

    /// Returns the JSON text, or the Python type name of the first value JSON cannot hold.
    func encode(_ value: RuntimeValue) -> Result<String, UnencodableValue> {
        var out = ""
        if let bad = write(value, level: 0, into: &out) { return .failure(UnencodableValue(typeName: bad)) }
        return .success(out)
    }

    struct UnencodableValue: Error { var typeName: String }

    private func write(_ value: RuntimeValue, level: Int, into out: inout String) -> String? {
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else { out += pythonFloatRepr(d) }
        case .string(let s): out += quoted(s)
        case .list(let items), .tuple(let items):
            guard !items.isEmpty else { out += "[]"; return nil }
            out += "["
            for (n, item) in items.enumerated() {
                out += n == 0 ? newline(level + 1) : itemSeparator + newline(level + 1)
                if let bad = write(item, level: level + 1, into: &out) { return bad }
            }
            out += newline(level) + "]"
        case .dict(let d):
            guard !d.isEmpty else { out += "{}"; return nil }
            out += "{"
            let keys = sortKeys ? d.keys.sorted { RuntimeValue.string($0).compare(.string($1)) == .orderedAscending } : d.keys
            for (n, key) in keys.enumerated() {
                out += n == 0 ? newline(level + 1) : itemSeparator + newline(level + 1)
                out += quoted(key) + keySeparator
                if let bad = write(d[key]!, level: level + 1, into: &out) { return bad }
            }
            out += newline(level) + "}"
        case .namespace(let ns):
            return write(.dict(ns.attributes), level: level, into: &out)
        case .undefined, .loop, .macro, .function:
            return value.typeName
        }
        return nil
    }

    private func newline(_ level: Int) -> String {
        guard let indent else { return "" }
        return "\n" + String(repeating: indent, count: level)
    }

    /// Python's `json` string escaping: `"` `\` and control characters; with `ensure_ascii`, every
    /// non-ASCII scalar as `\uXXXX` (UTF-16 surrogate pairs above the BMP).
    private func quoted(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        out.append("\"")
        for c in s.unicodeScalars {
            switch c {
            case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\u{08}": out.append(contentsOf: "\\b".unicodeScalars)
            case "\u{0C}": out.append(contentsOf: "\\f".unicodeScalars)
            default:
                if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                    for unit in String(c).utf16 { out.append(contentsOf: String(format: "\\u%04x", unit).unicodeScalars) }
                } else {
                    out.append(c)
                }
            }
        }
        out.append("\"")
        return String(out)
    }
}
