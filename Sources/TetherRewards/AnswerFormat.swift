/// How the answer is written in a completion: what the prompt asks for, where the verifier reads the
/// answer, and what the format reward accepts. One choice per run (`task.extract` in the config).
///
/// | format         | the prompt says                                      | answer read from                     |
/// |----------------|------------------------------------------------------|--------------------------------------|
/// | `last-integer` | "Answer with just the number."                       | the last number in the completion    |
/// | `boxed`        | "Put the final answer in \boxed{}."                  | the last `\boxed{…}` (braces matched) |
/// | `tagged`       | "Put the final answer inside <answer></answer> tags." | the first `<answer>…</answer>`        |
/// | `bare`         | (the character-level toy: `12+35=` → `47`)          | the integer the completion starts with |
///
/// `last-integer` is what the chat-model baselines are measured with (an instruct model writes
/// "3 + 4 = 7" as readily as "7"); `boxed` is the convention of math RL recipes (DeepSeekMath,
/// Qwen2.5-Math); `tagged` is DeepSeek-R1's `<answer>` tag, optionally after a `<think>` block.
public enum AnswerFormat: String, Codable, Sendable, CaseIterable {
    /// The completion is the integer itself: prompt `12+35=`, completion `47` (the toy's format).
    case bare
    /// R1-style: `<think>…</think><answer>47</answer>` (the think block is optional).
    case tagged
    /// `\boxed{47}`, anywhere in the completion.
    case boxed
    /// The last number the completion writes.
    case lastInteger = "last-integer"

    /// Decodes the raw value; an unknown one is an error that lists the formats.
    public init(from decoder: Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = AnswerFormat(rawValue: raw) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "invalid value '\(raw)'; expected one of \(AnswerFormat.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        self = value
    }

    /// The sentence appended to a chat task's question, asking for this format.
    public var instruction: String {
        switch self {
        case .bare, .lastInteger: return "Answer with just the number."
        case .boxed: return "Put the final answer in \\boxed{}."
        case .tagged: return "Put the final answer inside <answer></answer> tags."
        }
    }

    /// The completion a perfect policy writes for `answer`, with `reasoning` in the think block.
    public func completion(answer: String, reasoning: String) -> String {
        switch self {
        case .bare, .lastInteger: return answer
        case .boxed: return "\\boxed{\(answer)}"
        case .tagged: return "<think>\(reasoning)</think><answer>\(answer)</answer>"
        }
    }

    /// The text the completion gives as its answer in this format, or nil when it gives none: the
    /// whole `\boxed{…}` content (`\frac{1}{2}` stays as written), the text between the answer
    /// tags, the last number, or the leading integer. Text after the first `<eos>` is not generated
    /// output and is ignored.
    public func answerText(in completion: String) -> Substring? {
        let text = AnswerFormat.generated(completion)
        switch self {
        case .bare:
            // The toy's rule: inside <answer> tags when it writes them, else from the start.
            return AnswerFormat.taggedContent(text) ?? text
        case .tagged: return AnswerFormat.taggedContent(text)
        case .boxed: return AnswerFormat.boxedContents(text).last
        case .lastInteger: return IntegerAnswer.lastNumber(in: text)
        }
    }

    /// Whether the completion gives its answer in exactly the requested form (the format reward,
    /// DeepSeek-R1's rule-based format term, Guo et al. 2025): spaces and newlines around the parts
    /// are allowed.
    ///
    /// - `bare`: the whole completion is one integer.
    /// - `last-integer`: the whole completion is one integer, optionally ending in a period.
    /// - `boxed`: exactly one `\boxed{…}`, holding an integer; prose around it is fine.
    /// - `tagged`: one `<answer>N</answer>` with an integer N, nothing after it; before it, prose
    ///   or one closed `<think>…</think>` block with no tags inside.
    public func isWellFormed(_ completion: String) -> Bool {
        let text = AnswerFormat.trimmed(AnswerFormat.generated(completion))
        switch self {
        case .bare: return IntegerAnswer.canonical(String(text)) != nil
        case .lastInteger:
            let body = text.hasSuffix(".") ? AnswerFormat.trimmed(text.dropLast()) : text
            return IntegerAnswer.canonical(String(body)) != nil
        case .boxed:
            let boxes = AnswerFormat.boxedContents(text)
            guard boxes.count == 1, !AnswerFormat.hasUnclosedBox(text) else { return false }
            return IntegerAnswer.canonical(String(AnswerFormat.trimmed(boxes[0]))) != nil
        case .tagged:
            guard let open = text.range(of: "<answer>"), text.hasSuffix("</answer>") else { return false }
            let inner = text[open.upperBound ..< text.index(text.endIndex, offsetBy: -"</answer>".count)]
            guard inner.range(of: "<answer>") == nil, inner.range(of: "</answer>") == nil,
                  IntegerAnswer.canonical(String(AnswerFormat.trimmed(inner))) != nil else { return false }
            let before = text[..<open.lowerBound]
            guard before.range(of: "</answer>") == nil else { return false }
            guard let think = before.range(of: "<think>") else { return before.range(of: "</think>") == nil }
            guard let endThink = before.range(of: "</think>", range: think.upperBound ..< before.endIndex) else { return false }
            let thought = before[think.upperBound ..< endThink.lowerBound]
            let rest = before[endThink.upperBound...]
            return !["<think>", "<answer>"].contains { thought.range(of: $0) != nil }
                && !["<think>", "</think>"].contains { rest.range(of: $0) != nil }
        }
    }

    // MARK: Parsing helpers

    /// The completion up to its first `<eos>` (decoded text may carry the toy vocabulary's marker).
    static func generated(_ completion: String) -> Substring {
        let text = Substring(completion)
        guard let eos = text.range(of: "<eos>") else { return text }
        return text[..<eos.lowerBound]
    }

    static func trimmed(_ s: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = s.firstIndex(where: { !isSpace($0) }), let last = s.lastIndex(where: { !isSpace($0) }) else { return s[s.endIndex...] }
        return s[first ... last]
    }

    /// The text between the first `<answer>` and the next `</answer>` (or the end), if tagged.
    static func taggedContent(_ text: Substring) -> Substring? {
        guard let open = text.range(of: "<answer>") else { return nil }
        let rest = text[open.upperBound...]
        guard let close = rest.range(of: "</answer>") else { return rest }
        return rest[..<close.lowerBound]
    }

    /// The contents of every closed `\boxed{…}`, in order, braces matched so `\boxed{\frac{1}{2}}`
    /// yields `\frac{1}{2}`. An unclosed box yields nothing.
    static func boxedContents(_ text: Substring) -> [Substring] {
        var out: [Substring] = []
        var search = text.startIndex
        while let box = text.range(of: "\\boxed{", range: search ..< text.endIndex) {
            var depth = 1
            var i = box.upperBound
            while i < text.endIndex {
                if text[i] == "{" { depth += 1 } else if text[i] == "}" { depth -= 1; if depth == 0 { break } }
                i = text.index(after: i)
            }
            guard i < text.endIndex else { break }
            out.append(text[box.upperBound ..< i])
            search = text.index(after: i)
        }
        return out
    }

    static func hasUnclosedBox(_ text: Substring) -> Bool {
        text.components(separatedBy: "\\boxed{").count - 1 != boxedContents(text).count
    }
}
