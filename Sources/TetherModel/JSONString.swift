import Foundation

/// A JSON string literal (quotes included) with the escapes RFC 8259 requires. The one quoter for
/// the hand-written JSON of safetensors headers, tokenizer files, JSONL datasets and metrics lines.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
