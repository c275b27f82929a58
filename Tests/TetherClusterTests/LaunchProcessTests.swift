import Foundation
import TetherCluster
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `tether launch` with real child processes, each test bounded in time: output merging never
/// stalls a child, and actors that die are reported and do not leave the launch waiting forever.
final class LaunchProcessTests: XCTestCase {
    /// A child (standing in for the learner) writes an 8 MiB line with no newline until the end,
    /// plus a line with a terminal escape. Its writes finish at pipe speed (the launcher's reader
    /// drains and splits in one pass; it used to rescan the growing line on every chunk), the long
    /// line reaches launch.log truncated with a marker, and the escape is neutralised.
    func testMultiMiBLineDoesNotStallTheChild() throws {
        let h = try ClusterHarness("launchlongline")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 2)
        let lineBytes = 8 << 20
        let script = h.root.appendingPathComponent("fake-tether")
        try """
        #!/bin/bash
        # learner --config C --out ROOT ... | actor --config ROOT/config.yaml ...
        if [ "$1" = learner ]; then
            start=$(date +%s%N)
            head -c \(lineBytes) /dev/zero | tr '\\0' x >&2
            printf '\\n' >&2
            end=$(date +%s%N)
            printf 'evil\\033[2J\\n' >&2
            echo "wrote-ms $(( (end - start) / 1000000 ))"
            touch "$5/learner-done"
        else
            dir=$(dirname "$3")
            for _ in $(seq 600); do [ -e "$dir/learner-done" ] && sleep 1 && exit 0; sleep 0.05; done
            exit 3
        fi

        """.write(to: script, atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(script.path, 0o755), 0)
        let launcher = ClusterLauncher(plan: .init(binary: script, configPath: config.path, actors: 1,
                                                   runDirectory: h.runDirectory, cores: 2))
        let started = Date()
        XCTAssertEqual(try launcher.run(), 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)
        let log = try String(contentsOf: h.runDirectory.appendingPathComponent("launch.log"), encoding: .utf8)
        let wrote = try XCTUnwrap(log.components(separatedBy: "wrote-ms ").last?.prefix(while: \.isNumber)).description
        XCTAssertLessThan(try XCTUnwrap(Int(wrote)), 3000, "the child blocked writing its long line")
        XCTAssertTrue(log.contains("[learner] " + String(repeating: "x", count: 16 * 1024) + " … [line truncated: \(lineBytes - 16 * 1024) more bytes]"))
        XCTAssertTrue(log.contains("[learner] evil\u{FFFD}[2J\n"), "control characters pass through: \(log.suffix(300))")
        XCTAssertFalse(log.contains("\u{1B}"))
        XCTAssertTrue(log.contains("actor-0 (pid"), log.suffix(2000).description)
    }

    /// A dataset that breaks the JSONL contract (lines without `answer`) stops the run at start
    /// with the file and line, and launch reports the exited process with its status and last
    /// stderr line instead of waiting forever.
    func testBadDatasetIsReportedByLineAndLaunchStops() throws {
        let h = try ClusterHarness("launchbaddata")
        defer { h.cleanup() }
        let data = h.root.appendingPathComponent("no-answers.jsonl")
        try (0..<20).map { "{\"prompt\": \"\($0)+1=\"}\n" }.joined().write(to: data, atomically: true, encoding: .utf8)
        let config = try h.writeConfig(maxStaleness: 1, steps: 50)
        let launch = try h.start("launch", executable: h.binary, ["launch", config.path, "--out", h.runDirectory.path, "--actors", "1",
                                            "--set", "task.name=jsonl", "--set", "task.dataset_path=\(data.path)"])
        XCTAssertTrue(h.wait(launch, timeout: 120), "launch hung after a process died\n\(h.allLogs())")
        XCTAssertEqual(launch.terminationReason, .exit)
        XCTAssertNotEqual(launch.terminationStatus, 0, h.log("launch"))
        let log = h.log("launch")
        // Learner and actor both refuse the dataset when they read it, naming the line; launch
        // reports the process that exited first, with its status and last words, and stops.
        XCTAssertTrue(log.contains("no-answers.jsonl:1: missing field \"answer\""), log)
        XCTAssertNotNil(log.range(of: #"(learner|actor-0) \(pid \d+\) exited with status \d+ \(last stderr line: "#, options: .regularExpression), log)
    }

    /// A run that finishes: the actors exit cleanly when the learner stops them (just before the
    /// learner exits), which is not mistaken for actors dying, and launch exits 0.
    func testCompletedRunExitsZeroAndReportsCleanActorExits() throws {
        let h = try ClusterHarness("launchdone")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 4)
        let launch = try h.start("launch", executable: h.binary, ["launch", config.path, "--out", h.runDirectory.path, "--actors", "2"])
        XCTAssertTrue(h.wait(launch, timeout: 120), h.allLogs())
        XCTAssertEqual(launch.terminationStatus, 0, h.log("launch"))
        let log = h.log("launch")
        XCTAssertTrue(log.contains("learner (pid"), log)
        XCTAssertFalse(log.contains("no actor is left"), log)
        XCTAssertFalse(log.contains("not restarted"), log)
        XCTAssertEqual(h.metrics().count, 4)
    }

    /// `run.eval_every_steps`: the learner measures held-out accuracy, greedy and sampled, before the
    /// first update, every k versions and at the last, each as its own metrics line (step = the
    /// version evaluated) beside the step lines, and logs it.
    func testPeriodicHeldOutEvaluationIsWrittenBesideTheSteps() throws {
        let h = try ClusterHarness("launcheval")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 5)
        let launch = try h.start("launch", executable: h.binary, ["launch", config.path, "--out", h.runDirectory.path, "--actors", "1",
                                                                  "--set", "run.eval_every_steps=2", "--set", "run.eval_prompts=12",
                                                                  "--set", "run.eval_samples=3"])
        XCTAssertTrue(h.wait(launch, timeout: 120), h.allLogs())
        XCTAssertEqual(launch.terminationStatus, 0, h.log("launch"))
        let records = h.metrics()
        let evals = records.filter { $0["eval/accuracy"] != nil }
        XCTAssertEqual(records.filter { $0["reward/mean"] != nil }.count, 5, "one line per step as without evaluation")
        XCTAssertEqual(evals.compactMap { $0.double("version").map { Int($0) } }, [0, 2, 4, 5])
        for e in evals {
            for key in ["eval/accuracy", "eval/sampled_accuracy"] {
                let a = try XCTUnwrap(e.double(key), "\(key) missing in \(e)")
                XCTAssertTrue((0...1).contains(a), "\(key) \(a)")
            }
            XCTAssertEqual(e.double("eval/prompts"), 12)
            XCTAssertEqual((e["step"] as? NSNumber)?.intValue, e.double("version").map { Int($0) })
        }
        let log = h.log("launch")
        XCTAssertNotNil(log.range(of: #"held-out accuracy at version 5: greedy [0-9.]+, sampled \(T = 1, 3 per problem\) [0-9.]+ \(12 problems"#,
                                  options: .regularExpression), log)
    }

    /// A run stopped early (Ctrl-C, or the demo's time limit) still ends with an evaluation of the
    /// version it stopped at, before the learner exits.
    func testInterruptedRunEvaluatesItsLastVersion() throws {
        let h = try ClusterHarness("launchevalstop")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 100_000)
        let launch = try h.start("launch", executable: h.binary, ["launch", config.path, "--out", h.runDirectory.path, "--actors", "1",
                                                                  "--set", "run.eval_every_steps=100000", "--set", "run.eval_prompts=8"])
        XCTAssertTrue(h.waitUntil(timeout: 60) { h.metrics().filter { $0["reward/mean"] != nil }.count >= 3 }, h.allLogs())
        XCTAssertEqual(kill(launch.processIdentifier, SIGINT), 0)
        XCTAssertTrue(h.wait(launch, timeout: 120), h.allLogs())
        let records = h.metrics()
        let lastStep = try XCTUnwrap(records.filter { $0["reward/mean"] != nil }.last?.double("version"))
        let evals = records.filter { $0["eval/accuracy"] != nil }.compactMap { $0.double("version") }
        XCTAssertEqual(evals.first, 0)
        XCTAssertEqual(evals.last, lastStep, "no evaluation of the version the run stopped at\n\(h.log("launch"))")
    }

    /// SIGKILL of the only actor: reported by signal name, and launch stops the learner and fails.
    func testKilledActorIsReportedBySignalAndLaunchStops() throws {
        let h = try ClusterHarness("launchkill")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 100_000)
        let launch = try h.start("launch", executable: h.binary, ["launch", config.path, "--out", h.runDirectory.path, "--actors", "1"])
        XCTAssertTrue(h.waitUntil(timeout: 60) { h.metrics().count >= 1 }, h.allLogs())
        let started = try XCTUnwrap(h.log("launch").range(of: #"started actor-0 \(pid \d+\)"#, options: .regularExpression))
        let pid = try XCTUnwrap(Int32(h.log("launch")[started].filter(\.isNumber).dropFirst()))  // "actor-0": skip its 0
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        XCTAssertTrue(h.wait(launch, timeout: 120), "launch kept waiting without actors\n\(h.allLogs())")
        XCTAssertNotEqual(launch.terminationStatus, 0)
        let log = h.log("launch")
        XCTAssertTrue(log.contains("actor-0 (pid \(pid)) was killed by signal 9 (SIGKILL)"), log)
        XCTAssertTrue(log.contains("no actor is left and none will restart"), log)
        XCTAssertTrue(FileManager.default.fileExists(atPath: h.runDirectory.appendingPathComponent("checkpoints/latest").path),
                      "the drained learner writes its checkpoint")
    }
}
