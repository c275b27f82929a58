/// Exact-match reward for an integer answer (1 if the completion's integer equals the prompt's
/// `answer`, else 0), read by `IntegerAnswer`'s rules. Serves both the arithmetic task (`12+35=` →
/// `47`) and integer-sequence continuation (`1 2 4 8 ?` → `16`): only the name differs.
public struct IntegerAnswerVerifier: Verifier {
    public let name: String
    public let format: AnswerFormat

    public init(name: String, format: AnswerFormat = .bare) {
        self.name = name
        self.format = format
    }

    public static let arithmetic = IntegerAnswerVerifier(name: "arithmetic")
    public static let sequence = IntegerAnswerVerifier(name: "sequence")

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        guard let expected = IntegerAnswer.canonical(prompt.answer) else {
            throw RewardError.invalidSpec("prompt '\(prompt.id)' has answer \(prompt.answer.debugDescription), which is not an integer")
        }
        let got = IntegerAnswer.extract(from: completion, format: format)
        return RewardBreakdown(name, got == expected ? 1 : 0)
    }
}

/// 1 when the completion has exactly the task's answer format, else 0 (DeepSeek-R1's format
/// reward, Guo et al. 2025). Spaces and newlines around the parts are allowed; nothing else is.
///
/// - `.bare`: the whole completion (up to `<eos>`) is one integer, `-?[0-9]+`.
/// - `.tagged`: `<think>…</think><answer>N</answer>` with N an integer and no tag inside the think block.
public struct FormatVerifier: Verifier {
    public let name = "format"
    public let format: AnswerFormat

    public init(format: AnswerFormat = .bare) { self.format = format }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        RewardBreakdown(name, Self.matches(completion, format: format) ? 1 : 0)
    }

    public static func matches(_ completion: String, format: AnswerFormat) -> Bool {
        var text = Substring(completion)
        if let eos = text.range(of: "<eos>") { text = text[..<eos.lowerBound] }
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\n" }
        func trim(_ s: Substring) -> String { String(s.drop(while: ws).reversed().drop(while: ws).reversed()) }
        switch format {
        case .bare:
            return IntegerAnswer.canonical(trim(text)) != nil
        case .tagged:
            var rest = Substring(trim(text))
            guard rest.hasPrefix("<think>") else { return false }
            rest = rest.dropFirst("<think>".count)
            guard let endThink = rest.range(of: "</think>") else { return false }
            let thought = rest[..<endThink.lowerBound]
            if thought.contains("<think>") || thought.contains("<answer>") { return false }
            rest = rest[endThink.upperBound...].drop(while: ws)
            guard rest.hasPrefix("<answer>"), rest.hasSuffix("</answer>"), rest.count >= "<answer></answer>".count else { return false }
            let inner = rest.dropFirst("<answer>".count).dropLast("</answer>".count)
            return IntegerAnswer.canonical(trim(inner)) != nil
        }
    }
}

/// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), over the completion's length L in
/// characters (one character is one token in the 64-symbol vocabulary):
///
///     R = 0                              if L ≤ L_max − L_cache
///     R = ((L_max − L_cache) − L)/L_cache if L_max − L_cache < L ≤ L_max
///     R = −1                             if L > L_max
///
/// A ramp instead of a cliff, so a slightly long completion is not punished like a runaway one.
public struct LengthPenaltyVerifier: Verifier {
    public let name = "length"
    public let maxLength: Int
    public let cacheLength: Int

    public init(maxLength: Int = 32, cacheLength: Int = 16) {
        self.maxLength = maxLength
        self.cacheLength = max(1, min(cacheLength, maxLength))
    }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        var text = Substring(completion)
        if let eos = text.range(of: "<eos>") { text = text[..<eos.lowerBound] }
        return RewardBreakdown(name, penalty(length: text.count))
    }

    public func penalty(length: Int) -> Float {
        let free = maxLength - cacheLength
        if length <= free { return 0 }
        if length <= maxLength { return Float(free - length) / Float(cacheLength) }
        return -1
    }
}
