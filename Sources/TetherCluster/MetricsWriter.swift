import Foundation
import TetherModel
import TetherRL

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
        /// k3 estimate of KL(π_behav ‖ π_θ) over the trained tokens.
        public static let mismatchKL = "mismatch_kl"
        /// Fractions of tokens dropped or truncated by the behaviour-weight rule.
        public static let maskedFraction = "is/masked_fraction"
        public static let truncatedFraction = "is/truncated_fraction"
        public static let actorTokensPerSecond = "actor/tokens_per_s"
        public static let learnerTokensPerSecond = "learner/tokens_per_s"
        public static let learnerIdleFraction = "learner/idle_fraction"
        /// Wall seconds of one RL step: sampling, scoring and the update (`tether train`), or the
        /// learner's step between versions (cluster).
        public static let stepSeconds = "step_seconds"
        public static let weightBroadcastLatency = "weights/broadcast_latency_s"
        public static let lagP50 = "lag/p50"
        public static let lagMax = "lag/max"
        public static let droppedTotal = "dropped/total"
        /// Held-out accuracy (`PeriodicEvaluation`): greedy, and sampled at temperature 1.
        public static let evalAccuracy = "eval/accuracy"
        public static let evalSampledAccuracy = "eval/sampled_accuracy"
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

    /// Adds what `PolicyUpdate.step` did, under the tags every driver writes (the cluster learner,
    /// `tether train`): nil-valued quantities (no verifier, no reference, no critic) are left out.
    public mutating func addUpdate(_ m: PolicyUpdateMetrics) {
        scalars[Key.rewardMean] = m.rewardMean
        scalars[Key.rewardStd] = m.rewardStd
        if let a = m.accuracy { scalars[Key.accuracy] = a }
        if let kl = m.kl { scalars[Key.kl] = kl }
        scalars["approx_kl"] = m.approxKL
        scalars[Key.entropy] = m.entropy
        scalars[Key.clipFraction] = m.clipFraction
        scalars[Key.effectiveSampleSize] = m.effectiveSampleFraction
        scalars[Key.mismatchKL] = m.mismatchKL
        scalars[Key.maskedFraction] = m.maskedFraction
        scalars[Key.truncatedFraction] = m.truncatedFraction
        scalars["response_length"] = m.responseLength
        if let z = m.zeroAdvantageGroupFraction { scalars["zero_advantage_groups"] = z }
        scalars["loss"] = m.loss
        if let v = m.valueLoss { scalars["loss/value"] = v }
        scalars["grad_norm"] = m.gradientNorm
        scalars["learning_rate"] = m.learningRate
        scalars["optimizer_steps"] = Double(m.optimizerSteps)
        scalars[Key.learnerTokensPerSecond] = m.learnerTokensPerSecond
        scalars["learner/train_seconds"] = m.seconds
        scalars["learner/reference_seconds"] = m.referenceSeconds
        scalars["learner/forward_seconds"] = m.forwardSeconds
        scalars["learner/backward_seconds"] = m.backwardSeconds
        scalars["learner/optimizer_seconds"] = m.optimizerSeconds
        scalars["learner/reference_precomputed_fraction"] = Double(m.precomputedReferenceSamples) / Double(max(1, m.sequences))
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
///
/// A failed append (typically a full disk) does not lose the record and does not stop training:
/// the record stays in a backlog, in order, and every later `write`/`sync` retries it first, so
/// the file catches up as soon as space is back. Stopping instead would throw away all training
/// since the last checkpoint over a line of metrics, and with the disk full that checkpoint could
/// not be written either. The backlog is bounded (`maxBacklog` records): past it the disk is not
/// coming back and `write` throws, which stops the learner with the reason.
public final class MetricsWriter {
    public let jsonlURL: URL
    public let tensorBoard: TensorBoardEventWriter
    private let jsonl: AppendOnlyFile
    private var jsonlBacklog: [MetricsRecord] = []
    private var eventBacklog: [MetricsRecord] = []
    /// Appends that failed (each retry counts), for the `metrics/write_failures` scalar.
    public private(set) var failedAppends = 0
    public let maxBacklog: Int

    public init(jsonlURL: URL, tensorBoardDirectory: URL, maxBacklog: Int = 10_000) throws {
        self.jsonlURL = jsonlURL
        self.maxBacklog = maxBacklog
        jsonl = try AppendOnlyFile(url: jsonlURL)
        try jsonl.dropTornTail()  // a line torn by a crash would swallow the first line of a resumed run
        try MetricsWriter.checkRecords(in: jsonlURL)
        tensorBoard = try TensorBoardEventWriter(directory: tensorBoardDirectory)
    }

    public convenience init(runDirectory: RunDirectory) throws {
        try self.init(jsonlURL: runDirectory.metricsURL, tensorBoardDirectory: runDirectory.tensorBoardDirectory)
    }

    /// Every complete line must be a JSON object. A crash can only tear the last line (appends are
    /// sequential and that tail is cut above); a bad line further up means the file was edited or
    /// damaged. That is refused, naming the line, rather than cut: cutting there would also drop
    /// every valid step after it, and appending to it would hand a resumed run's readers (plots,
    /// sweep reports) a file they cannot parse. The fix is the user's: delete the line.
    static func checkRecords(in url: URL) throws {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            lineNumber += 1
            let line = data[start ..< end]
            if (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] == nil {
                throw MetricsFileCorrupt(path: url.path, line: lineNumber, excerpt: String(decoding: line.prefix(80), as: UTF8.self))
            }
            start = end < data.endIndex ? data.index(after: end) : end
        }
    }

    /// Records not yet on disk (the larger of the two sinks' backlogs).
    public var backlog: Int { max(jsonlBacklog.count, eventBacklog.count) }

    /// Appends the record after any backlog. Returns nil when everything is on disk, else the
    /// error that keeps `backlog` records in memory for the next attempt; throws
    /// `MetricsNotWritten` when the backlog would exceed `maxBacklog`.
    @discardableResult
    public func write(_ record: MetricsRecord) throws -> Error? {
        jsonlBacklog.append(record)
        eventBacklog.append(record)
        let error = flush()
        if let error, backlog > maxBacklog { throw MetricsNotWritten(records: backlog, path: jsonlURL.path, cause: error) }
        return error
    }

    /// Retries the backlog, then makes everything written durable (at checkpoints and at the end).
    /// Throws when records are still in memory, naming why, so a learner that ends cannot drop
    /// them silently.
    public func sync() throws {
        if let error = flush() { throw MetricsNotWritten(records: backlog, path: jsonlURL.path, cause: error) }
        try jsonl.sync()
        try tensorBoard.sync()
    }

    private func flush() -> Error? {
        var firstError: Error?
        while let r = jsonlBacklog.first {
            do { try jsonl.append(Data(r.jsonLine.utf8)) } catch { failedAppends += 1; firstError = error; break }
            jsonlBacklog.removeFirst()
        }
        while let r = eventBacklog.first {
            do { try tensorBoard.write(scalars: r.scalars, step: r.step, wallTime: r.wallTime) } catch {
                failedAppends += 1; firstError = firstError ?? error; break
            }
            eventBacklog.removeFirst()
        }
        return firstError
    }
}

/// Metrics records could not be written and are held in memory; says how many and why.
public struct MetricsNotWritten: Error, CustomStringConvertible {
    public var records: Int
    public var path: String
    public var cause: Error
    public var description: String { "\(records) metrics record(s) not yet written to \(path): \(cause)" }
}

/// A line of metrics.jsonl that is not a JSON record; names the line so it can be removed.
public struct MetricsFileCorrupt: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var excerpt: String
    public init(path: String, line: Int, excerpt: String) { self.path = path; self.line = line; self.excerpt = excerpt }
    public var description: String {
        "\(path):\(line): not a JSON metrics record ('\(excerpt.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : String($0) }.joined())'); "
            + "the file was edited or damaged (a crash only tears the last line). Delete that line and resume again"
    }
}
