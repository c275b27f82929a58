import Foundation
import XCTest

/// `tether train`, `tether eval` and `tether rm` run as real processes, as a user runs them.
final class TrainCommandTests: XCTestCase {
    static var binary: String? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tether").path,
            Bundle.main.bundleURL.appendingPathComponent("tether").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.build/release/tether").standardizedFileURL.path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "tether-train-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func tether(_ arguments: [String], in dir: String, timeout: TimeInterval = 120) throws -> Result {
        let bin = try XCTUnwrap(Self.binary, "tether binary not found next to the tests; run `swift build -c release` first")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = dir + "/.stdout", err = dir + "/.stderr"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTAssertLessThan(Date(), deadline, "tether \(arguments) timed out")
        return Result(status: p.terminationStatus, stdout: try String(contentsOfFile: out, encoding: .utf8),
                      stderr: try String(contentsOfFile: err, encoding: .utf8))
    }

    func testUnknownConfigKeyFailsNamingTheKey() throws {
        let dir = try temporaryDirectory()
        try "algorithm:\n  name: grpo\n  kl_betta: 0.1\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let r = try tether(["train", "--config", "bad.yaml", "--out", "run"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("algorithm.kl_betta"), r.stderr)
        XCTAssertTrue(r.stderr.contains("unknown key"), r.stderr)
        XCTAssertTrue(r.stderr.contains("kl_beta"), "suggests the nearest key: \(r.stderr)")
        // The same through --set.
        try "run:\n  steps: 1\n".write(toFile: dir + "/ok.yaml", atomically: true, encoding: .utf8)
        let s = try tether(["train", "--config", "ok.yaml", "--set", "rollout.group_sise=4", "--out", "run"], in: dir)
        XCTAssertNotEqual(s.status, 0)
        XCTAssertTrue(s.stderr.contains("rollout.group_sise"), s.stderr)
    }

    /// A pretrained model that has not been fetched (models/NAME) is an error that says how to get
    /// it, not a toy base made under its name.
    func testMissingPretrainedModelNamesGetModel() throws {
        let dir = try temporaryDirectory()
        try "model:\n  checkpoint: models/smollm2-not-fetched\n".write(toFile: dir + "/m.yaml", atomically: true, encoding: .utf8)
        let r = try tether(["train", "--config", "m.yaml", "--out", "run"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("scripts/get-model smollm2-not-fetched"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/models/smollm2-not-fetched"))
    }

    /// A tiny run end to end: base checkpoint made (init + SFT), two RL steps with a checkpoint,
    /// metrics written, then resumed for one more step; then `tether eval` on held-out prompts.
    func testTrainResumeAndEvalEndToEnd() throws {
        let dir = try temporaryDirectory()
        let yaml = """
        model: {checkpoint: base, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2,
                intermediate_size: 64, max_position_embeddings: 32}
        task: {name: addition, max_prompt_tokens: 8}
        rollout: {group_size: 4, prompts_per_batch: 2, max_new_tokens: 4}
        algorithm: {minibatches: 2}
        checkpoint: {every_steps: 2}
        run: {steps: 2}

        """
        try yaml.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        let r = try tether(["train", "--config", "tiny.yaml", "--out", "run", "--base-sft-steps", "5", "--eval-prompts", "8", "--threads", "1"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("base checkpoint base not found: creating it"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/base/model.safetensors"))
        for f in ["config.yaml", "metrics.jsonl", "reference/model.safetensors", "checkpoints/latest",
                  "checkpoints/step-2/model.safetensors", "checkpoints/step-2/optimizer.safetensors", "checkpoints/step-2/trainer_state.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/" + f), f)
        }
        let tb = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/tensorboard")
        XCTAssertTrue(tb.contains { $0.hasPrefix("events.out.tfevents") }, "\(tb)")
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let steps = records.filter { $0["reward/mean"] != nil }
        XCTAssertEqual(steps.count, 2)
        for key in ["reward/mean", "reward/std", "accuracy", "kl", "entropy", "clip_fraction", "ess", "response_length", "actor/tokens_per_s"] {
            XCTAssertNotNil(steps[0][key], "metrics.jsonl lacks \(key): \(steps[0].keys.sorted())")
        }
        XCTAssertEqual(records.filter { $0["eval/accuracy"] != nil }.count, 2, "held-out accuracy before and at the checkpoint")
        for e in records where e["eval/accuracy"] != nil {
            XCTAssertNotNil(e["eval/sampled_accuracy"], "run.eval_samples defaults to a sampled pass too: \(e)")
        }

        let resumed = try tether(["train", "--resume", "run", "--set", "run.steps=3", "--eval-prompts", "8", "--threads", "1"], in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming"), resumed.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/checkpoints/step-3/model.safetensors"))
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/run/checkpoints/step-3/trainer_state.json"))) as? [String: Any]
        XCTAssertEqual(state?["step"] as? Int, 3)

        // tether eval on held-out prompts from `tether tasks export`.
        let export = try tether(["tasks", "export", "--task", "arithmetic", "--level", "1", "--split", "heldout", "--n", "6"], in: dir)
        XCTAssertEqual(export.status, 0, export.stderr)
        try export.stdout.write(toFile: dir + "/heldout.jsonl", atomically: true, encoding: .utf8)
        for extra in [[String](), ["--samples", "3", "--temperature", "1"]] {
            let e = try tether(["eval", "--checkpoint", "run/checkpoints/step-3", "--data", "heldout.jsonl", "--threads", "1"] + extra, in: dir)
            XCTAssertEqual(e.status, 0, e.stderr)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any], e.stdout)
            let accuracy = try XCTUnwrap(json["accuracy"] as? Double), reward = try XCTUnwrap(json["mean_reward"] as? Double)
            XCTAssertEqual(json["n"] as? Int, 6)
            XCTAssertEqual(json["samples"] as? Int, extra.isEmpty ? 1 : 3)
            XCTAssertTrue((0...1).contains(accuracy))
            XCTAssertEqual(accuracy, reward, accuracy: 1e-9, "exact-answer rewards are 1 or 0")
        }
        let bad = try tether(["eval", "--checkpoint", "run/checkpoints/step-3", "--data", "heldout.jsonl", "--samples", "4"], in: dir)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--temperature"), bad.stderr)
    }
}
