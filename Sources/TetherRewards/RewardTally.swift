/// Per-step means of the named reward components over the samples scored in that step: the
/// `correct` mean is the share of right answers, the `format` mean the share in the requested form,
/// the `length` mean the average overlong penalty. Logged side by side, they show reward hacking as
/// it happens — a format share rising while the correct share stays flat is a policy learning the
/// tags rather than the answer (the warning of DeepSeek-R1's format reward).
public struct RewardTally: Equatable, Sendable {
    public private(set) var samples = 0
    /// Sum of each component's unweighted value, by name.
    public private(set) var sums: [String: Double] = [:]
    /// Samples that carried the component (a reward model's breakdown has none of these names).
    public private(set) var counts: [String: Int] = [:]

    public init() {}

    public mutating func add(_ breakdown: RewardBreakdown) {
        add(components: breakdown.components.map { ($0.name, Double($0.value)) })
    }

    /// One sample's components as (name, unweighted value) pairs: what a scorer sent on the wire.
    public mutating func add(components: [(name: String, value: Double)]) {
        samples += 1
        for c in components {
            sums[c.name, default: 0] += c.value
            counts[c.name, default: 0] += 1
        }
    }

    /// The component's mean value over the samples that carried it, nil when none did.
    public func mean(_ name: String) -> Double? {
        guard let n = counts[name], n > 0, let s = sums[name] else { return nil }
        return s / Double(n)
    }
}
