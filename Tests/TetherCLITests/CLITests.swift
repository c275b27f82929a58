import Foundation
import TetherModel
import TetherTestSupport
import XCTest

/// `tether init`, `generate` and `sft` run as real processes (as users and scripts/run-demo run them).
final class CLITests: XCTestCase {
    func tether(_ arguments: [String], timeout: TimeInterval = 60) throws -> TetherBinary.Result {
        try TetherBinary.run(arguments, in: try makeTemporaryDirectory(self, "tether-cli-io"), timeout: timeout)
    }

    func testInitThenGreedyGenerateIsReproducible() throws {
        let dir = try makeTemporaryDirectory(self, "tether-cli") + "/ckpt"
        let initRun = try tether(["init", "--preset", "tiny", "--out", dir, "--seed", "4", "--threads", "1"])
        XCTAssertEqual(initRun.status, 0, initRun.stderr)
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), f)
        }
        let args = ["generate", "--checkpoint", dir, "--prompt", "12+34=", "--temperature", "0", "--max-new-tokens", "12", "--threads", "1"]
        let a = try tether(args), b = try tether(args)
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertEqual(a.stdout, b.stdout)
        XCTAssertFalse(a.stdout.trimmingCharacters(in: .newlines).isEmpty, "a random tiny model rarely emits <eos> first")
        XCTAssertLessThanOrEqual(a.stdout.dropLast().unicodeScalars.count, 12, "only the completion is printed: \(a.stdout.debugDescription)")
        // Seeded sampling is reproducible too, and a different seed is free to differ.
        let s1 = try tether(["generate", "--checkpoint", dir, "--prompt", "hi", "--seed", "7", "--max-new-tokens", "20"])
        let s2 = try tether(["generate", "--checkpoint", dir, "--prompt", "hi", "--seed", "7", "--max-new-tokens", "20"])
        XCTAssertEqual(s1.stdout, s2.stdout)
    }

    func testBadCheckpointPathFailsReadably() throws {
        let missing = NSTemporaryDirectory() + "no-such-checkpoint-\(getpid())"
        let r = try tether(["generate", "--checkpoint", missing, "--prompt", "1+1="])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(missing), r.stderr)
        XCTAssertEqual(r.stdout, "")

        // A corrupt weights file names the file.
        let dir = try makeTemporaryDirectory(self, "tether-cli") + "/ckpt"
        XCTAssertEqual(try tether(["init", "--out", dir]).status, 0)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        let c = try tether(["generate", "--checkpoint", dir, "--prompt", "1+1="])
        XCTAssertNotEqual(c.status, 0)
        XCTAssertTrue(c.stderr.contains("model.safetensors"), c.stderr)
    }

    /// A checkpoint with a NaN weight (a diverged run) is refused with a non-zero exit naming it,
    /// instead of printing whatever the sampler makes of NaN logits.
    func testGenerateOnNonFiniteWeightsFails() throws {
        let dir = try makeTemporaryDirectory(self, "tether-cli") + "/ckpt"
        XCTAssertEqual(try tether(["init", "--out", dir]).status, 0)
        let (model, _) = try LlamaModel.load(from: dir)
        model.parameters.buffer[model.parameters.count / 2] = .nan
        try model.save(to: dir)
        let r = try tether(["generate", "--checkpoint", dir, "--prompt", "1+1="])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.contains("weight \(model.parameters.count / 2) is nan"), r.stderr)
        XCTAssertTrue(r.stderr.contains("not finite"), r.stderr)
    }

    func testSFTCommandTrainsAndWritesResumableCheckpoint() throws {
        let root = try makeTemporaryDirectory(self, "tether-cli")
        XCTAssertEqual(try tether(["init", "--out", root + "/init", "--seed", "1"]).status, 0)
        var lines = ""
        for a in 0..<6 { for b in 0..<6 { lines += "{\"prompt\": \"\(a)+\(b)=\", \"completion\": \"\(a + b)\"}\n" } }
        try lines.write(toFile: root + "/data.jsonl", atomically: true, encoding: .utf8)
        let r = try tether(["sft", "--checkpoint", root + "/init", "--data", root + "/data.jsonl", "--out", root + "/sft",
                            "--steps", "30", "--batch-size", "8", "--eval-every", "10", "--threads", "1"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("step 30/30"), r.stderr)
        XCTAssertTrue(r.stderr.contains("tok/s") && r.stderr.contains("ETA"), r.stderr)
        XCTAssertEqual(r.stdout, "")
        for f in ["config.json", "model.safetensors", "tokenizer.json", "trainer_state.json", "optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/sft/" + f), f)
        }

        // --resume continues the saved run up to --steps in total; a checkpoint without training state cannot resume.
        let more = try tether(["sft", "--checkpoint", root + "/sft", "--data", root + "/data.jsonl", "--out", root + "/sft2",
                               "--steps", "40", "--batch-size", "8", "--resume", "--threads", "1"], timeout: 120)
        XCTAssertEqual(more.status, 0, more.stderr)
        XCTAssertTrue(more.stderr.contains("resuming at step 30") && more.stderr.contains("step 40/40"), more.stderr)
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/sft2/trainer_state.json"))) as? [String: Any]
        XCTAssertEqual(state?["step"] as? Int, 40)
        let noState = try tether(["sft", "--checkpoint", root + "/init", "--data", root + "/data.jsonl", "--out", root + "/x", "--resume"])
        XCTAssertNotEqual(noState.status, 0)
        XCTAssertTrue(noState.stderr.contains("trainer_state.json"), noState.stderr)

        // A bad JSONL line is reported with its number, and no checkpoint is written.
        try (lines + "{\"prompt\": \"1+1=\"}\n").write(toFile: root + "/bad.jsonl", atomically: true, encoding: .utf8)
        let bad = try tether(["sft", "--checkpoint", root + "/init", "--data", root + "/bad.jsonl", "--out", root + "/never", "--steps", "1"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("bad.jsonl:37:"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/never"))
    }
}
