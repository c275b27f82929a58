/// One RL prompt, a line of a prompts JSONL file: `{"id","task","prompt","answer"}`.
/// `task` names the verifier family (`arithmetic`, `sequence`); `answer` is the reference the
/// verifier compares against (never shown to the policy).
public struct TaskPrompt: Codable, Equatable, Hashable, Sendable {
    public var id: String
    public var task: String
    public var prompt: String
    public var answer: String

    public init(id: String, task: String, prompt: String, answer: String) {
        self.id = id
        self.task = task
        self.prompt = prompt
        self.answer = answer
    }

    /// The JSONL line, keys in the documented order.
    public var jsonLine: String { JSONLines.encodeObject([("id", id), ("task", task), ("prompt", prompt), ("answer", answer)]) }
}

/// How a task expects the answer to be written in the completion.
public enum AnswerFormat: String, Codable, Sendable, CaseIterable {
    /// The completion is the integer itself: prompt `12+35=`, completion `47`.
    case bare
    /// R1-style: `<think>…</think><answer>47</answer>`.
    case tagged

    /// The completion a perfect policy writes for `answer`, with `reasoning` in the think block.
    public func completion(answer: String, reasoning: String) -> String {
        switch self {
        case .bare: return answer
        case .tagged: return "<think>\(reasoning)</think><answer>\(answer)</answer>"
        }
    }
}
