import Foundation
import TetherCluster
import TetherModel
import TetherRL
import TetherRewards
import TetherTestSupport
import TetherWire
import XCTest

/// The `task:` keys that pick the answer format and weigh the reward, as the cluster uses them:
/// range checks, the reward components the actor scores and the learner logs, and the JSONL
/// contract errors.
final class TaskRewardConfigTests: XCTestCase {
    func loadError(_ yaml: String) -> ConfigError? {
        do { _ = try RunConfig.load(yaml: yaml); return nil } catch { return error as? ConfigError }
    }

    func testRewardKeysAreRangeChecked() throws {
        XCTAssertEqual(try RunConfig.load(yaml: "task:\n  extract: boxed\n  format_weight: 0.1\n").task.extract, .boxed)
        for (yaml, path) in [("task:\n  format_weight: -0.1\n", "task.format_weight"), ("task:\n  correct_weight: .nan\n", "task.correct_weight"),
                             ("task:\n  length_weight: 1e9\n", "task.length_weight"), ("task:\n  length_max_chars: 0\n", "task.length_max_chars"),
                             ("task:\n  length_max_chars: 10\n  length_ramp_chars: 11\n", "task.length_ramp_chars")] {
            guard case .invalidValue(let p, _)? = loadError(yaml) else { return XCTFail("\(yaml): \(String(describing: loadError(yaml)))") }
            XCTAssertEqual(p, path, yaml)
        }
        guard case .invalidValue("task.extract", let reason)? = loadError("task:\n  extract: box\n") else { return XCTFail() }
        XCTAssertTrue(reason.contains("last-integer") && reason.contains("boxed"), reason)
    }

    /// The cluster scores every sample on all three components, and the learner's step record and
    /// progress line carry their means apart: a batch that learned `\boxed{}` but not the answers
    /// shows format 100 % beside correct 25 %.
    func testClusterRewardComponentsReachTheMetrics() throws {
        var config = RunConfig()
        config.task.name = "arithmetic:2"
        config.task.extract = .bare
        config.task.formatWeight = 0.5
        let task = try RunTask(config: config, trainPromptCount: 8)
        let tok = task.tokenizer
        var tally = RewardTally()
        for id in 0 ..< 4 {
            let p = task.prompt(for: id)
            let wrong = String(Int(p.answer)! + 1)
            let text = id == 0 ? p.answer : wrong  // one right, three wrong but well formed
            let b = try task.score(completionTokens: try tok.completionIds(text), for: p)
            XCTAssertEqual(b.components.map(\.name), ["correct", "format", "length"])
            XCTAssertEqual(b.reward, (id == 0 ? 1 : 0) + 0.5, accuracy: 1e-6)
            tally.add(b)
        }
        var record = MetricsRecord(step: 3, scalars: [MetricsRecord.Key.accuracy: 0.25])
        record.addRewardComponents(tally)
        XCTAssertEqual(record.scalars[MetricsRecord.Key.correctRate], 0.25)
        XCTAssertEqual(record.scalars[MetricsRecord.Key.formatRate], 1)
        XCTAssertEqual(record.scalars[MetricsRecord.Key.lengthPenalty], 0)
        XCTAssertTrue(record.jsonLine.contains("\"format_rate\":1"), record.jsonLine)
        let line = ProgressLine.format(record, totalSteps: 10)
        XCTAssertTrue(line.contains("correct 25.0%  format 100.0%"), line)
        XCTAssertFalse(line.contains("acc "), line)
    }

    /// The learner takes the reward components and the `correct` flag from the wire instead of
    /// re-scoring every completion on its loop thread: for the same completions (right, wrong, badly
    /// formed, overlong) the tally off decoded trajectory groups equals the verifier's own, bit for
    /// bit, and a sample is correct by its `correct` component — also when a format bonus lifts a
    /// wrong answer's reward to 1 or a length penalty pulls a right one below it.
    func testLearnerMetricsFromWireComponentsEqualRescoring() throws {
        var config = RunConfig()
        config.task.name = "arithmetic:2"
        config.task.extract = .bare
        config.task.formatWeight = 1
        config.task.lengthWeight = 0.5
        config.task.lengthMaxChars = 8
        config.task.lengthRampChars = 4
        let task = try RunTask(config: config, trainPromptCount: 8)
        var rescored = RewardTally(), fromWire = RewardTally()
        var expectedCorrect: [Bool?] = [], rewardAtLeastOne: [Bool] = []
        var groups: [TrajectoryGroup] = []
        for id in 0 ..< 3 {
            let p = task.prompt(for: id)
            let texts = [p.answer, String(Int(p.answer)! + 1), "x" + p.answer, p.answer + "      "]
            var samples: [TrajectorySample] = []
            for text in texts {
                let tokens = try task.tokenizer.completionIds(text)
                let b = try task.score(completionTokens: tokens, for: p)  // what the actor sends
                rescored.add(b)
                expectedCorrect.append(b.isCorrect)
                rewardAtLeastOne.append(b.reward >= 1 - 1e-6)
                samples.append(TrajectorySample(completionTokens: tokens.map { UInt32($0) }, behaviourLogProbs: tokens.map { _ in -1 },
                                                tokenVersions: tokens.map { _ in 0 }, reward: Double(b.reward),
                                                rewardComponents: b.wireComponents, rewardVersion: task.rewardVersion))
            }
            let sent = TrajectoryGroup(ticketId: 1, actorId: "a", promptId: String(id), promptTokens: [1, 2], samples: samples)
            guard case .trajectoryGroup(let g) = try WireCodec.decode([WireCodec.encode(.trajectoryGroup(sent))]) else { return XCTFail() }
            groups.append(g)
        }
        var batches: [RolloutBatch] = []
        for (i, g) in groups.enumerated() {
            for s in g.samples { fromWire.add(s) }
            batches.append(try RolloutBatch(trajectories: g, group: i))
        }
        XCTAssertEqual(fromWire, rescored)
        XCTAssertEqual(try RolloutBatch(concatenating: batches).correct, expectedCorrect)
        XCTAssertNotEqual(expectedCorrect.map { $0! }, rewardAtLeastOne, "the completions must tell the correct component from reward ≥ 1")
        var a = MetricsRecord(step: 1), b = MetricsRecord(step: 1)
        a.addRewardComponents(fromWire)
        b.addRewardComponents(rescored)
        XCTAssertEqual(a.scalars, b.scalars)
        XCTAssertEqual(Set(a.scalars.keys), [MetricsRecord.Key.correctRate, MetricsRecord.Key.formatRate, MetricsRecord.Key.lengthPenalty])
        // A scorer without a `correct` component gives no accuracy rather than one made up from the reward.
        var unlabelled = groups[0]
        for i in unlabelled.samples.indices { unlabelled.samples[i].rewardComponents.removeAll { $0.name == "correct" } }
        XCTAssertEqual(try RolloutBatch(trajectories: unlabelled, group: 0).correct, [nil, nil, nil, nil])
    }

    /// Every process of a run derives the same reward version from the config; any setting that
    /// changes a reward (task, a weight, the extraction mode, the length ramp) changes it.
    func testVerifierRewardVersionFollowsEveryScoringSetting() throws {
        var config = RunConfig()
        config.task.name = "arithmetic:2"
        let base = try RunTask(config: config, trainPromptCount: 8).rewardVersion
        XCTAssertEqual(try RunTask(config: config, trainPromptCount: 16).rewardVersion, base, "prompt count does not score")
        XCTAssertTrue(base.hasPrefix("verifier-") && base.count == "verifier-".count + 12, base)
        XCTAssertTrue(base.dropFirst("verifier-".count).allSatisfy(\.isHexDigit), base)
        let changes: [(String, (inout RunConfig) -> Void)] = [
            ("task.name", { $0.task.name = "arithmetic:1" }), ("task.correct_weight", { $0.task.correctWeight = 2 }),
            ("task.format_weight", { $0.task.formatWeight = 0.1 }), ("task.length_weight", { $0.task.lengthWeight = 0.1 }),
            ("task.extract", { $0.task.extract = .boxed }), ("task.length_max_chars", { $0.task.lengthMaxChars = 200 }),
            ("task.length_ramp_chars", { $0.task.lengthRampChars = 64 }),
        ]
        var seen: Set<String> = [base]
        for (key, change) in changes {
            var c = config
            change(&c)
            let v = try RunTask(config: c, trainPromptCount: 8).rewardVersion
            XCTAssertTrue(seen.insert(v).inserted, "\(key) must change the reward version (\(v))")
        }
        // The text the digest is taken of: a value formatted differently on another host would split one run's versions.
        let spec = try config.task.rewardSpec()
        XCTAssertEqual(spec.canonicalDescription,
                       "rules=1;correct=1.0;format=0.0;length=0.0;extract=last-integer;length_max_chars=256;length_ramp_chars=128")
    }

    /// A user dataset line without an answer (or with a non-integer one) stops the cluster's task
    /// with the file and line; `id` and `task` are optional.
    func testClusterJSONLContract() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-jsonl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = RunConfig()
        config.task.name = "jsonl"
        config.task.datasetPath = dir.appendingPathComponent("p.jsonl").path
        // Answers as JSON numbers and as strings; no id, no task.
        let lines = (0 ..< 30).map { i in i % 2 == 0 ? "{\"prompt\":\"\(i)+2=\",\"answer\":\(i + 2)}" : "{\"prompt\":\"\(i)+2=\",\"answer\":\"\(i + 2)\"}" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: config.task.datasetPath, atomically: true, encoding: .utf8)
        let task = try RunTask(config: config, trainPromptCount: 8)
        XCTAssertFalse(task.trainPrompts.isEmpty)
        for p in task.trainPrompts {
            XCTAssertEqual(p.answer, String(Int(p.prompt.split(separator: "+")[0])! + 2), p.prompt)
            XCTAssertEqual(p.task, "jsonl")
            XCTAssertEqual(try task.score(completionTokens: try task.tokenizer.completionIds(p.answer), for: p).reward, 1)
        }
        try "{\"prompt\":\"1+2=\",\"answer\":3}\n{\"prompt\":\"2+2=\"}\n".write(toFile: config.task.datasetPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunTask(config: config, trainPromptCount: 8)) { e in
            XCTAssertEqual("\(e)", "\(config.task.datasetPath):2: missing field \"answer\"")
        }
        // The toy's vocabulary has no capitals: the line is named before anything trains.
        try "{\"prompt\":\"What is 1+2?\",\"answer\":3}\n".write(toFile: config.task.datasetPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunTask(config: config, trainPromptCount: 8)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(config.task.datasetPath):1: the prompt cannot be tokenized"), "\(e)")
        }
    }

    /// A JSONL task of fractions: refused for the built-in verifiers (the line named), taken as
    /// written under `task.reward: service`; only a service run gets an evaluation scorer.
    func testServiceTaskTakesFreeFormAnswers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-free-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = RunConfig()
        config.task.name = "jsonl"
        config.task.datasetPath = dir.appendingPathComponent("p.jsonl").path
        let answers = (1 ... 40).map { "\($0 * 2 + 1)/2" }
        try answers.map { "{\"prompt\":\"half of \($0.dropLast(2))=\",\"answer\":\"\($0)\"}" }.joined(separator: "\n")
            .write(toFile: config.task.datasetPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunTask(config: config, trainPromptCount: 8)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(config.task.datasetPath):1: field \"answer\": \"3/2\" is not an integer"), "\(e)")
        }
        XCTAssertNil(try RunTask.evaluationScorer(config: config))
        config.task.reward = .service
        config.task.rewardService.command = "true"
        let task = try RunTask(config: config, trainPromptCount: 8)
        XCTAssertEqual(Set((task.trainPrompts + (try task.heldOutPrompts(count: 40))).map(\.answer)), Set(answers))
        XCTAssertTrue(try RunTask.evaluationScorer(config: config) is RewardServiceVerifier)
    }

    /// Held-out evaluation of a service run scores with the reference worker as a process: SymPy
    /// counts 3.5, 3 1/2 and \frac{7}{2} right against 7/2, which no integer rule can read.
    func testServiceRunEvaluatesWithTheWorkersSymPy() throws {
        try PeerPython.require(["sympy"])
        let worker = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/rewards/worker.py")
        var config = RunConfig()
        config.task.reward = .service
        config.task.rewardService.command = "\(PeerPython.name) \(worker.path) --reward math"
        config.task.rewardService.timeoutSeconds = 120
        let scorer = try XCTUnwrap(try RunTask.evaluationScorer(config: config))
        let prompt = TaskPrompt(id: "d/7", task: "division", prompt: "What is 7 divided by 2?", answer: "7/2")
        let scored = try ["It is 3.5", "3 1/2", "\\frac{7}{2}", "14/4", "3", "7/3"].map { try scorer.checkedScore(completion: $0, for: prompt) }
        XCTAssertEqual(scored.map(\.isCorrect), [true, true, true, true, false, false])
        XCTAssertEqual(scored.map { $0["correct"] }, [1, 1, 1, 1, 0, 0])
    }
}
