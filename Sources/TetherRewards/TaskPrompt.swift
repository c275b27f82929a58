import TetherModel

/// One RL prompt, a line of a prompts JSONL file: `{"id","task","prompt","answer"}`, plus
/// `"messages"` for a chat task. `task` names where the prompt came from (`arithmetic`, `sequence`,
/// `jsonl`); `answer` is the reference the verifier compares against (never shown to the policy).
///
/// `prompt` is the problem's canonical text (`12+35=`): what a checkpoint without a chat template
/// (the character-level toy) sees, and what the dataset split hashes. `messages` is the same problem
/// as a chat turn, in one of the task's phrasings and with the answer-format instruction
/// ("What is 12 + 35? Answer with just the number."): what a checkpoint with a chat template sees,
/// rendered through its template (`promptIds`).
public struct TaskPrompt: Codable, Equatable, Hashable, Sendable {
    public var id: String
    public var task: String
    public var prompt: String
    public var answer: String
    public var messages: [ChatMessage]?

    public init(id: String, task: String, prompt: String, answer: String, messages: [ChatMessage]? = nil) {
        self.id = id
        self.task = task
        self.prompt = prompt
        self.answer = answer
        self.messages = messages
    }

    /// The JSONL line, keys in the documented order (`messages` last, when there are any).
    public var jsonLine: String {
        let fields = JSONLines.encodeObject([("id", id), ("task", task), ("prompt", prompt), ("answer", answer)])
        guard let messages else { return fields }
        let list = messages.map { JSONLines.encodeObject([("role", $0.role), ("content", $0.content)]) }.joined(separator: ",")
        return String(fields.dropLast()) + ",\"messages\":[" + list + "]}"
    }

    /// The prompt's token ids for `tokenizer`: the chat messages (a single user turn of `prompt`
    /// when there are none) through the checkpoint's chat template when it has one — an instruct
    /// model answers inside its own turn markup, as TRL's and verl's chat datasets render prompts —
    /// else `prompt` with the post-processor's specials (`<bos> 12+35=` for the built-in vocabulary).
    public func promptIds(_ tokenizer: Tokenizer) throws -> [Int] {
        guard tokenizer.chatTemplate != nil else { return try tokenizer.promptIds(prompt) }
        return try ChatFormat(tokenizer: tokenizer).promptIds(messages ?? [.user(prompt)])
    }
}
