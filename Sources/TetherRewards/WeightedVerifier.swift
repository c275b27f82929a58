/// A weighted sum of verifiers, R = Σ_k w_k·R_k, keeping every term as a named component.
public struct WeightedVerifier: Verifier {
    public let terms: [(verifier: any Verifier, weight: Float)]

    public init(_ terms: [(verifier: any Verifier, weight: Float)]) { self.terms = terms }

    public var name: String { terms.map(\.verifier.name).joined(separator: "+") }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        var total: Float = 0
        var parts: [RewardComponent] = []
        for (v, w) in terms {
            let b = try v.score(completion: completion, for: prompt)
            guard b.reward.isFinite else {
                throw RewardError.nonFiniteReward(verifier: v.name, promptID: prompt.id, value: b.reward)
            }
            total += w * b.reward
            parts.append(RewardComponent(name: v.name, value: b.reward, weight: w))
        }
        return RewardBreakdown(reward: total, components: parts)
    }
}

/// The reward a run is configured with (`task.reward_weights`, `task.extract`, `task.length_*` in
/// the config): R = w_correct·correct + w_format·format + w_length·length, where
///
/// - `correct` ∈ {0, 1}: the answer, read as `format` says, equals the reference (`IntegerAnswerVerifier`);
/// - `format` ∈ {0, 1}: the answer is given in exactly the requested form (`FormatVerifier`);
/// - `length` ∈ [−1, 0]: DAPO's soft overlong penalty over the completion's characters (`LengthPenaltyVerifier`).
///
/// All three components are scored for every sample, also at weight 0, so the metrics can always
/// separate "learned the format" from "learned the answer".
public struct RewardSpec: Equatable, Sendable {
    public static let componentNames = ["correct", "format", "length"]

    public var correct: Float
    public var format: Float
    public var length: Float
    public var answerFormat: AnswerFormat
    /// L_max and L_cache of the length penalty, in characters.
    public var lengthMaxChars: Int
    public var lengthRampChars: Int

    public init(correct: Float = 1, format: Float = 0, length: Float = 0, answerFormat: AnswerFormat = .lastInteger,
                lengthMaxChars: Int = 256, lengthRampChars: Int = 128) throws {
        for (name, w) in [("correct", correct), ("format", format), ("length", length)] {
            guard w.isFinite, w >= 0 else { throw RewardError.invalidSpec("weight of '\(name)' is \(w); weights must be finite and ≥ 0") }
        }
        guard lengthMaxChars >= 1, (1 ... lengthMaxChars).contains(lengthRampChars) else {
            throw RewardError.invalidSpec("length penalty needs 1 ≤ ramp ≤ max characters, got ramp \(lengthRampChars), max \(lengthMaxChars)")
        }
        self.correct = correct
        self.format = format
        self.length = length
        self.answerFormat = answerFormat
        self.lengthMaxChars = lengthMaxChars
        self.lengthRampChars = lengthRampChars
    }

    /// The revision of the built-in scoring rules (answer extraction, format check, length ramp).
    /// Bump it with any change to what those verifiers return for the same text, so runs scored
    /// by the old and the new rules get different reward versions.
    public static let rulesRevision = 1

    /// Every setting that decides the reward of a completion, in a fixed order and spelling: the
    /// input of a reward version (equal descriptions score every completion the same).
    public var canonicalDescription: String {
        "rules=\(Self.rulesRevision);correct=\(correct);format=\(format);length=\(length);extract=\(answerFormat.rawValue);"
            + "length_max_chars=\(lengthMaxChars);length_ramp_chars=\(lengthRampChars)"
    }

    /// The verifier this spec describes; its breakdown's components are named `correct`, `format`, `length`.
    public func makeVerifier() -> WeightedVerifier {
        WeightedVerifier([
            (IntegerAnswerVerifier.correct(answerFormat), correct),
            (FormatVerifier(format: answerFormat), format),
            (LengthPenaltyVerifier(maxLength: lengthMaxChars, cacheLength: lengthRampChars), length),
        ])
    }
}
