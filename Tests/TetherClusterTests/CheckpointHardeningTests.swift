import Foundation
import TetherCluster
import TetherModel
import TetherRL
import XCTest

/// A learner checkpoint that would resume into nonsense is refused by name, both by
/// `tether checkpoint verify` (`verifyAll`) and by `tether learner --resume` (a real process, which
/// must exit with the reason before it serves anything): NaN weights, a finite bit flip, a
/// hand-edited impossible version, and a damaged metrics.jsonl.
final class CheckpointHardeningTests: XCTestCase {
    /// A run directory with one committed checkpoint (step 0), written by the learner's own code,
    /// for the harness's tiny config.
    func makeRun(_ h: ClusterHarness, poison: ((LlamaModel) -> Void)? = nil) throws -> (config: URL, run: RunDirectory) {
        let configURL = try h.writeConfig(maxStaleness: 1, steps: 8)
        let config = try RunConfig.load(contentsOf: configURL)
        let run = try RunDirectory(root: h.runDirectory)
        try run.writeResolvedConfig(config)
        let model = try LlamaModel(config: try config.policyArchitecture(), seed: 1, std: 0.02)
        poison?(model)
        let controller = try StalenessController(policy: config.stalenessPolicy)
        try RunCheckpoint.write(run: run, version: 0, model: model, optimizer: AdamW(parameterCount: model.parameters.count),
                                    controller: controller, config: config)
        return (configURL, run)
    }

    /// Starts `tether learner --resume` and expects it to fail within 60 s with `needle` on stderr.
    func expectResumeRefused(_ h: ClusterHarness, config: URL, _ needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try h.startLearner(config: config, resume: true)
        XCTAssertTrue(h.wait(p, timeout: 60), "the learner kept running on a bad checkpoint\n\(h.allLogs())", file: file, line: line)
        XCTAssertEqual(p.terminationReason, .exit, "trapped instead of a typed error\n\(h.allLogs())", file: file, line: line)
        XCTAssertNotEqual(p.terminationStatus, 0, file: file, line: line)
        XCTAssertTrue(h.log("learner").contains(needle), "expected '\(needle)' in\n\(h.log("learner"))", file: file, line: line)
    }

    func policyFile(_ run: RunDirectory) -> URL {
        run.checkpointDirectory(step: 0).appendingPathComponent("\(RunCheckpoint.policyDirectory)/model.safetensors")
    }

    /// Flipping the lowest mantissa bit of one weight keeps every weight finite and the file
    /// loadable, so only the stored CRC-32C can catch it.
    func testFiniteBitFlipIsCaughtByTheChecksumInVerifyAndOnResume() throws {
        let h = try ClusterHarness("bitflip")
        defer { h.cleanup() }
        let (config, run) = try makeRun(h)
        XCTAssertEqual(try RunCheckpoint.verifyAll(runDirectory: run.root).map(\.step), [0])
        let url = policyFile(run)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 8] ^= 0x01  // inside the last tensor's little-endian float32 data
        try bytes.write(to: url)
        let reloaded = try LlamaModel.load(from: url.deletingLastPathComponent().path).model
        XCTAssertTrue(reloaded.parameters.buffer.allSatisfy(\.isFinite), "the flip must leave a finite weight")
        XCTAssertThrowsError(try RunCheckpoint.verifyAll(runDirectory: run.root)) { e in
            XCTAssertTrue("\(e)".contains("policy/model.safetensors is corrupt: CRC-32C"), "\(e)")
        }
        try expectResumeRefused(h, config: config, "checkpoint step-0 is bad")
        XCTAssertTrue(h.log("learner").contains("model.safetensors is corrupt"), h.log("learner"))
    }

    /// NaN weights (a diverged update that got saved) are refused by resume, which used to train on
    /// nothing: every group was rejected for its NaN log-probs.
    func testResumeRefusesNaNWeights() throws {
        let h = try ClusterHarness("nanresume")
        defer { h.cleanup() }
        let (config, _) = try makeRun(h) { $0.parameters.buffer[17] = .nan }
        try expectResumeRefused(h, config: config, "policy weights hold NaN or infinity (parameter 17 is nan)")
    }

    /// cluster_state.json edited to version −5 (checksums rewritten, as a careful hand-edit would):
    /// a typed refusal, where the learner used to trap converting it to the wire's UInt64.
    func testHandEditedNegativeVersionIsRefusedNotATrap() throws {
        let h = try ClusterHarness("negversion")
        defer { h.cleanup() }
        let (config, run) = try makeRun(h)
        let dir = run.checkpointDirectory(step: 0)
        let stateURL = dir.appendingPathComponent(RunCheckpoint.clusterStateFile)
        var state = try JSONSerialization.jsonObject(with: Data(contentsOf: stateURL)) as! [String: Any]
        state["version"] = -5
        try JSONSerialization.data(withJSONObject: state).write(to: stateURL)
        try CheckpointChecksums.write(directory: dir)
        XCTAssertThrowsError(try RunCheckpoint.verifyAll(runDirectory: run.root)) { e in
            XCTAssertTrue("\(e)".contains("cluster_state.json: version is -5, must be ≥ 0"), "\(e)")
        }
        try expectResumeRefused(h, config: config, "version is -5, must be ≥ 0")

        // An integer beyond Int64 is a decoding error, also typed.
        let text = try String(contentsOf: stateURL, encoding: .utf8).replacingOccurrences(of: "\"version\":-5", with: "\"version\":18446744073709551616")
        try text.write(to: stateURL, atomically: true, encoding: .utf8)
        try CheckpointChecksums.write(directory: dir)
        XCTAssertThrowsError(try RunCheckpoint.verifyAll(runDirectory: run.root)) { e in
            XCTAssertTrue("\(e)".contains("cluster_state.json does not load"), "\(e)")
        }
    }

    /// A damaged line in the middle of metrics.jsonl stops the resume naming the line; a torn last
    /// line (what a crash leaves) is still cut silently.
    func testGarbageLineInTheMiddleOfMetricsIsNamedOnResume() throws {
        let h = try ClusterHarness("metricsgarbage")
        defer { h.cleanup() }
        let (config, run) = try makeRun(h)
        let good = MetricsRecord(step: 1, wallTime: 1, scalars: ["loss": 0.5]).jsonLine
        try Data((good + "\u{1B}[2Jnot json\n" + good + "{\"step\":3,\"lo").utf8).write(to: run.metricsURL)
        XCTAssertThrowsError(try MetricsWriter(runDirectory: run)) { e in
            XCTAssertEqual(e as? MetricsFileCorrupt, MetricsFileCorrupt(path: run.metricsURL.path, line: 2, excerpt: "\u{1B}[2Jnot json"))
            XCTAssertFalse("\(e)".contains("\u{1B}"), "the excerpt must not carry terminal escapes")
        }
        try expectResumeRefused(h, config: config, "metrics.jsonl:2: not a JSON metrics record")
    }
}
