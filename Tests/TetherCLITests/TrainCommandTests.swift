import Foundation
import TetherTestSupport
import XCTest

/// `tether train`, `tether eval` and `tether rm` run as real processes, as a user runs them.
final class TrainCommandTests: XCTestCase {
    func temporaryDirectory() throws -> String { try makeTemporaryDirectory(self, "tether-train") }

    func tether(_ arguments: [String], in dir: String, timeout: TimeInterval = 120) throws -> TetherBinary.Result {
        try TetherBinary.run(arguments, in: dir, timeout: timeout)
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
    /// metrics written, then resumed for one more step; `tether checkpoint verify` accepts the run
    /// (the learner's layout); `tether eval --config` on a checkpoint reproduces the held-out
    /// accuracy the run logged (one split, one evaluator) and counts each distinct problem once;
    /// `tether eval --data` on exported held-out prompts.
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
        for f in ["config.yaml", "metrics.jsonl", "reference/model.safetensors", "checkpoints/latest", "checkpoints/step-2/checksums.json",
                  "checkpoints/step-2/policy/model.safetensors", "checkpoints/step-2/policy/optimizer.safetensors", "checkpoints/step-2/policy/trainer_state.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/" + f), f)
        }
        let tb = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/tensorboard")
        XCTAssertTrue(tb.contains { $0.hasPrefix("events.out.tfevents") }, "\(tb)")
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let steps = records.filter { $0["reward/mean"] != nil }
        XCTAssertEqual(steps.count, 2)
        for key in ["reward/mean", "reward/std", "accuracy", "kl", "entropy", "clip_fraction", "ess", "response_length", "actor/tokens_per_s",
                    "correct_rate", "format_rate", "length_penalty"] {
            XCTAssertNotNil(steps[0][key], "metrics.jsonl lacks \(key): \(steps[0].keys.sorted())")
        }
        XCTAssertEqual(records.filter { $0["eval/accuracy"] != nil }.count, 2, "held-out accuracy before and at the checkpoint")
        for e in records where e["eval/accuracy"] != nil {
            XCTAssertNotNil(e["eval/sampled_accuracy"], "run.eval_samples defaults to a sampled pass too: \(e)")
        }

        let resumed = try tether(["train", "--resume", "run", "--set", "run.steps=3", "--eval-prompts", "8", "--threads", "1"], in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming"), resumed.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/checkpoints/step-3/policy/model.safetensors"))
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/run/checkpoints/step-3/policy/trainer_state.json"))) as? [String: Any]
        XCTAssertEqual(state?["step"] as? Int, 3)

        let verify = try tether(["checkpoint", "verify", "run"], in: dir)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertTrue(verify.stdout.contains("step-2 ok") && verify.stdout.contains("step-3 ok"), verify.stdout)

        // The accuracy `tether train` logged at step 3, measured again by `tether eval --config`.
        let logged = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .last { $0["step"] as? Int == 3 && $0["eval/accuracy"] != nil }
        let loggedAccuracy = try XCTUnwrap(logged?["eval/accuracy"] as? Double)
        let again = try tether(["eval", "--config", "run/config.yaml", "--checkpoint", "run/checkpoints/step-3", "--n", "8", "--threads", "1"], in: dir)
        XCTAssertEqual(again.status, 0, again.stderr)
        let againJSON = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any], again.stdout)
        XCTAssertEqual(againJSON["n"] as? Int, 8)
        XCTAssertEqual(try XCTUnwrap(againJSON["accuracy"] as? Double), loggedAccuracy, accuracy: 1e-12)
        // One-digit addition's held-out split has fewer than 200 sums: --n 200 evaluates each once,
        // and says so.
        let distinct = try tether(["eval", "--config", "run/config.yaml", "--set", "task.name=arithmetic:1", "--checkpoint", "run",
                                   "--n", "200", "--threads", "1"], in: dir)
        XCTAssertEqual(distinct.status, 0, distinct.stderr)
        let heldOutSums = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(distinct.stdout.utf8)) as? [String: Any])?["n"] as? Int, distinct.stdout)
        XCTAssertTrue((5..<100).contains(heldOutSums), distinct.stdout)
        XCTAssertTrue(distinct.stderr.contains("\(heldOutSums) distinct held-out problems"), distinct.stderr)
        let exported = try tether(["tasks", "export", "--config", "run/config.yaml", "--set", "task.name=arithmetic:1",
                                   "--split", "heldout", "--n", "200"], in: dir)
        XCTAssertEqual(exported.status, 0, exported.stderr)
        XCTAssertEqual(exported.stdout.split(separator: "\n").count, heldOutSums)

        // A model key that disagrees with the base: an error naming both values.
        let mismatch = try tether(["train", "--resume", "run", "--set", "model.hidden_size=96", "--threads", "1"], in: dir)
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.stderr.contains("model.hidden_size") && mismatch.stderr.contains("96") && mismatch.stderr.contains("32"), mismatch.stderr)

        // tether eval on held-out prompts from `tether tasks export`.
        let export = try tether(["tasks", "export", "--task", "arithmetic", "--level", "1", "--split", "heldout", "--n", "6"], in: dir)
        XCTAssertEqual(export.status, 0, export.stderr)
        try export.stdout.write(toFile: dir + "/heldout.jsonl", atomically: true, encoding: .utf8)
        for extra in [[String](), ["--samples", "3", "--temperature", "1"]] {
            let e = try tether(["eval", "--checkpoint", "run/checkpoints/step-3", "--data", "heldout.jsonl", "--threads", "1"] + extra, in: dir)
            XCTAssertEqual(e.status, 0, e.stderr)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any], e.stdout)
            let accuracy = try XCTUnwrap(json["accuracy"] as? Double), reward = try XCTUnwrap(json["mean_reward"] as? Double)
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(json["pass_at_k"] as? Double), accuracy)
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
