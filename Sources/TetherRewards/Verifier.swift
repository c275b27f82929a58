/// A scorer of completions: a rule-based verifier here, a reward model elsewhere.
public protocol Verifier: Sendable {
    /// The name used in reward configs and error messages (`arithmetic`, `format`, …).
    var name: String { get }
    func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown
}

/// One named term of a reward.
public struct RewardComponent: Equatable, Sendable {
    /// The verifier that produced the value.
    public var name: String
    /// The verifier's own reward, before weighting.
    public var value: Float
    public var weight: Float

    public init(name: String, value: Float, weight: Float = 1) {
        self.name = name
        self.value = value
        self.weight = weight
    }
}

/// A reward with its parts, so a run can log which term moved (reward = Σ weight·value).
public struct RewardBreakdown: Equatable, Sendable {
    public var reward: Float
    public var components: [RewardComponent]

    public init(reward: Float, components: [RewardComponent]) {
        self.reward = reward
        self.components = components
    }

    /// A single-term breakdown.
    public init(_ name: String, _ value: Float) {
        self.init(reward: value, components: [RewardComponent(name: name, value: value)])
    }

    public subscript(name: String) -> Float? { components.first { $0.name == name }?.value }

    /// Whether the sample counts as correct: its `correct` component when it has one (a weighted
    /// reward can exceed 1 by its format bonus or fall below it by a length penalty), else a
    /// reward of at least 1 (what the single exact-answer verifiers give a right answer).
    public var isCorrect: Bool { Self.isCorrect(correctComponent: Double(self["correct"] ?? reward)) }

    /// Whether a `correct` component's value (1 for a right answer, 0 otherwise, perhaps rounded on
    /// the way through a Float) says the answer was right.
    public static func isCorrect(correctComponent value: Double) -> Bool { value >= 1 - 1e-6 }
}

/// A reward that must not enter training, or a reward config that cannot be built.
public enum RewardError: Error, Equatable, CustomStringConvertible {
    /// A verifier returned NaN or ±inf: training on it would poison every advantage of its group.
    case nonFiniteReward(verifier: String, promptID: String, value: Float)
    case unknownVerifier(name: String, known: [String])
    case invalidSpec(String)

    public var description: String {
        switch self {
        case .nonFiniteReward(let v, let id, let value):
            return "verifier '\(v)' returned \(value) for prompt '\(id)'; rewards must be finite — the group is not trained on"
        case .unknownVerifier(let name, let known):
            return "unknown verifier '\(name)' (known: \(known.joined(separator: ", ")))"
        case .invalidSpec(let why): return "invalid reward spec: \(why)"
        }
    }

    public static func == (a: RewardError, b: RewardError) -> Bool {
        switch (a, b) {
        case let (.nonFiniteReward(v1, p1, x1), .nonFiniteReward(v2, p2, x2)):
            return v1 == v2 && p1 == p2 && (x1 == x2 || (x1.isNaN && x2.isNaN))
        case let (.unknownVerifier(n1, k1), .unknownVerifier(n2, k2)): return n1 == n2 && k1 == k2
        case let (.invalidSpec(a), .invalidSpec(b)): return a == b
        default: return false
        }
    }
}

extension Verifier {
    /// `score`, refusing a non-finite reward or component with an error that names the verifier
    /// that produced it and the prompt. Every reward that reaches the learner goes through here.
    public func checkedScore(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        let b = try score(completion: completion, for: prompt)
        for c in b.components where !c.value.isFinite {
            throw RewardError.nonFiniteReward(verifier: c.name, promptID: prompt.id, value: c.value)
        }
        guard b.reward.isFinite else { throw RewardError.nonFiniteReward(verifier: name, promptID: prompt.id, value: b.reward) }
        return b
    }
}
