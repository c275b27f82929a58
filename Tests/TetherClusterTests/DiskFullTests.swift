import Foundation
import TetherCluster
import TetherModel
import TetherRL
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What a full disk must not do to a run: lose metrics lines, glue a torn line onto the next one,
/// or leave a checkpoint that does not load. A real short write comes from the file-size limit
/// (RLIMIT_FSIZE makes write(2) stop part-way and then fail with EFBIG, as ENOSPC does); the end
/// to end version on a full tmpfs is `scripts/test-faults` (disk-full).
final class DiskFullTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tether-diskfull-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// Runs `body` with files limited to `bytes` (SIGXFSZ ignored so write(2) returns EFBIG).
    func withFileSizeLimit<T>(_ bytes: UInt, _ body: () throws -> T) rethrows -> T {
        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var small = saved
        small.rlim_cur = rlim_t(bytes)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        defer {
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
            signal(SIGXFSZ, previousHandler)
        }
        return try body()
    }

    func record(_ step: Int) -> MetricsRecord {
        MetricsRecord(step: step, wallTime: Double(step), scalars: ["loss": 0.5, "reward/mean": Double(step) / 10])
    }

    func steps(in url: URL) throws -> [Int] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return object["step"] as! Int
        }
    }

    func size(_ url: URL) throws -> Int { try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int }

    /// Lines that cannot be appended stay in memory, in order, and reach the file once space is
    /// back; the short write of a failed append is rolled back rather than left as a torn line.
    func testMetricsLinesSurviveAFullDiskAndAreWrittenInOrderLater() throws {
        let jsonl = directory.appendingPathComponent("metrics.jsonl")
        let writer = try MetricsWriter(jsonlURL: jsonl, tensorBoardDirectory: directory.appendingPathComponent("tb"))
        XCTAssertNil(try writer.write(record(1)))
        let before = try size(jsonl)
        try withFileSizeLimit(UInt(before + 10)) {
            let error = try writer.write(record(2))
            guard case .noSpace? = error as? DurableFileError else { return XCTFail("expected noSpace, got \(String(describing: error))") }
            XCTAssertNotNil(try writer.write(record(3)))
            XCTAssertEqual(writer.backlog, 2)
            XCTAssertGreaterThanOrEqual(writer.failedAppends, 2)
            XCTAssertEqual(try size(jsonl), before, "the short write of a failed append must be rolled back")
            XCTAssertThrowsError(try writer.sync(), "sync must not report success while lines are held in memory") { e in
                XCTAssertTrue("\(e)".contains("2 metrics record(s) not yet written"), "\(e)")
            }
        }
        XCTAssertNil(try writer.write(record(4)))
        XCTAssertEqual(writer.backlog, 0)
        try writer.sync()
        XCTAssertEqual(try steps(in: jsonl), [1, 2, 3, 4])
    }

    /// The backlog is bounded: past it the writer throws (the learner stops with the reason).
    func testMetricsBacklogPastItsBoundThrows() throws {
        let jsonl = directory.appendingPathComponent("metrics.jsonl")
        let writer = try MetricsWriter(jsonlURL: jsonl, tensorBoardDirectory: directory.appendingPathComponent("tb"), maxBacklog: 1)
        try withFileSizeLimit(UInt(try size(jsonl) + 10)) {
            XCTAssertNotNil(try writer.write(record(1)))
            XCTAssertThrowsError(try writer.write(record(2))) { e in XCTAssertTrue(e is MetricsNotWritten, "\(e)") }
        }
    }

    /// A crash can tear the last line; reopening (resume) cuts it so the next line starts clean.
    func testTornLastLineIsCutWhenTheRunIsReopened() throws {
        let jsonl = directory.appendingPathComponent("metrics.jsonl")
        try Data((record(1).jsonLine + "{\"step\":2,\"lo").utf8).write(to: jsonl)
        let writer = try MetricsWriter(jsonlURL: jsonl, tensorBoardDirectory: directory.appendingPathComponent("tb"))
        XCTAssertNil(try writer.write(record(2)))
        XCTAssertEqual(try steps(in: jsonl), [1, 2])
    }

    /// A checkpoint write that runs out of space throws `noSpace`, leaves no staging directory (its
    /// space is given back) and leaves `latest` on the previous checkpoint, which still loads; the
    /// next write, with space back, succeeds.
    func testCheckpointWriteThatRunsOutOfSpaceLeavesThePreviousCheckpointIntact() throws {
        let run = try RunDirectory(root: directory.appendingPathComponent("run"))
        var config = RunConfig()
        config.checkpoint.keep = 2
        let model = try LlamaModel(config: LlamaConfig(vocabSize: 64, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2,
                                                       intermediateSize: 64, maxPositionEmbeddings: 32), seed: 5)
        let optimizer = AdamW(parameterCount: model.parameters.count)
        let controller = try StalenessController(policy: StalenessPolicy(maxStaleness: 1, groupsPerBatch: 4))
        try RunCheckpoint.write(run: run, version: 0, model: model, optimizer: optimizer, controller: controller, config: config)
        let weights = run.checkpointDirectory(step: 0).appendingPathComponent("\(RunCheckpoint.policyDirectory)/model.safetensors")
        let thrown: Error? = withFileSizeLimit(UInt(try size(weights) / 2)) {
            do { try RunCheckpoint.write(run: run, version: 5, model: model, optimizer: optimizer, controller: controller, config: config) } catch { return error }
            return nil
        }
        guard case .noSpace? = thrown as? DurableFileError else { return XCTFail("expected noSpace, got \(String(describing: thrown))") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.checkpointsDirectory.path).filter { $0.hasPrefix(".") }, [],
                       "the failed write left its staging directory behind")
        XCTAssertEqual(try run.latestCheckpoint()?.step, 0)
        XCTAssertEqual(try RunCheckpoint.verifyAll(runDirectory: run.root).map(\.step), [0])
        try RunCheckpoint.write(run: run, version: 5, model: model, optimizer: optimizer, controller: controller, config: config)
        XCTAssertEqual(try run.latestCheckpoint()?.step, 5)
    }

    /// `tether checkpoint verify`: a good checkpoint passes; a truncated weights file and a
    /// staging directory left by a failed write are each named.
    func testCheckpointVerificationFindsTruncatedWeightsAndLeftoverStaging() throws {
        let run = try RunDirectory(root: directory.appendingPathComponent("run"))
        let model = try LlamaModel(config: LlamaConfig(vocabSize: 64, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                                                       intermediateSize: 32, maxPositionEmbeddings: 32), seed: 3)
        let staging = try run.beginCheckpoint(step: 0)
        let n = model.parameters.count
        try model.save(to: staging.appendingPathComponent(RunCheckpoint.policyDirectory).path,
                       trainerState: TrainerState(trainer: "tether-learner", step: 0),
                       optimizerState: OptimizerState(step: 0, firstMoment: Array(repeating: 0, count: n), secondMoment: Array(repeating: 0, count: n)))
        let controller = try StalenessController(policy: StalenessPolicy(maxStaleness: 1, groupsPerBatch: 4))
        try AtomicFile.write(JSONEncoder().encode(controller.snapshot()), to: staging.appendingPathComponent(RunCheckpoint.clusterStateFile))
        try CheckpointChecksums.write(directory: staging)
        try run.commitCheckpoint(step: 0, staging: staging)

        let verified = try RunCheckpoint.verifyAll(runDirectory: run.root)
        XCTAssertEqual(verified.map(\.step), [0])
        XCTAssertEqual(verified.first?.parameters, n)

        let leftover = try run.beginCheckpoint(step: 5)
        XCTAssertThrowsError(try RunCheckpoint.verifyAll(runDirectory: run.root)) { e in
            XCTAssertTrue("\(e)".contains("staging directory"), "\(e)")
        }
        try FileManager.default.removeItem(at: leftover)

        let weights = run.checkpointDirectory(step: 0).appendingPathComponent("\(RunCheckpoint.policyDirectory)/model.safetensors")
        let handle = try FileHandle(forWritingTo: weights)
        try handle.truncate(atOffset: UInt64(try size(weights) / 2))
        try handle.close()
        XCTAssertThrowsError(try RunCheckpoint.verifyAll(runDirectory: run.root)) { e in
            XCTAssertTrue("\(e)".contains("step-0") && "\(e)".contains("policy/model.safetensors is corrupt"), "\(e)")
        }
    }
}
