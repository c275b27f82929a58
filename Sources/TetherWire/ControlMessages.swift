/// Liveness and control. ZeroMQ's own ZMTP heartbeats (`WireSocketOptions.heartbeat…`) close dead
/// connections so ZeroMQ reconnects; these application heartbeats let the learner and actors see
/// which peer is alive and at which version (the learner's `ClusterMembership` decides who is dead).

public enum WireRole: UInt32, Sendable, Equatable, CaseIterable {
    case unspecified = 0
    case learner = 1
    case actor = 2
}

public struct Heartbeat: Sendable, Equatable {
    public var senderId: String
    public var role: WireRole
    public var sequence: UInt64
    public var sentUnixMs: Int64
    public var policyVersion: UInt64
    public var inFlightTickets: UInt32

    public init(senderId: String, role: WireRole, sequence: UInt64, sentUnixMs: Int64, policyVersion: UInt64,
                inFlightTickets: UInt32 = 0) {
        self.senderId = senderId; self.role = role; self.sequence = sequence; self.sentUnixMs = sentUnixMs
        self.policyVersion = policyVersion; self.inFlightTickets = inFlightTickets
    }
}

public enum ControlKind: UInt32, Sendable, Equatable, CaseIterable {
    case unspecified = 0
    /// Finish in-flight tickets, take no new ones.
    case drain = 1
    /// Stop now and exit cleanly.
    case stop = 2
    /// Take tickets again after a drain.
    case resume = 3
}

public struct Control: Sendable, Equatable {
    public var kind: ControlKind
    public var reason: String
    public var deadlineUnixMs: Int64
    public init(kind: ControlKind, reason: String = "", deadlineUnixMs: Int64 = 0) {
        self.kind = kind; self.reason = reason; self.deadlineUnixMs = deadlineUnixMs
    }
}
