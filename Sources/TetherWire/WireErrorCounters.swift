import Foundation
import Logging

/// Rejected messages, counted per reason, with the last error of each reason kept for
/// diagnosis. Logging is rate-limited per reason so a flood of garbage cannot flood the log:
/// at most one line per reason per `logInterval` seconds, saying how many were suppressed.
public final class WireErrorCounters: @unchecked Sendable {
    // @unchecked Sendable: every stored property is guarded by `lock`.
    private let lock = NSLock()
    private var counts: [WireErrorReason: Int] = [:]
    private var lastErrors: [WireErrorReason: WireError] = [:]
    private var lastLogged: [WireErrorReason: Double] = [:]
    private var suppressed: [WireErrorReason: Int] = [:]
    private let logger: Logger
    private let logInterval: Double

    public init(logger: Logger = Logger(label: "tether.wire"), logInterval: Double = 1.0) {
        self.logger = logger
        self.logInterval = logInterval
    }

    /// Counts `error` and logs it unless this reason was logged less than `logInterval` ago.
    public func record(_ error: WireError, source: String) {
        let reason = error.reason
        let now = ProcessInfo.processInfo.systemUptime
        var line: String?
        lock.lock()
        counts[reason, default: 0] += 1
        lastErrors[reason] = error
        if now - (lastLogged[reason] ?? -.infinity) >= logInterval {
            let skipped = suppressed[reason] ?? 0
            line = "rejected message from \(source): \(error)" + (skipped > 0 ? " (\(skipped) more \(reason.rawValue) suppressed)" : "")
            lastLogged[reason] = now
            suppressed[reason] = 0
        } else {
            suppressed[reason, default: 0] += 1
        }
        lock.unlock()
        if let line { logger.warning("\(line)", metadata: ["reason": "\(reason.rawValue)"]) }
    }

    public func count(_ reason: WireErrorReason) -> Int {
        lock.lock(); defer { lock.unlock() }
        return counts[reason] ?? 0
    }

    public var total: Int {
        lock.lock(); defer { lock.unlock() }
        return counts.values.reduce(0, +)
    }

    public func lastError(_ reason: WireErrorReason) -> WireError? {
        lock.lock(); defer { lock.unlock() }
        return lastErrors[reason]
    }

    /// Counts keyed by `WireErrorReason.rawValue`, for metrics files.
    public func snapshot() -> [String: Int] {
        lock.lock(); defer { lock.unlock() }
        return Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) })
    }
}
