import Foundation
import TetherCluster
import TetherModel
import TetherWire
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Real `tether learner` / `tether actor` processes on loopback sockets, tiny model, bounded time.
final class ClusterProcessTests: XCTestCase {
    /// Trained prompt ids over the whole run, and the per-sample lags of every trained sample.
    private func trained(_ lines: [[String: Any]]) -> (prompts: [Int], lags: [Int]) {
        (lines.flatMap { $0.ints("trained_prompts") }, lines.flatMap { $0.ints("sample_lags") })
    }

    @discardableResult
    private func runTwoActors(maxStaleness eta: Int, steps: Int, broadcastEvery: Int = 1) throws -> [[String: Any]] {
        let h = try ClusterHarness("eta\(eta)")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: eta, steps: steps)
        if broadcastEvery > 1 {
            let text = try String(contentsOf: config, encoding: .utf8)
            try text.replacingOccurrences(of: "learner:\n", with: "learner:\n  broadcast_every_steps: \(broadcastEvery)\n")
                .write(to: config, atomically: true, encoding: .utf8)
        }
        try runLearnerAndTwoActors(h, config: config)

        let lines = h.metrics()
        XCTAssertEqual(lines.count, steps, "one metrics line per learner step")
        XCTAssertEqual(lines.map { Int($0.double("version") ?? -1) }, Array(1...steps))
        let (prompts, lags) = trained(lines)
        XCTAssertEqual(lags.count, steps * 2 * 4, "every trained sample's lag is recorded (B = 2 groups of G = 4)")
        XCTAssertTrue(lags.allSatisfy { $0 >= 0 && $0 <= eta }, "lags \(lags) exceed η = \(eta)")
        if eta == 0 { XCTAssertEqual(Set(lags), [0], "η = 0 is synchronous on-policy") }
        XCTAssertEqual(Set(prompts).count, prompts.count, "a prompt was trained twice: \(prompts)")
        for line in lines {
            XCTAssertEqual(line.ints("lag_histogram").count, eta + 1)
            XCTAssertNotNil(line.double("reward/mean"))
            XCTAssertNotNil(line.double("learner/idle_fraction"))
        }
        // The learner waited for both actors before handing out tickets, and both exited on its stop.
        XCTAssertTrue(h.log("learner").contains("2 actor(s) joined"), h.log("learner"))
        XCTAssertTrue(h.log("actor-0").contains("learner says stop") && h.log("actor-1").contains("learner says stop"), h.allLogs())
        XCTAssertTrue(FileManager.default.fileExists(atPath: h.runDirectory.appendingPathComponent("checkpoints/latest").path))
        return lines
    }

    /// A learner and two actors on `config`, each expected to finish cleanly.
    private func runLearnerAndTwoActors(_ h: ClusterHarness, config: URL) throws {
        let learner = try h.startLearner(config: config)
        let a0 = try h.startActor("actor-0", config: config)
        let a1 = try h.startActor("actor-1", config: config)
        try h.expectCleanExit(learner, "learner", timeout: 90)
        try h.expectCleanExit(a0, "actor-0", timeout: 15)
        try h.expectCleanExit(a1, "actor-1", timeout: 15)
    }

    /// One run of the tiny config with `staleness` replaced (e.g. `mode: exact`) and `seed`.
    private func runTiny(_ name: String, staleness: String, seed: Int = 1, steps: Int) throws -> [[String: Any]] {
        let h = try ClusterHarness(name)
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 0, steps: steps)
        let text = try String(contentsOf: config, encoding: .utf8)
        try text.replacingOccurrences(of: "staleness: {max_staleness: 0, off_policy_correction: decoupled}", with: "staleness: {\(staleness)}")
            .replacingOccurrences(of: "seed: 1,", with: "seed: \(seed),")
            .write(to: config, atomically: true, encoding: .utf8)
        try runLearnerAndTwoActors(h, config: config)
        let lines = h.metrics()
        XCTAssertEqual(lines.count, steps, "one metrics line per learner step")
        return lines
    }

    /// Exact mode, k = 2, two real actors: the batch of version v holds samples of version
    /// max(0, v − 2) only, so the trained lags are 0, 1, then 2 at every later step; nothing is
    /// trained twice; the survivorship metrics are written.
    func testExactModeTrainsEverySampleAtLagK() throws {
        let k = 2, steps = 7
        let lines = try runTiny("exact", staleness: "max_staleness: \(k), mode: exact, off_policy_correction: decoupled", steps: steps)
        for (i, line) in lines.enumerated() {
            let lags = line.ints("sample_lags")
            XCTAssertEqual(lags.count, 2 * 4)
            XCTAssertEqual(Set(lags), [min(k, i)], "step \(i + 1) (version \(i)) trained lags \(lags)")
            for key in ["survivorship/generated_groups", "survivorship/trained_length", "survivorship/trained_reward"] {
                XCTAssertNotNil(line.double(key), "\(key) missing at step \(i + 1)")
            }
            XCTAssertEqual(line.double("survivorship/trained_groups"), 2)
        }
        let (prompts, _) = trained(lines)
        XCTAssertEqual(Set(prompts).count, prompts.count, "a prompt was trained twice: \(prompts)")
        XCTAssertEqual(prompts.count, steps * 2)
    }

    /// Paired seeds: with the same seed, two cells that differ only in the correction (η = 0,
    /// exact: both on-policy) start from the same weights, draw the same prompts and sample them with
    /// the same random streams, so their first batches are the same samples: the same prompts, the
    /// same mean reward and length. A different seed draws other prompts (the check can fail).
    func testSameSeedGivesEveryCellTheSamePromptsAndSamples() throws {
        let none = try runTiny("pair-none", staleness: "max_staleness: 0, mode: exact, off_policy_correction: none", steps: 2)
        let decoupled = try runTiny("pair-decoupled", staleness: "max_staleness: 0, mode: exact, off_policy_correction: decoupled", steps: 2)
        let other = try runTiny("pair-seed", staleness: "max_staleness: 0, mode: exact, off_policy_correction: none", seed: 2, steps: 2)
        let (a, b, c) = (none[0], decoupled[0], other[0])
        XCTAssertEqual(Set(a.ints("trained_prompts")), Set(b.ints("trained_prompts")))
        // Equal up to the order of a float sum (the two actors' groups may arrive in either order).
        for key in ["reward/mean", "entropy", "survivorship/trained_length", "survivorship/trained_reward"] {
            let (x, y) = (try XCTUnwrap(a.double(key), key), try XCTUnwrap(b.double(key), key))
            XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(x)), "\(key): the same seed sampled differently in two cells")
        }
        // Seeds 1 and 2 draw different prompts for the draw indices 0 and 1 (a different permutation).
        XCTAssertEqual(Set(c.ints("trained_prompts")), Set(a.ints("trained_prompts")), "prompt ids are draw indices")
        // The tiny random model is near-uniform, so other samples move its entropy only slightly, but
        // far more than the same seed's float-order noise.
        let sameSeed = abs((a.double("entropy") ?? 0) - (b.double("entropy") ?? 0))
        let otherSeed = abs((a.double("entropy") ?? 0) - (c.double("entropy") ?? 0))
        XCTAssertGreaterThan(otherSeed, max(10 * sameSeed, 1e-7), "seeds 1 and 2 sampled identical batches")
    }

    func testSynchronousOnPolicyWithTwoActors() throws {
        try runTwoActors(maxStaleness: 0, steps: 4)
    }

    func testStalenessTwoWithTwoActors() throws {
        try runTwoActors(maxStaleness: 2, steps: 6)
    }

    /// Weights broadcast every 3 versions only: actors whose weights are too old for a ticket fetch
    /// the current ones, so η = 1 still holds, and only broadcast versions are acknowledged.
    func testBroadcastEveryThirdVersionKeepsTheStalenessLimit() throws {
        let lines = try runTwoActors(maxStaleness: 1, steps: 6, broadcastEvery: 3)
        let acknowledged = Set(lines.compactMap { $0.double("weights/latency_version").map(Int.init) })
        XCTAssertFalse(acknowledged.isEmpty)
        XCTAssertTrue(acknowledged.isSubset(of: [0, 3, 6]), "acknowledged versions \(acknowledged) include one never broadcast")
    }

    /// `kill -9` of an actor that holds a ticket: the learner notices the silence, re-issues the
    /// ticket's prompts to the other actor, and the run finishes with nothing trained twice.
    func testKilledActorTicketIsReissued() throws {
        let h = try ClusterHarness("kill-actor")
        defer { h.cleanup() }
        let steps = 8
        let config = try h.writeConfig(maxStaleness: 1, steps: steps)
        let learner = try h.startLearner(config: config)
        // 0.3 s per group keeps the run long enough (several seconds) to kill an actor mid-run.
        let fast = try h.startActor("actor-0", config: config, extra: ["--simulate-slow-seconds", "0.3"])
        // A slow actor (3 s per group) nearly always holds a ticket when it is killed.
        let slow = try h.startActor("actor-1", config: config, extra: ["--simulate-slow-seconds", "3"])
        XCTAssertTrue(h.waitUntil(timeout: 30) { h.log("learner").contains("actor actor-1 joined") && h.metrics().count >= 1 }, h.allLogs())
        Thread.sleep(forTimeInterval: 0.5)
        h.kill9(slow)
        try h.expectCleanExit(learner, "learner (after the actor was killed)", timeout: 90)
        try h.expectCleanExit(fast, "actor-0", timeout: 15)

        let lines = h.metrics()
        XCTAssertEqual(lines.count, steps)
        let last = try XCTUnwrap(lines.last)
        XCTAssertGreaterThanOrEqual(last.double("dropped/actor_left") ?? 0, 1, "the killed actor's ticket was not declared lost\n\(h.log("learner"))")
        XCTAssertGreaterThanOrEqual(last.double("groups/reissued") ?? 0, 1, "the lost ticket was not re-issued")
        let (prompts, lags) = trained(lines)
        XCTAssertEqual(Set(prompts).count, prompts.count, "a prompt was trained twice: \(prompts)")
        XCTAssertTrue(lags.allSatisfy { $0 <= 1 })
        // The lost prompts went back to the queue ahead of fresh ones, so they were trained.
        let reissued = h.log("learner").components(separatedBy: "\n").filter { $0.contains("go back to the queue") }
        XCTAssertFalse(reissued.isEmpty)
        for line in reissued {
            guard let open = line.range(of: "prompts ["), let close = line.range(of: "]", range: open.upperBound ..< line.endIndex) else { continue }
            let ids = line[open.upperBound ..< close.lowerBound].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            for id in ids { XCTAssertTrue(prompts.contains(id), "re-issued prompt \(id) was never trained") }
        }
    }

    /// SIGTERM to an actor: it exits cleanly and says goodbye, so the learner forgets it at once
    /// (not after the 60 s heartbeat timeout), is not fooled into a re-join by a late heartbeat,
    /// and finishes the run with the remaining actor.
    func testActorLeavingOnSIGTERMIsForgottenAtOnce() throws {
        let h = try ClusterHarness("leave")
        defer { h.cleanup() }
        let steps = 8
        let config = try h.writeConfig(maxStaleness: 1, steps: steps, heartbeatTimeout: 60)
        let learner = try h.startLearner(config: config)
        let stays = try h.startActor("actor-0", config: config, extra: ["--simulate-slow-seconds", "0.3"])
        let leaves = try h.startActor("actor-1", config: config, extra: ["--simulate-slow-seconds", "0.5"])
        XCTAssertTrue(h.waitUntil(timeout: 30) { h.log("learner").contains("actor actor-1 joined") && h.metrics().count >= 1 }, h.allLogs())
        kill(leaves.processIdentifier, SIGTERM)
        try h.expectCleanExit(leaves, "actor-1 (SIGTERM)", timeout: 10)
        XCTAssertTrue(h.waitUntil(timeout: 5) { h.log("learner").contains("actor actor-1 left") },
                      "the learner did not hear the goodbye within 5 s\n\(h.allLogs())")
        try h.expectCleanExit(learner, "learner (after an actor left)", timeout: 90)
        try h.expectCleanExit(stays, "actor-0", timeout: 15)

        let log = h.log("learner")
        XCTAssertEqual(log.components(separatedBy: "actor actor-1 joined").count - 1, 1, "a heartbeat after the goodbye re-joined the actor\n\(log)")
        XCTAssertFalse(log.contains("actor-1 silent"), "the learner waited for the heartbeat timeout\n\(log)")
        let lines = h.metrics()
        XCTAssertEqual(lines.count, steps)
        let prompts = trained(lines).prompts
        XCTAssertEqual(Set(prompts).count, prompts.count, "a prompt was trained twice: \(prompts)")
    }

    /// The learner is killed after a checkpoint and resumed from it: version and optimizer step
    /// continue, and the running actors reconnect by themselves.
    func testLearnerResumesFromCheckpointAndActorsReconnect() throws {
        let h = try ClusterHarness("resume")
        defer { h.cleanup() }
        let steps = 8
        let config = try h.writeConfig(maxStaleness: 1, steps: steps)
        let learner = try h.startLearner(config: config)
        let a0 = try h.startActor("actor-0", config: config, extra: ["--simulate-slow-seconds", "0.4"])
        let a1 = try h.startActor("actor-1", config: config, extra: ["--simulate-slow-seconds", "0.4"])
        let latest = h.runDirectory.appendingPathComponent("checkpoints/latest")
        XCTAssertTrue(h.waitUntil(timeout: 60) { FileManager.default.fileExists(atPath: latest.path) && h.metrics().count >= 3 }, h.allLogs())
        h.kill9(learner)
        let pointer = try String(contentsOf: latest, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let checkpointStep = try XCTUnwrap(Int(pointer.dropFirst("step-".count)))
        XCTAssertTrue(a0.isRunning && a1.isRunning)

        let resumed = try h.startLearner(config: config, resume: true)
        try h.expectCleanExit(resumed, "resumed learner", timeout: 90)
        try h.expectCleanExit(a0, "actor-0 (after the learner restart)", timeout: 15)
        try h.expectCleanExit(a1, "actor-1 (after the learner restart)", timeout: 15)
        XCTAssertTrue(h.log("actor-0").contains("re-joining") || h.log("actor-0").contains("learner restarted"), h.log("actor-0"))

        let lines = h.metrics()
        let incarnations = lines.map { Int($0.double("incarnation") ?? 0) }
        let second = try XCTUnwrap(incarnations.last)
        let after = lines.filter { Int($0.double("incarnation") ?? 0) == second }
        XCTAssertNotEqual(incarnations.first, second, "the resumed learner is a new incarnation")
        XCTAssertEqual(after.map { $0["step"] as? Int ?? -1 }, Array((checkpointStep + 1)...steps), "versions continue from the checkpoint")
        let final = try LlamaCheckpoint.read(from: h.runDirectory.appendingPathComponent("checkpoints/step-\(steps)/policy").path)
        XCTAssertEqual(final.optimizerState?.step, steps, "one AdamW step per version across the restart")
        XCTAssertEqual(final.trainerState?.policyVersion, steps)
        // Groups trained after the restart were not trained before the checkpoint.
        let before = lines.filter { Int($0.double("incarnation") ?? 0) != second && ($0["step"] as? Int ?? 0) <= checkpointStep }
        let early = Set(trained(before).prompts), late = trained(after).prompts
        XCTAssertTrue(early.isDisjoint(with: late), "prompts trained both before the checkpoint and after resuming")
        XCTAssertEqual(Set(late).count, late.count)
    }

    /// Garbage on the learner's control and trajectory ports is counted and dropped; the run goes on.
    func testHostilePeerIsCountedAndIgnored() throws {
        let h = try ClusterHarness("hostile")
        defer { h.cleanup() }
        let steps = 3
        let config = try h.writeConfig(maxStaleness: 1, steps: steps)
        let loaded = try RunConfig.load(contentsOf: config)
        let learner = try h.startLearner(config: config)
        XCTAssertTrue(h.waitUntil(timeout: 30) { h.log("learner").contains("serving") }, h.allLogs())

        let context = try WireContext()
        defer { context.close() }
        let dealer = try WireSocket(context: context, options: WireSocketOptions(kind: .dealer, connect: [loaded.learner.controlEndpoint], name: "hostile.dealer"))
        let push = try WireSocket(context: context, options: WireSocketOptions(kind: .push, connect: [loaded.learner.trajectoryEndpoint], name: "hostile.push"))
        for i in 0..<20 {
            try dealer.sendRaw([Array("not a protobuf \(i)".utf8) + [0xff, 0xfe, 0x00]])
            try push.sendRaw([[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, UInt8(i)]])
        }
        // Well-formed but hostile: a group for a ticket nobody issued, from an actor nobody knows.
        let fake = TrajectoryGroup(ticketId: 12345, actorId: "mallory", promptId: "0", promptTokens: [1, 2],
                                   samples: [TrajectorySample(completionTokens: [3], behaviourLogProbs: [-0.1], tokenVersions: [0], reward: 1)])
        try push.send(.trajectoryGroup(fake), timeout: 5)
        // Raw bytes that are not even ZMTP.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(Int(loaded.learner.controlEndpoint.split(separator: ":").last!)!).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let junk = [UInt8](repeating: 0xAB, count: 4096)
        _ = junk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        Thread.sleep(forTimeInterval: 0.5)

        let a0 = try h.startActor("actor-0", config: config)
        let a1 = try h.startActor("actor-1", config: config)
        try h.expectCleanExit(learner, "learner", timeout: 90)
        try h.expectCleanExit(a0, "actor-0", timeout: 15)
        try h.expectCleanExit(a1, "actor-1", timeout: 15)
        let lines = h.metrics()
        XCTAssertEqual(lines.count, steps)
        let last = try XCTUnwrap(lines.last)
        XCTAssertGreaterThanOrEqual(last.double("wire/errors_total") ?? 0, 20, "malformed messages were not counted: \(last)")
        XCTAssertGreaterThanOrEqual(last.double("dropped/earlier_learner") ?? 0, 1, "the forged group was not dropped")
    }

    /// With `wire.curve_keys_dir` set the sockets are CURVE-encrypted: an actor with the allowed key
    /// is served, a peer with another key is refused by the ZAP handler and never reaches the learner.
    func testCurveKeysServeOnlyAllowedActors() throws {
        let h = try ClusterHarness("curve")
        defer { h.cleanup() }
        let keys = h.root.appendingPathComponent("keys").path
        let learnerKeys = try CurveKeyPair.generate()
        try learnerKeys.write(directory: keys, name: "learner")
        try CurveKeyPair.generate().write(directory: keys, name: "actor")
        let steps = 2
        let config = try h.writeConfig(maxStaleness: 1, steps: steps, extra: ["wire: {curve_keys_dir: \(keys), shared_actor_key: true}"])
        let loaded = try RunConfig.load(contentsOf: config)
        XCTAssertEqual(loaded.wire.curveKeysDir, keys)
        let learner = try h.startLearner(config: config)
        XCTAssertTrue(h.waitUntil(timeout: 30) { h.log("learner").contains("serving") }, h.allLogs())

        // A stranger with its own key pair knows the server key but is not on the allow-list.
        let context = try WireContext()
        defer { context.close() }
        var o = WireSocketOptions(kind: .dealer, connect: [loaded.learner.controlEndpoint], name: "stranger")
        o.security = .curveClient(try CurveKeyPair.generate(), serverPublicKey: learnerKeys.publicKey)
        let stranger = try WireSocket(context: context, options: o)
        try stranger.send(.actorJoin(ActorJoin(actorId: "stranger")), timeout: 5)
        try stranger.send(.ticketRequest(TicketRequest(actorId: "stranger", count: 1)), timeout: 5)

        let a0 = try h.startActor("actor-0", config: config)
        let a1 = try h.startActor("actor-1", config: config)
        try h.expectCleanExit(learner, "learner", timeout: 60)
        try h.expectCleanExit(a0, "actor-0", timeout: 15)
        try h.expectCleanExit(a1, "actor-1", timeout: 15)
        XCTAssertEqual(h.metrics().count, steps)
        XCTAssertGreaterThanOrEqual(h.metrics().last?.double("wire/denied_connections") ?? 0, 1, "the ZAP handler did not refuse the stranger")
        XCTAssertFalse(h.log("learner").contains("actor stranger joined"), "a peer outside the allow-list was served")
        XCTAssertNil(stranger.receive(timeout: 0.2), "the stranger received a reply")
    }
}
