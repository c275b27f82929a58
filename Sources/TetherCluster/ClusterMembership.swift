import Foundation

/// When the learner counts an actor as live and when tickets may start to flow.
public struct MembershipPolicy: Codable, Hashable, Sendable {
    /// Tickets are withheld until this many actors are live (or `startupGraceSeconds` passed), so
    /// the first actor up does not run the whole batch schedule alone.
    public var expectedActors: Int
    /// How long after the first tick the start gate opens whoever has joined.
    public var startupGraceSeconds: Double
    /// An actor silent for longer than this is declared dead and loses what it held; nil: never
    /// (a machine driven without heartbeats, as in unit tests).
    public var heartbeatTimeoutSeconds: Double?

    public init(expectedActors: Int = 0, startupGraceSeconds: Double = 30, heartbeatTimeoutSeconds: Double? = nil) {
        self.expectedActors = expectedActors
        self.startupGraceSeconds = startupGraceSeconds
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
    }

    public func validate() throws {
        guard expectedActors >= 0 else { throw StalenessError.invalidPolicy("expected actors must be ≥ 0, got \(expectedActors)") }
        guard startupGraceSeconds >= 0, startupGraceSeconds.isFinite else {
            throw StalenessError.invalidPolicy("startup grace must be a finite number ≥ 0, got \(startupGraceSeconds)")
        }
        if let t = heartbeatTimeoutSeconds, !(t > 0 && t.isFinite) {
            throw StalenessError.invalidPolicy("heartbeat timeout must be a positive number, got \(t)")
        }
    }
}

/// The learner's view of its actors: who is live, since when it last heard from each, which
/// process (pid) holds each name, and whether the start gate is open. Plain data with pure
/// transitions and no clock: `StalenessController` feeds it the time with every event and turns
/// its answers into directives (joins, restarts, deaths), as `SWIM.Instance` does in
/// apple/swift-cluster-membership. The learner is the only observer, so liveness is simply "heard
/// from within the heartbeat timeout"; ZeroMQ reconnects by itself, this tells who is gone.
public struct ClusterMembership: Codable, Hashable, Sendable {
    public struct Member: Codable, Hashable, Sendable {
        /// The process id its `ActorJoin` gave; nil while the learner only heard other messages
        /// from it (an actor joins on first contact, e.g. after a learner restart).
        public var pid: UInt32?
        /// When the learner last heard from it (the learner's clock, seconds).
        public var lastSeen: Double
    }

    /// What one message from an actor meant.
    public enum Contact: Equatable, Sendable {
        /// Not live before: it joins (first contact, or back after it was declared dead).
        case joined
        /// Live under another pid: the old process died and what it held is gone.
        case restarted(previousPid: UInt32)
        /// Live already: only its last-seen time moves.
        case alive
    }

    public var members: [ActorID: Member] = [:]
    /// The time of the first tick: the start gate's grace runs from here.
    public var startedAt: Double?
    public var gateOpen = false

    public init() {}

    public func contains(_ actor: ActorID) -> Bool { members[actor] != nil }
    public var count: Int { members.count }

    /// A message from `actor`; `pid` when it is an `ActorJoin` (which names the process).
    public mutating func contact(_ actor: ActorID, pid: UInt32?, now: Double) -> Contact {
        guard var member = members[actor] else {
            members[actor] = Member(pid: pid, lastSeen: now)
            return .joined
        }
        member.lastSeen = now
        var contact = Contact.alive
        if let pid {
            if let previous = member.pid, previous != pid { contact = .restarted(previousPid: previous) }
            member.pid = pid
        }
        members[actor] = member
        return contact
    }

    /// A message that proves a live actor alive without joining an unknown one (a trajectory
    /// group: a declared-dead actor's late group must not bring it back).
    public mutating func refresh(_ actor: ActorID, now: Double) {
        members[actor]?.lastSeen = now
    }

    /// Forgets `actor`; true when it was live.
    public mutating func remove(_ actor: ActorID) -> Bool { members.removeValue(forKey: actor) != nil }

    /// Removes and returns the members silent for longer than `timeout` at `now`, by name, with how
    /// long each was silent.
    public mutating func expire(now: Double, timeout: Double?) -> [(actor: ActorID, silentSeconds: Double)] {
        guard let timeout else { return [] }
        let dead = members.filter { now - $0.value.lastSeen > timeout }.map { (actor: $0.key, silentSeconds: now - $0.value.lastSeen) }
            .sorted { $0.actor < $1.actor }
        for d in dead { members[d.actor] = nil }
        return dead
    }

    /// Opens the gate once the expected actors are live or the grace after the first tick ran out;
    /// true when this call opened it.
    public mutating func openGateIfDue(now: Double, policy: MembershipPolicy) -> Bool {
        guard !gateOpen else { return false }
        let graceOver = startedAt.map { now - $0 > policy.startupGraceSeconds } ?? false
        guard count >= policy.expectedActors || graceOver else { return false }
        gateOpen = true
        return true
    }
}
