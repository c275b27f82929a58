import Foundation

extension StalenessController {
    /// The earliest lease deadline among live tickets: the learner's poll loop sleeps at most until
    /// then before sending `.leaseTick`, so a lost ticket is re-issued on time without busy polling.
    public var nextLeaseDeadline: Double? {
        state.liveTickets.values.map(\.ticket.leaseDeadline).min()
    }
}

/// The actor's view of a ticket's lease. Process clocks are not shared (each side reads its own
/// monotonic clock), so the actor measures the lease from when it received the ticket, which is
/// after the learner issued it: the actor's deadline is never later than the learner's.
public struct TicketLease: Equatable, Sendable {
    public var ticket: RolloutTicket
    /// Actor clock (seconds) when the ticket arrived.
    public var receivedAt: Double
    public var leaseSeconds: Double

    public init(ticket: RolloutTicket, receivedAt: Double, leaseSeconds: Double) {
        self.ticket = ticket
        self.receivedAt = receivedAt
        self.leaseSeconds = leaseSeconds
    }

    public var deadline: Double { receivedAt + leaseSeconds }

    public func remaining(now: Double) -> Double { max(0, deadline - now) }

    public func isExpired(now: Double) -> Bool { now >= deadline }

    /// True when the remaining groups cannot be returned before the lease runs out at the rate
    /// observed so far: the learner will re-issue them anyway, so finishing them wastes the actor's
    /// time (and they would be dropped as duplicates).
    public func shouldAbandon(now: Double, groupsDone: Int, groupsLeft: Int) -> Bool {
        guard groupsLeft > 0 else { return false }
        if isExpired(now: now) { return true }
        guard groupsDone > 0 else { return false }
        let secondsPerGroup = (now - receivedAt) / Double(groupsDone)
        return now + secondsPerGroup * Double(groupsLeft) > deadline
    }
}

/// Declares actors dead after `timeoutSeconds` without a heartbeat. Pure (time passed in); each
/// expired actor is fed to the controller as `.actorLeft`, which re-queues what it held.
public struct HeartbeatMonitor: Codable, Equatable, Sendable {
    public var timeoutSeconds: Double
    public private(set) var lastSeen: [ActorID: Double] = [:]

    public init(timeoutSeconds: Double) { self.timeoutSeconds = timeoutSeconds }

    /// Any message from an actor counts as a heartbeat.
    public mutating func heard(from actor: ActorID, now: Double) {
        lastSeen[actor] = max(lastSeen[actor] ?? now, now)
    }

    public mutating func forget(_ actor: ActorID) { lastSeen[actor] = nil }

    /// Removes and returns (sorted) the actors silent for at least the timeout.
    public mutating func expire(now: Double) -> [ActorID] {
        let dead = lastSeen.filter { now - $0.value >= timeoutSeconds }.keys.sorted()
        for actor in dead { lastSeen[actor] = nil }
        return dead
    }

    /// When the next actor would be declared dead if it stays silent.
    public var nextExpiry: Double? { lastSeen.values.min().map { $0 + timeoutSeconds } }
}
