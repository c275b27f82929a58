import Foundation

/// The one-line progress report `tether launch` prints per learner step, e.g.
///
///     step 12/200  v12  reward 0.412±0.108  correct 38.0%  format 91.0%  tok/s actor 1.2k learner 3.4k  lag p50 0 max 1 mkl 0.0021  dropped 3 (too_stale 2, lease_expired 1)
///
/// A pure function of a `MetricsRecord`, so what the terminal shows is what metrics.jsonl holds.
public enum ProgressLine {
    public static func format(_ record: MetricsRecord, totalSteps: Int) -> String {
        typealias K = MetricsRecord.Key
        let s = record.scalars
        var parts = ["step \(record.step)/\(totalSteps)"]
        parts.append("v" + (s[K.version].map { String(Int($0)) } ?? "–"))
        var reward = "reward " + number(s[K.rewardMean], digits: 3)
        if let std = s[K.rewardStd], std.isFinite { reward += "±" + String(format: "%.3f", std) }
        parts.append(reward)
        parts.append(contentsOf: rewardShares(s))
        parts.append("tok/s actor \(compact(s[K.actorTokensPerSecond])) learner \(compact(s[K.learnerTokensPerSecond]))")
        var lag = "lag p50 \(integer(s[K.lagP50])) max \(integer(s[K.lagMax]))"
        // What the lag does to the loss: the behaviour–current KL, and the tokens a rule dropped.
        if let k = s[K.mismatchKL], k.isFinite { lag += String(format: " mkl %.4f", k) }
        if let f = s[K.maskedFraction], f.isFinite, f > 0 { lag += String(format: " masked %.1f%%", f * 100) }
        parts.append(lag)
        let reasons = DropReason.allCases
            .compactMap { reason -> (String, Int)? in
                guard let n = s[K.dropped(reason)], n > 0 else { return nil }
                return (reason.rawValue, Int(n))
            }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        let total = s[K.droppedTotal].map { Int($0) } ?? reasons.reduce(0) { $0 + $1.1 }
        var dropped = "dropped \(total)"
        if !reasons.isEmpty { dropped += " (" + reasons.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ")" }
        parts.append(dropped)
        // Where the learner's time goes, when measured: waiting for data, and publishing weights.
        if let idle = s[K.learnerIdleFraction], idle.isFinite { parts.append(String(format: "idle %.2f", idle)) }
        if let b = s[K.weightBroadcastLatency], b.isFinite { parts.append(String(format: "bcast %.1fms", b * 1000)) }
        return parts.joined(separator: "  ")
    }

    /// `acc 38.0%`, or with the reward's components `correct 38.0%  format 91.0%` (and `len -0.12`
    /// when a length penalty bites): correctness and format apart, so format hacking is visible.
    public static func rewardShares(_ s: [String: Double]) -> [String] {
        typealias K = MetricsRecord.Key
        func percent(_ v: Double?) -> String { v.flatMap { $0.isFinite ? String(format: "%.1f%%", $0 * 100) : nil } ?? "–" }
        guard let correct = s[K.correctRate] else { return ["acc " + percent(s[K.accuracy])] }
        var parts = ["correct " + percent(correct)]
        if let f = s[K.formatRate] { parts.append("format " + percent(f)) }
        if let l = s[K.lengthPenalty], l.isFinite, l < 0 { parts.append(String(format: "len %.2f", l)) }
        return parts
    }

    /// The held-out part, from an evaluation's scalars: `held-out v20 greedy 62.5% T=1 41.3%`.
    public static func heldOut(_ scalars: [String: Double]) -> String {
        typealias K = MetricsRecord.Key
        func percent(_ v: Double?) -> String { v.flatMap { $0.isFinite ? String(format: "%.1f%%", $0 * 100) : nil } ?? "–" }
        var text = "held-out v\(integer(scalars[K.version])) greedy \(percent(scalars[K.evalAccuracy]))"
        if let sampled = scalars[K.evalSampledAccuracy] { text += " T=1 \(percent(sampled))" }
        return text
    }

    static func number(_ value: Double?, digits: Int) -> String {
        guard let value, value.isFinite else { return "–" }
        return String(format: "%.\(digits)f", value)
    }

    static func integer(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "–" }
        return String(Int(value.rounded()))
    }

    /// 950 → "950", 1234 → "1.2k", 2_500_000 → "2.5M".
    static func compact(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "–" }
        switch abs(value) {
        case ..<999.5: return String(format: "%.0f", value)
        case ..<999_950: return String(format: "%.1fk", value / 1e3)
        default: return String(format: "%.1fM", value / 1e6)
        }
    }
}
