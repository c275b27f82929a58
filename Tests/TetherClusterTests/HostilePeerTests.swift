import Foundation
import TetherCluster
import TetherTestSupport
import TetherWire
import XCTest

/// A live learner against hostile peers (scripts/hostile-peers.py), and the configuration that
/// binds identities and bounds what a peer may send.
final class HostilePeerTests: XCTestCase {
    /// Runs the hostile-peer suite against a CURVE-protected learner with two honest actors: every
    /// case (range crashers on live tickets, forged and oversized strings, malformed messages, a
    /// flood, hoarding, impersonation, handshake failures, a stalled weights subscriber) must be
    /// counted under its reason while the learner keeps training and then exits cleanly.
    func testHostilePeerSuiteAgainstALiveLearner() throws {
        try PeerPython.require(running: "import zmq, google.protobuf; assert zmq.has('curve')", "import pyzmq with CURVE and protobuf")
        let harness = try ClusterHarness("hostile-suite")  // finds the release binary
        defer { harness.cleanup() }
        let script = TetherBinary.packageRoot.appendingPathComponent("scripts/hostile-peers.py")
        let p = PeerPython.process([script.path, "--tether", harness.binary.path, "--timeout", "120"])
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        print(text)
        XCTAssertEqual(p.terminationStatus, 0, text)
        for reason in ["integer_out_of_range", "reward_out_of_range", "logprob_out_of_range", "version_from_future", "identity_mismatch",
                       "invalid_identifier", "text_too_long", "malformed_protobuf", "handshake_failures", "denied_connections"] {
            XCTAssertTrue(text.contains(reason), "the suite no longer covers \(reason)")
        }
    }

    /// With CURVE and only the shared `actor` key, the learner refuses to start unless the config
    /// says that key may act as any actor, and says which key to set.
    func testSharedActorKeyNeedsExplicitOptIn() throws {
        let h = try ClusterHarness("shared-key")
        defer { h.cleanup() }
        let keys = h.root.appendingPathComponent("keys").path
        try CurveKeyPair.generate().write(directory: keys, name: "learner")
        try CurveKeyPair.generate().write(directory: keys, name: "actor")
        let config = try h.writeConfig(maxStaleness: 1, steps: 1, extra: ["wire: {curve_keys_dir: \(keys)}"])
        let learner = try h.startLearner(config: config)
        XCTAssertTrue(h.wait(learner, timeout: 30), "the learner should refuse to start")
        XCTAssertNotEqual(learner.terminationStatus, 0)
        XCTAssertTrue(h.log("learner").contains("wire.shared_actor_key"), h.log("learner"))
    }

    func testPeerBoundsAreValidatedConfigKeys() throws {
        let defaults = try RunConfig.load(yaml: "")
        XCTAssertEqual(defaults.learner.maxAbsReward, 10_000)
        XCTAssertEqual(defaults.learner.minLogprob, -100)
        XCTAssertFalse(defaults.wire.sharedActorKey)
        for (override, key) in [("learner.max_abs_reward=1e39", "learner.max_abs_reward"), ("learner.max_abs_reward=0", "learner.max_abs_reward"),
                                ("learner.min_logprob=0", "learner.min_logprob"), ("learner.min_logprob=-1e39", "learner.min_logprob")] {
            XCTAssertThrowsError(try RunConfig.load(yaml: "", overrides: [override])) { e in
                XCTAssertTrue("\(e)".hasPrefix(key), "\(override): \(e)")
            }
        }
        XCTAssertTrue(try RunConfig.load(yaml: "", overrides: ["wire.shared_actor_key=true"]).wire.sharedActorKey)
    }
}
