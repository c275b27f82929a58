import Foundation
import TetherModel
import TetherCluster
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class RunDirectoryTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tether-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func read(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    func testAtomicWriteReplacesWholeFileAndLeavesNoTemporaries() throws {
        let url = directory.appendingPathComponent("state.json")
        try AtomicFile.write("first", to: url)
        try AtomicFile.write("second, longer", to: url)
        XCTAssertEqual(try read(url), "second, longer")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["state.json"])
    }

    /// A write killed mid-way leaves only its temporary file: the visible file keeps the old
    /// contents, the next write succeeds, and reopening the run removes the leftover.
    func testInterruptedWriteNeverCorruptsTheVisibleFile() throws {
        let run = try RunDirectory(root: directory)
        try AtomicFile.write("step-1\n", to: run.latestPointerURL)
        try FileManager.default.createDirectory(at: run.checkpointDirectory(step: 1), withIntermediateDirectories: true)
        let leftover = run.checkpointsDirectory.appendingPathComponent(".latest.tmp-4242-7")
        try Data("step-9".utf8).write(to: leftover)  // a torn write of a newer pointer
        XCTAssertEqual(try run.latestCheckpoint()?.step, 1)
        XCTAssertEqual(try read(run.latestPointerURL), "step-1\n")

        _ = try RunDirectory(root: directory)  // reopening (resume) cleans up
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover.path))
        XCTAssertEqual(try run.latestCheckpoint()?.step, 1)
    }

    /// A real interrupted write: the file-size limit makes write(2) fail half-way (EFBIG, as a full
    /// disk gives ENOSPC). The error says so, the old file is intact, and no temporary remains.
    func testWriteFailingHalfWayReportsNoSpaceAndKeepsTheOldFile() throws {
        let url = directory.appendingPathComponent("config.yaml")
        try AtomicFile.write("old contents\n", to: url)
        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var small = saved
        small.rlim_cur = 4096
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        var thrown: Error?
        do { try AtomicFile.write(Data(repeating: 0x41, count: 1 << 20), to: url) } catch { thrown = error }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)

        guard case .noSpace(let path)? = thrown as? DurableFileError else { return XCTFail("expected noSpace, got \(String(describing: thrown))") }
        XCTAssertTrue(path.contains("config.yaml"), path)
        XCTAssertTrue((thrown as! DurableFileError).description.contains("no space left"))
        XCTAssertEqual(try read(url), "old contents\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["config.yaml"])
    }

    /// The streaming write publishes only what its closure finished: a closure that throws after
    /// writing part of the file leaves the old contents and no temporary.
    func testStreamingWriteThatThrowsKeepsTheOldFile() throws {
        struct Interrupted: Error {}
        let url = directory.appendingPathComponent("weights.bin")
        try AtomicFile.write(to: url) { fd, path in try AtomicFile.writeAll(Data("old".utf8), to: fd, path: path) }
        XCTAssertThrowsError(try AtomicFile.write(to: url) { fd, path in
            try AtomicFile.writeAll(Data("partial new".utf8), to: fd, path: path)
            throw Interrupted()
        }) { XCTAssertTrue($0 is Interrupted, "\($0)") }
        XCTAssertEqual(try read(url), "old")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["weights.bin"])
    }

    func testUnwritableDirectoryIsAClearError() throws {
        let file = directory.appendingPathComponent("not-a-dir")
        try AtomicFile.write("x", to: file)
        XCTAssertThrowsError(try AtomicFile.write("y", to: file.appendingPathComponent("inner.txt"))) { error in
            guard case .notWritable(let path, _)? = error as? DurableFileError else { return XCTFail("\(error)") }
            XCTAssertTrue(path.contains("not-a-dir"))
        }
        XCTAssertThrowsError(try RunDirectory(root: file.appendingPathComponent("run"))) { error in
            guard case .notWritable? = error as? DurableFileError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try AppendOnlyFile(url: file.appendingPathComponent("metrics.jsonl")))
    }

    func testCheckpointCommitLatestPointerAndPruning() throws {
        var config = RunConfig.defaults
        config.run.outDir = directory.path
        config.run.name = "demo"
        config.staleness.maxStaleness = 3
        let run = try RunDirectory.create(for: config)
        XCTAssertEqual(run.root.path, directory.appendingPathComponent("demo").path)
        // The resolved config is written in full and loads back to the same values.
        XCTAssertEqual(try RunConfig.load(contentsOf: run.configURL), config)
        XCTAssertNil(try run.latestCheckpoint())

        for step in [10, 20, 30, 40] {
            let staging = try run.beginCheckpoint(step: step)
            try AtomicFile.write("{\"step\": \(step)}", to: staging.appendingPathComponent("trainer_state.json"))
            XCTAssertEqual(try run.checkpointSteps().last, step == 10 ? nil : step - 10, "staging is invisible")
            try run.commitCheckpoint(step: step, staging: staging)
            XCTAssertEqual(try run.latestCheckpoint()?.step, step)
        }
        XCTAssertEqual(try read(run.checkpointDirectory(step: 40).appendingPathComponent("trainer_state.json")), "{\"step\": 40}")
        XCTAssertThrowsError(try run.commitCheckpoint(step: 40, staging: try run.beginCheckpoint(step: 40)))
        XCTAssertEqual(try run.pruneCheckpoints(keep: 2), [10, 20])
        XCTAssertEqual(try run.checkpointSteps(), [30, 40])

        try AtomicFile.write("garbage", to: run.latestPointerURL)
        XCTAssertThrowsError(try run.latestCheckpoint()) { error in
            XCTAssertEqual(error as? RunDirectoryError, .corruptLatestPointer(path: run.latestPointerURL.path, contents: "garbage"))
        }
        try AtomicFile.write("step-99\n", to: run.latestPointerURL)
        XCTAssertThrowsError(try run.latestCheckpoint()) { error in
            guard case .missingCheckpoint? = error as? RunDirectoryError else { return XCTFail("\(error)") }
        }
    }

    func testMetricsWriterInRunDirectory() throws {
        let run = try RunDirectory(root: directory)
        let writer = try MetricsWriter(runDirectory: run)
        try writer.write(MetricsRecord(step: 1, scalars: ["accuracy": 0.5]))
        try writer.sync()
        XCTAssertEqual(try read(run.metricsURL).split(separator: "\n").count, 1)
        let events = try FileManager.default.contentsOfDirectory(atPath: run.tensorBoardDirectory.path)
        XCTAssertEqual(events.count, 1)
        XCTAssertTrue(events[0].hasPrefix("events.out.tfevents."))
    }
}
