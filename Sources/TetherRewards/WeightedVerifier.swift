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

/// A reward described by configuration: verifier names with weights, e.g.
/// `[("arithmetic", 1.0), ("format", 0.1)]` or the string `"arithmetic:1,format:0.1"`.
///
/// Built-in names: `arithmetic`, `sequence` (exact integer answer), `format` (the answer format
/// of `options.format`), `length` (DAPO's overlong penalty with `options.maxLength`/`cacheLength`).
public struct RewardSpec: Equatable, Sendable {
    public struct Term: Equatable, Sendable {
        public var name: String
        public var weight: Float

        public init(name: String, weight: Float) {
            self.name = name
            self.weight = weight
        }
    }

    /// Settings shared by the built-in verifiers.
    public struct Options: Equatable, Sendable {
        public var format: AnswerFormat
        public var maxLength: Int
        public var cacheLength: Int

        public init(format: AnswerFormat = .bare, maxLength: Int = 32, cacheLength: Int = 16) {
            self.format = format
            self.maxLength = maxLength
            self.cacheLength = cacheLength
        }
    }

    public static let builtinNames = ["arithmetic", "sequence", "format", "length"]

    public var terms: [Term]

    public init(_ terms: [(String, Float)]) throws {
        guard !terms.isEmpty else { throw RewardError.invalidSpec("no verifiers given") }
        for (name, w) in terms {
            guard Self.builtinNames.contains(name) else { throw RewardError.unknownVerifier(name: name, known: Self.builtinNames) }
            guard w.isFinite else { throw RewardError.invalidSpec("weight of '\(name)' is \(w); weights must be finite") }
        }
        self.terms = terms.map { Term(name: $0.0, weight: $0.1) }
    }

    /// Parses `name:weight` pairs separated by commas; a name without weight has weight 1.
    public init(parsing text: String) throws {
        var pairs: [(String, Float)] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
            switch parts.count {
            case 1: pairs.append((parts[0], 1))
            case 2:
                guard let w = Float(parts[1]) else {
                    throw RewardError.invalidSpec("weight '\(parts[1])' of '\(parts[0])' is not a number")
                }
                pairs.append((parts[0], w))
            default: throw RewardError.invalidSpec("'\(item)' is not name:weight")
            }
        }
        try self.init(pairs)
    }

    /// The verifier this spec describes.
    public func makeVerifier(options: Options = Options()) -> WeightedVerifier {
        WeightedVerifier(terms.map { t in
            let v: any Verifier
            switch t.name {
            case "arithmetic": v = IntegerAnswerVerifier(name: "arithmetic", format: options.format)
            case "sequence": v = IntegerAnswerVerifier(name: "sequence", format: options.format)
            case "format": v = FormatVerifier(format: options.format)
            default: v = LengthPenaltyVerifier(maxLength: options.maxLength, cacheLength: options.cacheLength)
            }
            return (v, t.weight)
        })
    }
}

extension Substring {
    var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
