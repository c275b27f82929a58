import Foundation
import TetherCluster
import TetherModel
import TetherRewards
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
        var samples: [(prompt: PromptID, completion: [Int])] = []
        for id in 0 ..< 4 {
            let p = task.prompt(for: id)
            let wrong = String(Int(p.answer)! + 1)
            let text = id == 0 ? p.answer : wrong  // one right, three wrong but well formed
            let b = try task.score(completionTokens: try tok.completionIds(text), for: p)
            XCTAssertEqual(b.components.map(\.name), ["correct", "format", "length"])
            XCTAssertEqual(b.reward, (id == 0 ? 1 : 0) + 0.5, accuracy: 1e-6)
            samples.append((id, try tok.completionIds(text)))
        }
        var record = MetricsRecord(step: 3, scalars: [MetricsRecord.Key.accuracy: 0.25])
        record.addRewardComponents(task.rewardTally(samples))
        XCTAssertEqual(record.scalars[MetricsRecord.Key.correctRate], 0.25)
        XCTAssertEqual(record.scalars[MetricsRecord.Key.formatRate], 1)
        XCTAssertEqual(record.scalars[MetricsRecord.Key.lengthPenalty], 0)
        XCTAssertTrue(record.jsonLine.contains("\"format_rate\":1"), record.jsonLine)
        let line = ProgressLine.format(record, totalSteps: 10)
        XCTAssertTrue(line.contains("correct 25.0%  format 100.0%"), line)
        XCTAssertFalse(line.contains("acc "), line)
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
}
