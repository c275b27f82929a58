import Foundation
import TetherRewards
import TetherTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The reward-service protocol and pool against real worker processes: replies are checked before
/// they can become rewards, every kind of misbehaviour fails with its named reason, a failed
/// request is retried on a restarted worker, and the reference worker's SymPy reward answers
/// through the protocol.
final class RewardServiceTests: XCTestCase {
    func reply(_ text: String, count: Int = 2) -> Result<RewardServiceReply, RewardServiceFailure> {
        Result { try RewardServiceReply.parse(Data(text.utf8), id: 7, count: count) }.mapError { $0 as! RewardServiceFailure }
    }

    func testReplyIsCheckedBeforeItBecomesRewards() throws {
        let good = try reply(#"{"id": 7, "version": "v1", "results": [{"reward": 1.5, "components": {"b": 1, "a": 0.5}}, {"reward": -1}]}"#).get()
        XCTAssertEqual(good.version, "v1")
        XCTAssertEqual(good.rewards.map(\.reward), [1.5, -1])
        XCTAssertEqual(good.rewards[0].components.map(\.name), ["a", "b"])
        XCTAssertEqual(good.rewards[0]["b"], 1)
        XCTAssertEqual(good.rewards[1].components, [])

        let cases: [(String, String)] = [
            (#"{"id": 7, "version": "v", "results": [{"reward": NaN}, {"reward": 1}]}"#, "non_finite_reward"),
            (#"{"id": 7, "version": "v", "results": [{"reward": 1}, {"reward": -Infinity}]}"#, "non_finite_reward"),
            (#"{"id": 7, "version": "v", "results": [{"reward": 1e39}, {"reward": 1}]}"#, "non_finite_reward"),  // inf as Float
            (#"{"id": 7, "version": "v", "results": [{"reward": 1, "components": {"c": NaN}}, {"reward": 1}]}"#, "non_finite_reward"),
            (#"{"id": 7, "version": "v", "results": [{"reward": 1}]}"#, "wrong_count"),
            (#"{"id": 7, "version": "v", "results": [{"reward": 1}, {"reward": 1}, {"reward": 1}]}"#, "wrong_count"),
            (#"{"id": 8, "version": "v", "results": [{"reward": 1}, {"reward": 1}]}"#, "wrong_id"),
            (#"{"version": "v", "results": [{"reward": 1}, {"reward": 1}]}"#, "wrong_id"),
            (#"{"id": 7, "results": [{"reward": 1}, {"reward": 1}]}"#, "bad_reply"),
            (#"{"id": 7, "version": "v", "results": [{"reward": true}, {"reward": 1}]}"#, "bad_reply"),
            (#"{"id": 7, "version": "v", "results": [{"reward": "1"}, {"reward": 1}]}"#, "bad_reply"),
            (#"{"id": 7, "version": "v", "results": [{"components": {}}, {"reward": 1}]}"#, "bad_reply"),
            (#"{"id": 7, "version": "v"}"#, "bad_reply"),
            (#"{"id": 7, "error": "division by zero"}"#, "worker_error"),
            (#"{"id": 7, "version": "v", "results": [{"reward": 1}, {"reward": 1}"#, "bad_json"),
            (#"[1, 2]"#, "bad_json"),
            (#"{"id": 7, "version": "NaN", "results": [{"reward": 1}, {"reward": 1}]}"#, ""),  // NaN inside a string is text
        ]
        for (text, reason) in cases {
            switch reply(text) {
            case .success: XCTAssertEqual(reason, "", "accepted: \(text)")
            case .failure(let f): XCTAssertEqual(f.reason, reason, "\(text): \(f)")
            }
        }
    }

    func testHelloNamesTheProtocolAndVersion() throws {
        XCTAssertEqual(try RewardServiceReply.parseHello(Data(#"{"tether_reward_worker": 1, "version": "sha256:ab"}"#.utf8)), "sha256:ab")
        for bad in [#"{"version": "x"}"#, #"{"tether_reward_worker": 2, "version": "x"}"#, #"{"tether_reward_worker": 1}"#, "hello"] {
            XCTAssertThrowsError(try RewardServiceReply.parseHello(Data(bad.utf8))) { XCTAssertEqual(($0 as? RewardServiceFailure)?.reason, "bad_hello") }
        }
    }

    // MARK: The pool against real processes

    func fixture(_ plan: String, workers: Int = 1, attempts: Int, timeout: Double = 20) throws -> (RewardServicePool, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-rewardpool-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let pool = try RewardServicePool(options: RewardServiceOptions(
            command: try RewardWorkerFixture.install(in: dir), workers: workers, timeoutSeconds: timeout, startupTimeoutSeconds: 60,
            maxAttempts: attempts, environment: ["FIXTURE_DIR": dir.path, "FIXTURE_PLAN": plan]))
        addTeardownBlock { pool.stop() }
        return (pool, dir)
    }

    let group = (0..<4).map { RewardServiceSample(prompt: "1+1=", completion: "\($0)", answer: "2", metadata: ["prompt_id": "p"]) }

    /// Each kind of garbage fails its request with its own reason; with one attempt the group
    /// comes back unscored (no rewards at all, so nothing can be trained as zero).
    func testEachMisbehaviourIsRejectedByItsReason() throws {
        for (mode, reason) in [("nan", "non_finite_reward"), ("wrong_count", "wrong_count"), ("bad_json", "bad_json"),
                               ("hang", "timeout"), ("exit", "crashed"), ("error", "worker_error")] {
            let (pool, _) = try fixture("1=\(mode)", attempts: 1, timeout: 2)
            let started = Date()
            let r = try XCTUnwrap(pool.score([group]).first)
            XCTAssertLessThan(Date().timeIntervalSince(started), 15, mode)
            guard case .failure(let f) = r.result else { XCTFail("\(mode) was accepted"); continue }
            XCTAssertEqual(f.reason, reason, "\(mode): \(f)")
            XCTAssertEqual(r.failures.map(\.reason), [reason])
            pool.stop()
        }
    }

    /// A failed request kills its worker; the retry runs on a fresh process and succeeds.
    func testFailedRequestIsRetriedOnARestartedWorker() throws {
        let (pool, dir) = try fixture("1=nan,2=exit", attempts: 3)
        let r = try XCTUnwrap(pool.score([group]).first)
        let reply = try r.result.get()
        XCTAssertEqual(reply.rewards.map(\.reward), [1, 1, 1, 1])
        XCTAssertEqual(reply.version, "fixture-1")
        XCTAssertEqual(r.failures.map(\.reason), ["non_finite_reward", "crashed"])
        XCTAssertEqual(pool.starts, 3)
        XCTAssertEqual(RewardWorkerFixture.pids(in: dir).count, 3)
        // Attempts are bounded: a group failing every time is given up with its last reason.
        let (failing, _) = try fixture("1=nan,2=wrong_count", attempts: 2)
        let f = try XCTUnwrap(failing.score([group]).first)
        XCTAssertEqual(f.failures.map(\.reason), ["non_finite_reward", "wrong_count"])
        guard case .failure(let last) = f.result else { return XCTFail("accepted") }
        XCTAssertEqual(last.reason, "wrong_count")
    }

    /// Two workers score a batch's groups at once, each group in one request; a worker killed
    /// between batches is restarted and the next batch loses nothing.
    func testWorkersShareTheGroupsAndSurviveAKill() throws {
        let (pool, dir) = try fixture("", workers: 2, attempts: 2)
        let first = pool.score(Array(repeating: group, count: 6))
        XCTAssertEqual(first.compactMap { try? $0.result.get().rewards.count }, Array(repeating: 4, count: 6))
        let pids = RewardWorkerFixture.pids(in: dir)
        XCTAssertEqual(pids.count, 2, "both workers started")
        XCTAssertEqual(kill(pids[0], SIGKILL), 0)
        usleep(100_000)
        let second = pool.score(Array(repeating: group, count: 6))
        XCTAssertEqual(second.compactMap { try? $0.result.get().rewards.count }, Array(repeating: 4, count: 6))
        XCTAssertEqual(RewardWorkerFixture.pids(in: dir).count, 3, "the killed worker was restarted")
        XCTAssertGreaterThanOrEqual(second.reduce(0) { $0 + $1.failures.count }, 1)
    }

    /// The reference worker (scripts/rewards/worker.py) through the protocol: SymPy sees 1/2, 0.5
    /// and \frac{1}{2} as one answer; a format + length term rides along as components.
    func testReferenceWorkerScoresMathEquivalence() throws {
        try PeerPython.require(["sympy"])
        let worker = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/rewards/worker.py")
        let pool = try RewardServicePool(options: RewardServiceOptions(
            command: "\(PeerPython.name) \(worker.path) --reward math,format_length --weights format=0.5,length=1",
            workers: 1, timeoutSeconds: 60, startupTimeoutSeconds: 60, maxAttempts: 1))
        defer { pool.stop() }
        let completions = ["It is \\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "The answer is 1/2", "\\boxed{0.25}", "\\boxed{2/4}"]
        let samples = completions.map { RewardServiceSample(prompt: "What is half?", completion: $0, answer: "\\frac{1}{2}") }
        let reply = try XCTUnwrap(pool.score([samples]).first).result.get()
        XCTAssertEqual(reply.rewards.map { $0["correct"] }, [1, 1, 1, 0, 1])
        XCTAssertEqual(reply.rewards.map { $0["format"] }, [1, 1, 0, 1, 1])
        XCTAssertEqual(reply.rewards.map(\.reward), [1.5, 1.5, 1, 0.5, 1.5])
        XCTAssertTrue(reply.version.hasPrefix("sha256:"), reply.version)
    }

    /// As a `Verifier` (what evaluations score with): a reply becomes the sample's breakdown; a
    /// worker that fails every attempt is an error with its reason, never a zero.
    func testServiceVerifierFailsInsteadOfScoringZero() throws {
        let (pool, _) = try fixture("1=nan,2=nan", attempts: 2)
        let verifier = RewardServiceVerifier(pool: pool)
        let prompt = TaskPrompt(id: "p", task: "t", prompt: "1+1=", answer: "2")
        XCTAssertThrowsError(try verifier.score(completion: "2", for: prompt)) { e in
            XCTAssertEqual((e as? RewardServiceFailure)?.reason, "non_finite_reward", "\(e)")
        }
        let b = try verifier.score(completion: "2", for: prompt)
        XCTAssertEqual(b.reward, 1)
        XCTAssertEqual(b["one"], 1)
    }
}
