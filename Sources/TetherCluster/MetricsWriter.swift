import Foundation
import TetherModel

/// A JSON value for the structured part of a metrics record (histograms, counts by reason).
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Compact JSON with sorted keys (stable lines, diffable runs); non-finite numbers become null.
    public var json: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .number(let d): return d.isFinite ? "\(d)" : "null"
        case .string(let s): return Self.quote(s)
        case .array(let items): return "[" + items.map(\.json).joined(separator: ",") + "]"
        case .object(let fields):
            return "{" + fields.sorted { $0.key < $1.key }.map { Self.quote($0.key) + ":" + $0.value.json }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String { jsonString(s) }
}

/// One learner step: flat scalars (also sent to TensorBoard under the same tags) plus structured
/// extras that only the JSONL line carries.
public struct MetricsRecord: Equatable, Sendable {
    public var step: Int
    public var wallTime: Double
    public var scalars: [String: Double]
    public var extras: [String: JSONValue]

    public init(step: Int, wallTime: Double = Date().timeIntervalSince1970,
                scalars: [String: Double] = [:], extras: [String: JSONValue] = [:]) {
        self.step = step
        self.wallTime = wallTime
        self.scalars = scalars
        self.extras = extras
    }

    /// Conventional scalar tags, shared by the learner, the progress line and the plots.
    public enum Key {
        public static let version = "version"
        public static let rewardMean = "reward/mean"
        public static let rewardStd = "reward/std"
        public static let accuracy = "accuracy"
        public static let kl = "kl"
        public static let entropy = "entropy"
        public static let clipFraction = "clip_fraction"
        public static let effectiveSampleSize = "ess"
        public static let actorTokensPerSecond = "actor/tokens_per_s"
        public static let learnerTokensPerSecond = "learner/tokens_per_s"
        public static let learnerIdleFraction = "learner/idle_fraction"
        public static let weightBroadcastLatency = "weights/broadcast_latency_s"
        public static let lagP50 = "lag/p50"
        public static let lagMax = "lag/max"
        public static let droppedTotal = "dropped/total"
        public static func dropped(_ reason: DropReason) -> String { "dropped/\(reason.rawValue)" }
    }

    /// Adds the staleness controller's view: version, lag quantiles and drops as scalars; the full
    /// sample-lag histogram and drops by reason as extras.
    public mutating func addStaleness(_ stats: StalenessStatistics) {
        scalars[Key.version] = Double(stats.version)
        if let p50 = stats.sampleLagQuantile(0.5) { scalars[Key.lagP50] = Double(p50) }
        if let max = stats.maxSampleLag { scalars[Key.lagMax] = Double(max) }
        let dropped = stats.droppedByReason
        for reason in DropReason.allCases { scalars[Key.dropped(reason)] = Double(dropped[reason, default: 0]) }
        scalars[Key.droppedTotal] = Double(dropped.values.reduce(0, +))
        extras["lag_histogram"] = .array(stats.sampleLagHistogram.map { .int($0) })
        extras["group_lag_histogram"] = .array(stats.groupLagHistogram.map { .int($0) })
        extras["dropped"] = .object(Dictionary(uniqueKeysWithValues: DropReason.allCases.map { ($0.rawValue, .int(dropped[$0, default: 0])) }))
    }

    /// `{"step":…,"wall_time":…,<scalars>…,<extras>…}` on one line.
    public var jsonLine: String {
        var fields: [String: JSONValue] = ["step": .int(step), "wall_time": .number(wallTime)]
        for (k, v) in scalars { fields[k] = .number(v) }
        for (k, v) in extras { fields[k] = v }
        return JSONValue.object(fields).json + "\n"
    }
}

/// Appends one JSON line per learner step to `metrics.jsonl` and the same scalars to a TensorBoard
/// event file. Owned by the learner thread.
public final class MetricsWriter {
    public let jsonlURL: URL
    public let tensorBoard: TensorBoardEventWriter
    private let jsonl: AppendOnlyFile

    public init(jsonlURL: URL, tensorBoardDirectory: URL) throws {
        self.jsonlURL = jsonlURL
        jsonl = try AppendOnlyFile(url: jsonlURL)
        tensorBoard = try TensorBoardEventWriter(directory: tensorBoardDirectory)
    }

    public convenience init(runDirectory: RunDirectory) throws {
        try self.init(jsonlURL: runDirectory.metricsURL, tensorBoardDirectory: runDirectory.tensorBoardDirectory)
    }

    public func write(_ record: MetricsRecord) throws {
        try jsonl.append(Data(record.jsonLine.utf8))
        try tensorBoard.write(scalars: record.scalars, step: record.step, wallTime: record.wallTime)
    }

    /// Makes everything written so far durable (at checkpoints).
    public func sync() throws {
        try jsonl.sync()
        try tensorBoard.sync()
    }
}
