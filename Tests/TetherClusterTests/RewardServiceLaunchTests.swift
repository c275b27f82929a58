import Foundation
import TetherCluster
import TetherTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `tether launch` with `task.reward: service` on the toy model, the actors scoring through real
/// Python reward workers (`RewardWorkerFixture`: every sample scores exactly 1, so one sample
/// scored as zero would show in the step's reward mean). Each test bounded in time.
final class RewardServiceLaunchTests: XCTestCase {
    func launch(_ h: ClusterHarness, steps: Int, workers: Int, plan: String = "", extra: [String] = [],
                environment: [String: String] = [:]) throws -> (Process, URL) {
        let dir = h.root.appendingPathComponent("workers")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let command = try RewardWorkerFixture.install(in: dir)
        let config = try h.writeConfig(maxStaleness: 1, steps: steps)
        let p = try h.start("launch", executable: h.binary, [
            "launch", config.path, "--out", h.runDirectory.path, "--actors", "1",
            "--set", "task.reward=service", "--set", "task.reward_service.command=\(command)",
            "--set", "task.reward_service.workers=\(workers)", "--set", "task.reward_service.timeout_seconds=10",
            "--set", "rollout.prompts_per_ticket=2",
        ] + extra, environment: ["FIXTURE_DIR": dir.path, "FIXTURE_PLAN": plan].merging(environment) { $1 })
        return (p, dir)
    }

    func steps(_ h: ClusterHarness) -> [[String: Any]] { h.metrics().filter { $0["reward/mean"] != nil } }

    /// Two reward workers; one is SIGKILLed mid-run. The run finishes every step, every sample's
    /// reward is the worker's 1 (none became 0), no group was dropped or lost, and the metrics
    /// show the retry and the restarted worker.
    func testKilledRewardWorkerLosesNoGroupAndScoresNothingAsZero() throws {
        let h = try ClusterHarness("rewardkill")
        defer { h.cleanup() }
        let (launch, dir) = try launch(h, steps: 60, workers: 2)
        XCTAssertTrue(h.waitUntil(timeout: 90) { steps(h).count >= 3 && RewardWorkerFixture.pids(in: dir).count >= 2 }, h.allLogs())
        let victim = try XCTUnwrap(RewardWorkerFixture.pids(in: dir).first)
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        XCTAssertTrue(h.wait(launch, timeout: 180), h.allLogs())
        XCTAssertEqual(launch.terminationStatus, 0, h.log("launch"))
        let records = steps(h)
        XCTAssertEqual(records.count, 60)
        for r in records {
            XCTAssertEqual(r.double("reward/mean"), 1, "a sample was not scored by the worker: \(r)")
            XCTAssertEqual(r.double("reward/std"), 0)
        }
        let last = try XCTUnwrap(records.last)
        XCTAssertGreaterThanOrEqual(last.double("reward/retries") ?? 0, 1, "the killed worker's request was retried")
        XCTAssertGreaterThanOrEqual(RewardWorkerFixture.pids(in: dir).count, 3, "the killed worker was restarted")
        for (key, value) in last where key.hasPrefix("dropped/reward_") || key.hasPrefix("groups/lost/") {
            XCTAssertEqual((value as? NSNumber)?.doubleValue, 0, "\(key) in \(last)")
        }
        XCTAssertEqual(last["reward_version"] as? String, "fixture-1")
        XCTAssertEqual(last.double("reward/version_changes"), 0)
    }

    /// A worker that returns NaN, then the wrong number of results, on every attempt of a group:
    /// the group is dropped by that reason (counted in the metrics), its prompt re-issued, and the
    /// run trains only on rewards the worker really gave.
    func testNaNAndWrongCountAreDroppedByReasonAndReissued() throws {
        let h = try ClusterHarness("rewardgarbage")
        defer { h.cleanup() }
        let (launch, _) = try launch(h, steps: 8, workers: 1, plan: "3=nan,4=nan,9=wrong_count,10=wrong_count",
                                     extra: ["--set", "task.reward_service.max_attempts=2"])
        XCTAssertTrue(h.wait(launch, timeout: 180), h.allLogs())
        XCTAssertEqual(launch.terminationStatus, 0, h.log("launch"))
        let records = steps(h)
        XCTAssertEqual(records.count, 8)
        for r in records { XCTAssertEqual(r.double("reward/mean"), 1, "\(r)") }
        let last = try XCTUnwrap(records.last)
        XCTAssertEqual(last.double("dropped/reward_non_finite_reward"), 1, "\(last)")
        XCTAssertEqual(last.double("dropped/reward_wrong_count"), 1, "\(last)")
        XCTAssertEqual(last.double("reward/retries"), 4)
        XCTAssertGreaterThanOrEqual(last.double("groups/reissued") ?? 0, 2)
        let log = h.log("launch")
        XCTAssertTrue(log.contains("gave up on prompt"), log.suffix(3000).description)
        XCTAssertTrue(log.contains("non-finite reward"), log.suffix(3000).description)
    }

    /// Held-out evaluations score through a worker of the same command that the learner starts:
    /// every fixture sample scores 1, so accuracy is 100 % (the untrained toy's own answers would
    /// score ~0 by the built-in verifier). When the workers fail every attempt on an evaluation's
    /// samples, the evaluation is skipped with its reason and the run trains to the end.
    func testHeldOutEvaluationScoresThroughTheWorkers() throws {
        let evalKeys = ["--set", "run.eval_every_steps=2", "--set", "run.eval_prompts=4", "--set", "run.eval_samples=1"]
        for failing in [false, true] {
            let h = try ClusterHarness(failing ? "rewardevalfail" : "rewardeval")
            defer { h.cleanup() }
            let (launch, dir) = try launch(h, steps: 4, workers: 1, extra: evalKeys + ["--set", "task.reward_service.max_attempts=1"],
                                           environment: failing ? ["FIXTURE_EVAL": "nan"] : [:])
            XCTAssertTrue(h.wait(launch, timeout: 180), h.allLogs())
            XCTAssertEqual(launch.terminationStatus, 0, h.log("launch"))
            XCTAssertEqual(steps(h).count, 4)
            XCTAssertGreaterThanOrEqual(RewardWorkerFixture.pids(in: dir).count, 2, "the actor's worker and the learner's")
            let evaluations = h.metrics().filter { $0["eval/accuracy"] != nil }
            if failing {
                XCTAssertEqual(evaluations.count, 0, "\(evaluations)")
                let log = h.log("launch")
                XCTAssertTrue(log.contains("held-out evaluation at version 0 skipped") && log.contains("non_finite_reward"), log.suffix(3000).description)
            } else {
                XCTAssertEqual(evaluations.map { $0.double("version") }, [0, 2, 4])
                for e in evaluations {
                    XCTAssertEqual(e.double("eval/accuracy"), 1, "\(e)")
                    XCTAssertEqual(e.double("eval/sampled_accuracy"), 1, "\(e)")
                }
            }
        }
    }

    /// The worker's reward version changes mid-run: the learner logs the change, counts it, and
    /// reports the new version in the metrics; groups still in flight with the old one are not
    /// trained beside the new one.
    func testRewardVersionChangeIsLoggedAndCounted() throws {
        let h = try ClusterHarness("rewardversion")
        defer { h.cleanup() }
        // The 9th request (of the 5th step's tickets, two groups per ticket) and later say fixture-2.
        let (launch, _) = try launch(h, steps: 10, workers: 1, plan: "9=version:fixture-2")
        XCTAssertTrue(h.wait(launch, timeout: 180), h.allLogs())
        XCTAssertEqual(launch.terminationStatus, 0, h.log("launch"))
        let records = steps(h)
        XCTAssertEqual(records.count, 10)
        XCTAssertEqual(records.first?["reward_version"] as? String, "fixture-1")
        let last = try XCTUnwrap(records.last)
        XCTAssertEqual(last["reward_version"] as? String, "fixture-2")
        XCTAssertEqual(last.double("reward/version_changes"), 1)
        XCTAssertTrue(h.log("launch").contains("reward version changed"), h.log("launch").suffix(3000).description)
    }
}

/// The no-mixing rule without processes.
final class RewardVersionGateTests: XCTestCase {
    func testChangeRetiresTheOldVersionAndBatchesTrainOneVersion() {
        var gate = RewardVersionGate(allowMixed: false)
        XCTAssertEqual(gate.arrival(versions: ["a", "a"]), .changed(from: nil, to: "a"))
        XCTAssertEqual(gate.arrival(versions: ["a", "a"]), .accept)
        XCTAssertEqual(gate.changes, 0)
        XCTAssertEqual(gate.arrival(versions: ["b", "b"]), .changed(from: "a", to: "b"))
        XCTAssertEqual(gate.changes, 1)
        XCTAssertEqual(gate.current, "b")
        XCTAssertEqual(gate.arrival(versions: ["a", "a"]), .refuse("reward_version_retired"))
        XCTAssertEqual(gate.arrival(versions: ["b", "c"]), .refuse("reward_version_mixed_in_group"))
        // A batch admitted across the change trains its newest version's groups only.
        XCTAssertEqual(gate.trainable(["a", "b", "a", "b"]), [1, 3])
        XCTAssertEqual(gate.trainable(["a", "a"]), [0, 1], "a batch of one version trains whole")
        XCTAssertEqual(gate.trainable([]), [])
    }

    func testMixingAllowedStillCountsChanges() {
        var gate = RewardVersionGate(allowMixed: true)
        _ = gate.arrival(versions: ["a"])
        XCTAssertEqual(gate.arrival(versions: ["b"]), .changed(from: "a", to: "b"))
        XCTAssertEqual(gate.arrival(versions: ["a"]), .accept)
        XCTAssertEqual(gate.arrival(versions: ["a", "b"]), .accept)
        XCTAssertEqual(gate.changes, 1)
        XCTAssertEqual(gate.trainable(["a", "b"]), [0, 1])
    }
}
