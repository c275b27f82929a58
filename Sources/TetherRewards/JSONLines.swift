import Foundation
import TetherModel

/// A dataset file that could not be read, naming the file and the 1-based line.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case malformedLine(file: String, line: Int, detail: String)
    case outOfVocabulary(file: String, line: Int, field: String, character: Character)
    case empty(file: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): return "cannot read \(file): \(reason)"
        case .malformedLine(let file, let line, let detail): return "\(file):\(line): \(detail)"
        case .outOfVocabulary(let file, let line, let field, let c):
            return "\(file):\(line): field \"\(field)\" contains \(String(c).debugDescription), which is outside the 64-symbol vocabulary (lowercase letters, digits, space, newline, + - * / = ? ! , . : ; ( ) < > [ ] ' \" # % & _)"
        case .empty(let file): return "\(file) contains no records"
        }
    }
}

/// JSON Lines (https://jsonlines.org): one JSON object per line, blank lines skipped.
public enum JSONLines {
    /// Decodes JSONL text; `file` is only used in errors.
    public static func decode<T: Decodable>(_ type: T.Type, text: String, file: String) throws -> [T] {
        let decoder = JSONDecoder()
        var out: [T] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard line.contains(where: { !$0.isWhitespace }) else { continue }
            do {
                out.append(try decoder.decode(T.self, from: Data(line.utf8)))
            } catch let e as DecodingError {
                throw DatasetError.malformedLine(file: file, line: i + 1, detail: describe(e))
            } catch {
                throw DatasetError.malformedLine(file: file, line: i + 1, detail: "\(error)")
            }
        }
        return out
    }

    static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let key, _): return "missing field \"\(key.stringValue)\""
        case .typeMismatch(let t, let ctx): return "field \"\(path(ctx))\" is not a \(t)"
        case .valueNotFound(let t, let ctx): return "field \"\(path(ctx))\" is null, expected a \(t)"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "not a valid JSON object" : "field \"\(path(ctx))\": \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }

    static func path(_ ctx: DecodingError.Context) -> String { ctx.codingPath.map(\.stringValue).joined(separator: ".") }

    /// A one-line JSON object of string fields, keys in the given order (JSONEncoder's order is
    /// unspecified and it escapes `/`).
    public static func encodeObject(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(quote($0.0)):\(quote($0.1))" }.joined(separator: ",") + "}"
    }

    public static func quote(_ s: String) -> String { jsonString(s) }
}

extension JSONLines {
    /// Reads `path` as records of `T` whose string `fields` must stay inside the policy's
    /// vocabulary (a character the tokenizer cannot encode is reported with its file and line).
    public static func readChecked<T: Decodable>(_ type: T.Type, path: String, fields: (T) -> [(String, String)]) throws -> [T] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DatasetError.unreadable(file: path, reason: FileManager.default.fileExists(atPath: path) ? "not UTF-8 text" : "no such file")
        }
        let records = try decode(T.self, text: text, file: path)
        guard !records.isEmpty else { throw DatasetError.empty(file: path) }
        let lineNumbers = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .filter { $0.element.contains(where: { !$0.isWhitespace }) }.map { $0.offset + 1 }
        for (r, line) in zip(records, lineNumbers) {
            for (field, value) in fields(r) {
                if let c = TaskAlphabet.firstInvalidCharacter(in: value) {
                    throw DatasetError.outOfVocabulary(file: path, line: line, field: field, character: c)
                }
            }
        }
        return records
    }
}

extension TaskPrompt {
    /// Reads a prompts file, the one reader of `tether train`, the cluster and `tether eval`: one
    /// object per line with a string `promptField` and an `answerField` (string or number); `id`
    /// and `task` are kept when present (`tether tasks export` writes them), else `jsonl/<line>` and
    /// `jsonl`. The text is not checked against a vocabulary here: the policy's tokenizer decides.
    public static func load(path: String, promptField: String = "prompt", answerField: String = "answer") throws -> [TaskPrompt] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DatasetError.unreadable(file: path, reason: FileManager.default.fileExists(atPath: path) ? "not UTF-8 text" : "no such file")
        }
        var out: [TaskPrompt] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(where: { !$0.isWhitespace }) {
            func malformed(_ detail: String) -> DatasetError { .malformedLine(file: path, line: i + 1, detail: detail) }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { throw malformed("not a valid JSON object") }
            guard let value = object[promptField] else { throw malformed("missing field \"\(promptField)\"") }
            guard let prompt = value as? String else { throw malformed("field \"\(promptField)\" is not a String") }
            guard let answerValue = object[answerField] else { throw malformed("missing field \"\(answerField)\"") }
            guard let answer = (answerValue as? String) ?? (answerValue as? NSNumber).map({ "\($0)" }) else {
                throw malformed("field \"\(answerField)\" is neither a string nor a number")
            }
            out.append(TaskPrompt(id: object["id"] as? String ?? "jsonl/\(i)", task: object["task"] as? String ?? "jsonl", prompt: prompt, answer: answer))
        }
        guard !out.isEmpty else { throw DatasetError.empty(file: path) }
        return out
    }
}

extension SFTExample {
    /// The JSONL line, keys in the documented order.
    public var jsonLine: String { JSONLines.encodeObject([("prompt", prompt), ("completion", completion)]) }

    /// Reads an SFT file; prompt and completion must stay inside the policy's vocabulary.
    public static func load(path: String) throws -> [SFTExample] {
        try JSONLines.readChecked(SFTExample.self, path: path) { [("prompt", $0.prompt), ("completion", $0.completion)] }
    }
}
