import Foundation

/// Tokens (or any count) per second over a sliding window of recent events, time passed in; for the
/// `actor/tokens_per_s` and `learner/tokens_per_s` metrics.
public struct RateMeter: Sendable {
    public var windowSeconds: Double
    private var events: [(time: Double, count: Double)] = []
    private var firstTime: Double?

    public init(windowSeconds: Double) { self.windowSeconds = windowSeconds }

    public mutating func record(_ count: Double, at time: Double) {
        if firstTime == nil { firstTime = time }
        events.append((time, count))
        events.removeAll { $0.time < time - windowSeconds }
    }

    /// Counts inside (now − window, now] divided by the window (or by the span since the first event
    /// when the meter is younger than its window). Nil before two events span any time.
    public func rate(now: Double) -> Double? {
        let recent = events.filter { $0.time > now - windowSeconds && $0.time <= now }
        guard let first = firstTime, now > first else { return nil }
        let span = min(windowSeconds, now - first)
        return recent.reduce(0) { $0 + $1.count } / span
    }
}

/// The fraction of wall time the learner waited for data rather than computed: the staleness
/// budget's cost (η = 0 idles most; a large η idles least but trains on older samples).
public struct IdleMeter: Sendable {
    private var idleSince: Double?
    private var idleTotal = 0.0
    private var start: Double

    public init(start: Double) { self.start = start }

    public mutating func becameIdle(at time: Double) { if idleSince == nil { idleSince = time } }

    public mutating func becameBusy(at time: Double) {
        if let since = idleSince { idleTotal += max(0, time - since) }
        idleSince = nil
    }

    /// Idle fraction since the last `reset` (an ongoing idle period counts up to `now`).
    public func idleFraction(now: Double) -> Double {
        let elapsed = now - start
        guard elapsed > 0 else { return 0 }
        let ongoing = idleSince.map { max(0, now - $0) } ?? 0
        return min(1, (idleTotal + ongoing) / elapsed)
    }

    /// Starts a new measurement period (e.g. per metrics step), keeping the current idle state.
    public mutating func reset(at time: Double) {
        start = time
        idleTotal = 0
        if idleSince != nil { idleSince = time }
    }
}
