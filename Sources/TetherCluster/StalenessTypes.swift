import Foundation

/// The identity of an actor process (its ZeroMQ routing identity, or a name given at launch).
public struct ActorID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var name: String
    public init(_ name: String) { self.name = name }
    public init(stringLiteral value: String) { self.name = value }
    public var description: String { name }
    public static func < (a: ActorID, b: ActorID) -> Bool { a.name < b.name }
    public init(from decoder: Decoder) throws { name = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}

/// Sequential ticket number; never reused, so any id below the next one was issued once.
public typealias TicketID = Int

/// A prompt's draw index from the data cursor (the dataset maps it to an item, e.g. modulo its size).
public typealias PromptID = Int

/// How the lag of a trained sample relates to η.
public enum StalenessMode: String, ConfigChoice, Hashable {
    /// η is an upper bound (AReaL's admission control): each lag is whatever the race between
    /// actors and learner makes it, in 0…η, so it depends on the machine's speed.
    case bound
    /// Every trained sample has lag exactly k = η: the batch of version v holds groups sampled by
    /// version v − k, and the learner keeps the fresher groups until their turn. The first k
    /// batches (and the first k after a learner restart) train on groups sampled by the first
    /// version, so their lags are 0, 1, …, k − 1. It isolates the statistical effect of staleness
    /// from the machine: sampling and training alternate (the throughput of η = 0).
    case exact
}

/// The knobs of admission control (AReaL, Fu et al. 2025, §5.1): η, the batch size B in groups,
/// the ticket size and how long an actor may hold a ticket before its prompts are re-issued.
public struct StalenessPolicy: Codable, Hashable, Sendable {
    /// η: the largest allowed lag (learner version at training − sampling version). 0 = synchronous.
    public var maxStaleness: Int
    /// Whether η bounds the lag or fixes it (see `StalenessMode`).
    public var mode: StalenessMode
    /// B: groups (prompt × G samples) consumed by one optimizer update.
    public var groupsPerBatch: Int
    /// Prompts handed out per ticket (a ticket may be smaller when less budget is left).
    public var promptsPerTicket: Int
    /// Seconds an actor may hold a ticket before it is presumed lost and its prompts re-issued.
    public var leaseSeconds: Double
    /// Liveness and the start gate.
    public var membership: MembershipPolicy

    public init(maxStaleness: Int, mode: StalenessMode = .bound, groupsPerBatch: Int, promptsPerTicket: Int = 1, leaseSeconds: Double = 120,
                membership: MembershipPolicy = MembershipPolicy()) {
        self.maxStaleness = maxStaleness
        self.mode = mode
        self.groupsPerBatch = groupsPerBatch
        self.promptsPerTicket = promptsPerTicket
        self.leaseSeconds = leaseSeconds
        self.membership = membership
    }

    enum CodingKeys: String, CodingKey { case maxStaleness, mode, groupsPerBatch, promptsPerTicket, leaseSeconds, membership }

    /// A snapshot checkpointed before `mode` existed decodes as `.bound`, what it ran with.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxStaleness = try c.decode(Int.self, forKey: .maxStaleness)
        mode = try c.decodeIfPresent(StalenessMode.self, forKey: .mode) ?? .bound
        groupsPerBatch = try c.decode(Int.self, forKey: .groupsPerBatch)
        promptsPerTicket = try c.decode(Int.self, forKey: .promptsPerTicket)
        leaseSeconds = try c.decode(Double.self, forKey: .leaseSeconds)
        membership = try c.decode(MembershipPolicy.self, forKey: .membership)
    }

    public func validate() throws {
        guard maxStaleness >= 0 else { throw StalenessError.invalidPolicy("max_staleness must be ≥ 0, got \(maxStaleness)") }
        guard groupsPerBatch >= 1 else { throw StalenessError.invalidPolicy("groups per batch must be ≥ 1, got \(groupsPerBatch)") }
        guard promptsPerTicket >= 1 else { throw StalenessError.invalidPolicy("prompts per ticket must be ≥ 1, got \(promptsPerTicket)") }
        guard leaseSeconds > 0, leaseSeconds.isFinite else {
            throw StalenessError.invalidPolicy("lease seconds must be a positive number, got \(leaseSeconds)")
        }
        try membership.validate()
    }
}

/// A grant to sample one group of G completions for each prompt, with weights of version ≥ `minVersion`.
public struct TicketGrant: Codable, Hashable, Sendable {
    public var id: TicketID
    public var actor: ActorID
    public var promptIDs: [PromptID]
    /// The oldest policy version the actor may sample with so the groups' lag stays ≤ η.
    public var minVersion: Int
    /// Time (the caller's clock, seconds) after which the ticket is presumed lost.
    public var leaseDeadline: Double
    /// True when the prompts come from the re-issue queue (a lost ticket), not from the data cursor.
    public var isReissue: Bool

    public init(id: TicketID, actor: ActorID, promptIDs: [PromptID], minVersion: Int, leaseDeadline: Double, isReissue: Bool) {
        self.id = id
        self.actor = actor
        self.promptIDs = promptIDs
        self.minVersion = minVersion
        self.leaseDeadline = leaseDeadline
        self.isReissue = isReissue
    }
}

/// One finished group as reported by an actor.
public struct GroupArrival: Codable, Hashable, Sendable {
    public var actor: ActorID
    public var ticket: TicketID
    public var promptID: PromptID
    /// Per sample, the OLDEST policy version that produced any of its tokens (a sample can span a
    /// weight update mid-generation; its lag is that of its oldest token).
    public var sampleVersions: [Int]

    public init(actor: ActorID, ticket: TicketID, promptID: PromptID, sampleVersions: [Int]) {
        self.actor = actor
        self.ticket = ticket
        self.promptID = promptID
        self.sampleVersions = sampleVersions
    }
}

/// A group accepted into the batch buffer, with the version that will train it.
public struct AdmittedGroup: Codable, Hashable, Sendable {
    public var ticket: TicketID
    public var promptID: PromptID
    public var actor: ActorID
    /// The learner version at which this group is trained (its batch produces `trainVersion + 1`).
    public var trainVersion: Int
    /// trainVersion − oldest sample version; ≤ η by construction.
    public var lag: Int
    /// trainVersion − each sample's version, in sample order.
    public var sampleLags: [Int]
}

/// Why a group (or a ticket's remaining prompts) did not make it into the batch buffer.
public enum DropReason: String, Codable, CaseIterable, Sendable, CodingKeyRepresentable {
    // A live group is lost: its prompt goes back to the re-issue queue.
    case tooStale = "too_stale"
    case futureVersion = "future_version"
    case malformed
    case leaseExpired = "lease_expired"
    case actorLeft = "actor_left"
    case learnerRestart = "learner_restart"
    // An arrival that matches no live group: nothing to re-issue.
    case unknownTicket = "unknown_ticket"
    case expiredTicket = "expired_ticket"
    case duplicate
    case unknownActor = "unknown_actor"

    /// True when the reason loses a live (issued, not yet delivered) group and re-queues its prompt;
    /// false for arrivals that are rejected without touching any live group.
    public var losesLiveGroup: Bool {
        switch self {
        case .tooStale, .futureVersion, .malformed, .leaseExpired, .actorLeft, .learnerRestart: return true
        case .unknownTicket, .expiredTicket, .duplicate, .unknownActor: return false
        }
    }
}

/// Why a ticket request was refused outright (as opposed to asked to wait).
public enum TicketRefusal: String, Codable, Sendable {
    case unknownActor = "unknown_actor"
    case draining
}

/// Inputs of the state machine. Time is always passed in by the caller (`handle(_:now:)`).
public enum StalenessEvent: Equatable, Sendable {
    /// An `ActorJoin` from process `pid`: an unknown actor joins, a live one under another pid
    /// restarted and loses what the old process held.
    case actorJoined(ActorID, pid: UInt32)
    /// Any other message from an actor (heartbeat, ticket or weights request): it is alive, and an
    /// actor not live (new, declared dead, or known before a learner restart) joins.
    case actorHeard(ActorID)
    /// The actor said goodbye: its tickets are lost.
    case actorLeft(ActorID)
    /// An actor asks for work, telling the weights version it currently holds.
    case ticketRequested(actor: ActorID, weightsVersion: Int)
    case groupArrived(GroupArrival)
    /// Time passed: expire leases whose deadline is ≤ now, declare actors silent for longer than
    /// the heartbeat timeout dead, open the start gate when its grace ran out.
    case tick
    /// The learner finished the optimizer update on the announced batch of `version`.
    case batchTrained(version: Int)
    /// Stop handing out work; announce `.drained` once nothing is in flight.
    case drain
}

/// Outputs: what the shell (learner process) must do.
public enum StalenessDirective: Equatable, Sendable {
    case issueTicket(TicketGrant)
    /// The actor holds weights older than `minVersion`: fetch newer weights, then ask again. Also
    /// the answer to a request queued by `.waitForBudget` when the version moved on meanwhile.
    case waitForWeights(actor: ActorID, minVersion: Int)
    /// No budget within η: the request is queued and answered by a later `.issueTicket`.
    case waitForBudget(actor: ActorID)
    /// The start gate is closed (too few actors live yet): the request is queued like one that
    /// waits for budget.
    case waitForStartGate(actor: ActorID)
    case refuseTicket(actor: ActorID, reason: TicketRefusal)
    case admitGroup(AdmittedGroup)
    case dropGroup(GroupArrival, reason: DropReason)
    /// These prompts of a lost ticket went back to the queue and will be re-issued.
    case reissuePrompts(lostTicket: TicketID, promptIDs: [PromptID], reason: DropReason)
    /// B groups are buffered for the batch of `version`: train on them, then send `.batchTrained`.
    case batchReady(version: Int, groups: [AdmittedGroup])
    case drained
    /// An actor became live (first contact, or back after it was declared dead or left).
    case memberJoined(ActorID)
    /// The same name from a new process: the old one's tickets were re-queued (directives follow).
    case memberRestarted(ActorID, previousPid: UInt32, pid: UInt32)
    /// The actor said goodbye: forget its route.
    case memberLeft(ActorID)
    /// Silent for longer than the heartbeat timeout: presumed dead, its tickets re-queued.
    case memberDead(ActorID, silentSeconds: Double)
    /// Enough actors are live (or the startup grace ran out): tickets flow from now on.
    case startGateOpened(liveActors: Int)
}

public enum StalenessError: Error, Equatable, CustomStringConvertible {
    case invalidPolicy(String)
    case unexpectedBatchTrained(expectedVersion: Int, got: Int, batchAnnounced: Bool)

    public var description: String {
        switch self {
        case .invalidPolicy(let why): return "invalid staleness policy: \(why)"
        case let .unexpectedBatchTrained(expected, got, announced):
            return announced
                ? "batchTrained(version: \(got)) but the announced batch is version \(expected)"
                : "batchTrained(version: \(got)) but no batch is announced (current version \(expected)); wait for .batchReady"
        }
    }
}
