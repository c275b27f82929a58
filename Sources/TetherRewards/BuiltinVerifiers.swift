/// Exact-match reward for an integer answer (1 if the completion's integer, found where `format`
/// puts it, equals the prompt's `answer`, else 0), read by `IntegerAnswer`'s rules. Serves every
/// built-in task (`12+35=` → `47`, `1 2 4 8 ?` → `16`, word problems) and user datasets; in a
/// configured reward (`RewardSpec`) it is the `correct` component.
public struct IntegerAnswerVerifier: Verifier {
    public let name: String
    public let format: AnswerFormat

    public init(name: String, format: AnswerFormat = .bare) {
        self.name = name
        self.format = format
    }

    public static let arithmetic = IntegerAnswerVerifier(name: "arithmetic")
    public static let sequence = IntegerAnswerVerifier(name: "sequence")
    /// The correctness component of a configured reward.
    public static func correct(_ format: AnswerFormat) -> IntegerAnswerVerifier { IntegerAnswerVerifier(name: "correct", format: format) }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        guard let expected = IntegerAnswer.canonical(prompt.answer) else {
            throw RewardError.invalidSpec("prompt '\(prompt.id)' has answer \(prompt.answer.debugDescription), which is not an integer")
        }
        let got = IntegerAnswer.extract(from: completion, format: format)
        return RewardBreakdown(name, got == expected ? 1 : 0)
    }
}

/// 1 when the completion gives its answer in exactly the requested form, else 0
/// (`AnswerFormat.isWellFormed`; DeepSeek-R1's format reward, Guo et al. 2025). Scored apart from
/// correctness so a run can see a policy learning the form without the answer — the reward hacking
/// a format bonus invites.
public struct FormatVerifier: Verifier {
    public let name: String
    public let format: AnswerFormat

    public init(name: String = "format", format: AnswerFormat = .bare) {
        self.name = name
        self.format = format
    }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        RewardBreakdown(name, Self.matches(completion, format: format) ? 1 : 0)
    }

    public static func matches(_ completion: String, format: AnswerFormat) -> Bool { format.isWellFormed(completion) }
}

/// DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), over the completion's length L in
/// characters (one character is one token in the 64-symbol vocabulary; about four per token of a
/// byte-level BPE vocabulary):
///
///     R = 0                              if L ≤ L_max − L_cache
///     R = ((L_max − L_cache) − L)/L_cache if L_max − L_cache < L ≤ L_max
///     R = −1                             if L > L_max
///
/// A ramp instead of a cliff, so a slightly long completion is not punished like a runaway one.
public struct LengthPenaltyVerifier: Verifier {
    public let name: String
    public let maxLength: Int
    public let cacheLength: Int

    public init(name: String = "length", maxLength: Int = 32, cacheLength: Int = 16) {
        self.name = name
        self.maxLength = maxLength
        self.cacheLength = max(1, min(cacheLength, maxLength))
    }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        RewardBreakdown(name, penalty(length: AnswerFormat.generated(completion).count))
    }

    public func penalty(length: Int) -> Float {
        let free = maxLength - cacheLength
        if length <= free { return 0 }
        if length <= maxLength { return Float(free - length) / Float(cacheLength) }
        return -1
    }
}
