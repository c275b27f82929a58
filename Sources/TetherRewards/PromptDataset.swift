import Foundation
import TetherModel

/// The user-dataset contract, the same for `tether train`, `tether eval` and the cluster: JSONL, one
/// object per line, with
///
/// - the prompt in the field `promptField` (default `prompt`): a string, or a chat conversation —
///   a list of `{"role", "content"}` objects; a line without that field may give the conversation
///   as `messages` instead;
/// - the reference answer in `answerField` (default `answer`): an integer, as a JSON number or
///   string (`42`, `"-7"`), since the verifiers compare integers;
/// - optionally `id` (default `jsonl/<index>`, 0-based over the records) and `task` (default `jsonl`); other fields are ignored.
///
/// Every violation is a `DatasetError` naming the file and the line. When a tokenizer is given,
/// every prompt must also tokenize as training will render it (`TaskPrompt.promptIds`), so a
/// character the policy's vocabulary lacks is reported with its line before any training starts.
public struct PromptDataset: Sendable {
    public var promptField: String
    public var answerField: String

    public init(promptField: String = "prompt", answerField: String = "answer") {
        self.promptField = promptField
        self.answerField = answerField
    }

    public func load(path: String, tokenizer: Tokenizer? = nil) throws -> [TaskPrompt] {
        let records = try JSONLines.read(Record.self, path: path, userInfo: [Record.fieldsKey: self]) { record, line in
            guard let tokenizer else { return }
            do { _ = try record.prompt(index: 0).promptIds(tokenizer) } catch {
                throw DatasetError.malformedLine(file: path, line: line, detail: "the prompt cannot be tokenized for this checkpoint: \(error)")
            }
        }
        return records.enumerated().map { $1.prompt(index: $0) }
    }

    /// One line, decoded with the configured field names (passed through the decoder's user info).
    struct Record: Decodable {
        static let fieldsKey = CodingUserInfoKey(rawValue: "tether.prompt-dataset.fields")!
        var id: String?
        var task: String?
        var prompt: String
        var messages: [ChatMessage]?
        var answer: String

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ s: String) { stringValue = s }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: Decoder) throws {
            let fields = decoder.userInfo[Self.fieldsKey] as? PromptDataset ?? PromptDataset()
            let c = try decoder.container(keyedBy: Key.self)
            let promptKey = Key(fields.promptField), answerKey = Key(fields.answerField)
            id = try c.decodeIfPresent(String.self, forKey: Key("id"))
            task = try c.decodeIfPresent(String.self, forKey: Key("task"))
            var text = try? c.decode(String.self, forKey: promptKey)
            // A conversation: in the prompt field when that holds no string, else in `messages` (which
            // may also come beside a text prompt, as `TaskPrompt.jsonLine` writes a chat task).
            let conversationKey = text == nil && c.contains(promptKey) ? promptKey : Key("messages")
            var conversation: (key: Key, list: [ChatMessage])?
            if c.contains(conversationKey) {
                do { conversation = (conversationKey, try c.decode([ChatMessage].self, forKey: conversationKey)) } catch {
                    throw DecodingError.dataCorruptedError(forKey: conversationKey, in: c, debugDescription:
                        "must be \(text == nil ? "a string or " : "")a list of {\"role\", \"content\"} messages")
                }
            }
            if let conversation {
                guard let last = conversation.list.last(where: { $0.role == "user" }) else {
                    throw DecodingError.dataCorruptedError(forKey: conversation.key, in: c, debugDescription: "the conversation has no user message")
                }
                text = text ?? last.content
                messages = conversation.list
            }
            guard let text else {
                throw DecodingError.keyNotFound(promptKey, .init(codingPath: [], debugDescription: "missing field \"\(fields.promptField)\""))
            }
            prompt = text
            guard c.contains(answerKey) else {
                throw DecodingError.keyNotFound(answerKey, .init(codingPath: [], debugDescription: "missing field \"\(fields.answerField)\""))
            }
            let raw: String
            if let s = try? c.decode(String.self, forKey: answerKey) { raw = s } else if let n = try? c.decode(Int.self, forKey: answerKey) {
                raw = String(n)
            } else {
                throw DecodingError.dataCorruptedError(forKey: answerKey, in: c, debugDescription: "must be an integer (a JSON number or string)")
            }
            guard let canonical = IntegerAnswer.canonical(raw.trimmingCharacters(in: .whitespaces)) else {
                throw DecodingError.dataCorruptedError(forKey: answerKey, in: c, debugDescription:
                    "\(raw.debugDescription) is not an integer; the verifiers compare integer answers")
            }
            answer = canonical
        }

        /// The record as a prompt; `index` (0-based, blank lines not counted) makes the default id.
        func prompt(index: Int) -> TaskPrompt {
            TaskPrompt(id: id ?? "jsonl/\(index)", task: task ?? "jsonl", prompt: prompt, answer: answer, messages: messages)
        }
    }
}

extension TaskPrompt {
    /// Reads a prompts file under `PromptDataset`'s contract, every prompt tokenizable by `tokenizer` when given.
    public static func load(path: String, promptField: String = "prompt", answerField: String = "answer",
                            tokenizer: Tokenizer? = nil) throws -> [TaskPrompt] {
        try PromptDataset(promptField: promptField, answerField: answerField).load(path: path, tokenizer: tokenizer)
    }
}
