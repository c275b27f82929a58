/// Which peers are alive, from the application `Heartbeat`s they send: a pure state machine (no
/// clock, no sockets) that the cluster's shell feeds with events and asks for decisions.
/// ZeroMQ reconnects by itself; this tells the learner that an actor is gone so it can re-issue
/// the tickets that actor held.
public struct PeerLiveness: Sendable, Equatable {
    public struct Peer: Sendable, Equatable {
        public var lastSeenMs: Int64
        public var lastSequence: UInt64
        public var policyVersion: UInt64
    }

    /// A peer silent for longer than this is dead.
    public var timeoutMs: Int64
    public private(set) var peers: [String: Peer] = [:]

    public init(timeoutMs: Int64) { self.timeoutMs = timeoutMs }

    /// Records a heartbeat received at `nowMs` (the receiver's clock: senders' clocks may differ).
    public mutating func observe(_ heartbeat: Heartbeat, nowMs: Int64) {
        peers[heartbeat.senderId] = Peer(lastSeenMs: nowMs, lastSequence: heartbeat.sequence, policyVersion: heartbeat.policyVersion)
    }

    /// Any other message from `peerId` also shows it is alive.
    public mutating func observeActivity(from peerId: String, nowMs: Int64) {
        if var p = peers[peerId] { p.lastSeenMs = nowMs; peers[peerId] = p }
        else { peers[peerId] = Peer(lastSeenMs: nowMs, lastSequence: 0, policyVersion: 0) }
    }

    /// Removes and returns the peers not heard from within `timeoutMs`, sorted by id.
    public mutating func expire(nowMs: Int64) -> [String] {
        let dead = peers.filter { nowMs - $0.value.lastSeenMs > timeoutMs }.map(\.key).sorted()
        for id in dead { peers[id] = nil }
        return dead
    }
}
