import Foundation
import TetherModel

/// The user-dataset contract, the same for `tether train`, `tether eval` and the cluster: JSONL, one
/// object per line, with
///
/// - the prompt in the field `promptField` (default `prompt`): a string, or a chat conversation —
///   a list of `{"role", "content"}` objects; a line without that field may give the conversation
///   as `messages` instead;
/// - the reference answer in `answerField` (default `answer`): under `Answers.integer` (the built-in
///   verifiers, which compare integers) an integer, as a JSON number or string (`42`, `"-7"`); under
///   `Answers.text` (a reward service, which judges answers itself) any non-empty string or number,
///   passed on as written (`"7/2"`, `"\\frac{1}{3}"`, `"x^2 - 1"`);
/// - optionally `id` (default `jsonl/<index>`, 0-based over the records) and `task` (default `jsonl`); other fields are ignored.
///
/// Every violation is a `DatasetError` naming the file and the line. When a tokenizer is given,
/// every prompt must also tokenize as training will render it (`TaskPrompt.promptIds`), so a
/// character the policy's vocabulary lacks is reported with its line before any training starts.
public struct PromptDataset: Sendable {
    public var promptField: String
    public var answerField: String
    public var answers: Answers

    /// What a reference answer may be: it depends on who scores it.
    public enum Answers: Sendable {
        /// An integer, stored in canonical form (`"042"` → `"42"`): the built-in verifiers compare
        /// integers, so anything else is refused when the file is read rather than at the first score.
        case integer
        /// Any non-empty string, or a JSON number (its JSON text), kept exactly as written: a reward
        /// service (`task.reward: service`) decides what equals what (SymPy: `7/2` = `3.5`).
        case text
    }

    public init(promptField: String = "prompt", answerField: String = "answer", answers: Answers = .integer) {
        self.promptField = promptField
        self.answerField = answerField
        self.answers = answers
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
            } else if fields.answers == .text, let x = try? c.decode(Double.self, forKey: answerKey) {
                raw = String(x)
            } else {
                throw DecodingError.dataCorruptedError(forKey: answerKey, in: c, debugDescription: fields.answers == .integer
                    ? "must be an integer (a JSON number or string)" : "must be a string or a number")
            }
            switch fields.answers {
            case .integer:
                guard let canonical = IntegerAnswer.canonical(raw.trimmingCharacters(in: .whitespaces)) else {
                    throw DecodingError.dataCorruptedError(forKey: answerKey, in: c, debugDescription:
                        "\(raw.debugDescription) is not an integer; the built-in verifiers compare integer answers (a reward service, task.reward: service, takes answers of any form)")
                }
                answer = canonical
            case .text:
                guard raw.contains(where: { !$0.isWhitespace }) else {
                    throw DecodingError.dataCorruptedError(forKey: answerKey, in: c, debugDescription: "is empty")
                }
                answer = raw
            }
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
                            answers: PromptDataset.Answers = .integer, tokenizer: Tokenizer? = nil) throws -> [TaskPrompt] {
        try PromptDataset(promptField: promptField, answerField: answerField, answers: answers).load(path: path, tokenizer: tokenizer)
    }
}
