import Foundation

/// The whole state of a `StalenessController`: plain data, `Codable`, so the learner checkpoints it
/// beside the weights and resumes with the same cursor, counters and re-issue queue; `Hashable`, so
/// an exhaustive search over the machine's reachable states can tell a state it has seen.
public struct StalenessState: Codable, Hashable, Sendable {
    /// A ticket still held by an actor, with the prompts whose groups have not arrived yet.
    public struct LiveTicket: Codable, Hashable, Sendable {
        public var ticket: TicketGrant
        public var pending: [PromptID]
    }

    /// An actor waiting for budget (or for the start gate), answered in FIFO order when budget frees up.
    public struct BudgetWaiter: Codable, Hashable, Sendable {
        public var actor: ActorID
        public var weightsVersion: Int
    }

    public var policy: StalenessPolicy
    /// v: optimizer updates done so far.
    public var version: Int = 0
    public var nextTicketID: TicketID = 0
    /// The data cursor: the next fresh prompt's draw index. Advances once per prompt, never for re-issues.
    public var cursor: PromptID = 0
    /// The live actors, their liveness and the start gate.
    public var membership = ClusterMembership()
    public var liveTickets: [TicketID: LiveTicket] = [:]
    /// Prompts of lost groups, re-issued (before fresh ones) in this order.
    public var reissueQueue: [PromptID] = []
    /// For each queued prompt, the ticket it was lost from (to tell "expired" from "duplicate").
    public var lostFrom: [PromptID: TicketID] = [:]
    public var budgetWaiters: [BudgetWaiter] = []
    /// Groups ever admitted (trained ones included): the next admitted group takes slot
    /// `admittedSlots`, i.e. it is trained at version ⌊admittedSlots / B⌋.
    public var admittedSlots: Int = 0
    /// Admitted, untrained groups in slot order; the first B form the batch of `version`.
    public var buffer: [AdmittedGroup] = []
    public var batchAnnounced = false
    public var draining = false
    public var drainedAnnounced = false

    public var issuedGroups = 0
    public var reissuedGroups = 0
    public var trainedGroups = 0
    /// Live groups lost, by reason (each re-queued its prompt).
    public var lost: [DropReason: Int] = [:]
    /// Arrivals rejected without touching a live group, by reason.
    public var rejected: [DropReason: Int] = [:]
    /// Count of admitted samples per lag 0…η.
    public var sampleLagHistogram: [Int]
    /// Count of admitted groups per group lag (its oldest sample) 0…η.
    public var groupLagHistogram: [Int]

    public init(policy: StalenessPolicy) {
        self.policy = policy
        sampleLagHistogram = Array(repeating: 0, count: policy.maxStaleness + 1)
        groupLagHistogram = Array(repeating: 0, count: policy.maxStaleness + 1)
    }

    public var inFlightGroups: Int { liveTickets.values.reduce(0) { $0 + $1.pending.count } }
    /// Slots (groups) that will still be trained if everything in flight arrives.
    public var liveGroups: Int { admittedSlots + inFlightGroups }
    /// (v + η + 1)·B: AReaL's bound on groups that can be consumed within η more versions.
    public var capacity: Int { (version + policy.maxStaleness + 1) * policy.groupsPerBatch }
}

/// Counters for metrics and for the accounting identity
/// issued = trained + buffered + in flight + Σ lost(reason), and Σ lost = re-issued + pending re-issue.
public struct StalenessStatistics: Equatable, Sendable {
    public var version: Int
    public var cursor: Int
    public var issuedGroups: Int
    public var reissuedGroups: Int
    public var trainedGroups: Int
    public var bufferedGroups: Int
    public var inFlightGroups: Int
    public var pendingReissue: Int
    public var lost: [DropReason: Int]
    public var rejected: [DropReason: Int]
    public var sampleLagHistogram: [Int]
    public var groupLagHistogram: [Int]

    public var totalLost: Int { lost.values.reduce(0, +) }
    /// Every drop, lost or rejected, by reason (for `metrics.jsonl`).
    public var droppedByReason: [DropReason: Int] { lost.merging(rejected, uniquingKeysWith: +) }

    /// The two conservation laws; false means a group was lost or double counted.
    public var accountingBalances: Bool {
        issuedGroups == trainedGroups + bufferedGroups + inFlightGroups + totalLost
            && totalLost == reissuedGroups + pendingReissue
            && issuedGroups == cursor + reissuedGroups
    }

    /// The p-quantile (0…1) of admitted sample lags, or nil when nothing was admitted.
    public func sampleLagQuantile(_ p: Double) -> Int? {
        let total = sampleLagHistogram.reduce(0, +)
        guard total > 0 else { return nil }
        let target = max(1, Int((p * Double(total)).rounded(.up)))
        var seen = 0
        for (lag, n) in sampleLagHistogram.enumerated() {
            seen += n
            if seen >= target { return lag }
        }
        return sampleLagHistogram.count - 1
    }

    public var maxSampleLag: Int? { sampleLagHistogram.lastIndex(where: { $0 > 0 }) }
}
