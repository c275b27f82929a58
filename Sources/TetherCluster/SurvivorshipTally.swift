import TetherWire

/// Completion length and reward of the groups generated, trained and dropped as too stale in one
/// learner step, side by side. A staleness bound can bias what survives: long completions take
/// longer to sample, arrive later and are the first to exceed η, so the trained groups may be
/// shorter (and easier) than what the actors generate. Comparing the three rows shows that bias
/// instead of letting it hide in the reward curve.
public struct SurvivorshipTally: Equatable, Sendable {
    /// One row: sums over the groups of a kind (means are taken per sample).
    public struct Row: Equatable, Sendable {
        public var groups = 0
        public var samples = 0
        public var completionTokens = 0
        public var reward = 0.0

        public mutating func add(_ g: TrajectoryGroup) {
            groups += 1
            samples += g.samples.count
            completionTokens += g.completionTokenCount
            reward += g.samples.reduce(0) { $0 + $1.reward }
        }

        /// Mean completion tokens per sample, nil when there is none.
        public var meanLength: Double? { samples > 0 ? Double(completionTokens) / Double(samples) : nil }
        /// Mean reward per sample, nil when there is none.
        public var meanReward: Double? { samples > 0 ? reward / Double(samples) : nil }
    }

    /// Every well-formed group that arrived (trained later, dropped or still buffered).
    public var generated = Row()
    /// The groups of the step's batch.
    public var trained = Row()
    /// Groups that arrived too stale for η (or, in exact mode, sampled by another version) and were dropped.
    public var stale = Row()

    public init() {}

    /// `survivorship/{generated,trained,stale}_{groups,length,reward}`; a mean without samples is left out.
    public var scalars: [String: Double] {
        var out: [String: Double] = [:]
        for (name, row) in [("generated", generated), ("trained", trained), ("stale", stale)] {
            out["survivorship/\(name)_groups"] = Double(row.groups)
            if let l = row.meanLength { out["survivorship/\(name)_length"] = l }
            if let r = row.meanReward { out["survivorship/\(name)_reward"] = r }
        }
        return out
    }
}
