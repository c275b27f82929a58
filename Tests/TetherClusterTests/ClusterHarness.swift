import Foundation
import TetherCluster
import TetherTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Starts real `tether` processes (learner, actors) on loopback for one test and always cleans
/// them up: every process still running at `cleanup()` gets SIGKILL.
final class ClusterHarness {
    let root: URL
    let binary: URL
    let runDirectory: URL
    private(set) var processes: [String: Process] = [:]
    private var restarted: [String: Int] = [:]

    init(_ name: String) throws {
        binary = URL(fileURLWithPath: try TetherBinary.require())
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tether-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        runDirectory = root.appendingPathComponent("run")
    }

    /// A tiny cluster config (1-layer 32-wide model, G = 4, B = 2) on fresh loopback ports.
    func writeConfig(maxStaleness: Int, steps: Int, heartbeatTimeout: Double = 1.5, extra: [String] = []) throws -> URL {
        let ports = try FreePort.pick(count: 3)
        let yaml = """
        model: {checkpoint: "", vocab_size: 64, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 64}
        task: {name: addition, max_prompt_tokens: 16}
        algorithm: {kl_beta: 0.04}
        rollout: {group_size: 4, prompts_per_batch: 2, prompts_per_ticket: 1, max_new_tokens: 4}
        staleness: {max_staleness: \(maxStaleness), off_policy_correction: decoupled}
        learner:
          learning_rate: 0.001
          control_endpoint: tcp://127.0.0.1:\(ports[0])
          trajectory_endpoint: tcp://127.0.0.1:\(ports[1])
          weights_endpoint: tcp://127.0.0.1:\(ports[2])
        actors: {count: 2, lease_seconds: 30, heartbeat_seconds: 0.2, heartbeat_timeout_seconds: \(heartbeatTimeout)}
        checkpoint: {every_steps: 2, keep: 10}
        run: {steps: \(steps), seed: 1, out_dir: \(root.path), name: run}

        """
        let url = root.appendingPathComponent("config.yaml")
        try (yaml + extra.joined(separator: "\n")).write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @discardableResult
    func start(_ name: String, _ arguments: [String]) throws -> Process {
        try start(name, executable: binary, arguments + ["--threads", "1"])
    }

    /// Any command (e.g. a container entry point script), logged and cleaned up like the others;
    /// `environment` is added to this process's.
    @discardableResult
    func start(_ name: String, executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let n = restarted[name, default: 0]
        restarted[name] = n + 1
        let logURL = root.appendingPathComponent("\(name)\(n == 0 ? "" : "-\(n)").log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        p.standardOutput = log
        p.standardError = log
        try p.run()
        processes[name] = p
        return p
    }

    func startLearner(config: URL, resume: Bool = false) throws -> Process {
        try start("learner", ["learner", "--config", config.path, "--out", runDirectory.path] + (resume ? ["--resume"] : []))
    }

    func startActor(_ id: String, config: URL, extra: [String] = []) throws -> Process {
        try start(id, ["actor", "--config", config.path, "--id", id] + extra)
    }

    /// Waits for `p` to exit; false on timeout.
    func wait(_ p: Process, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return !p.isRunning
    }

    struct ProcessDidNotExit: Error, CustomStringConvertible {
        var description: String
    }

    /// Waits for `p` to exit with status 0; throws (with every log) when it does not exit in time,
    /// fails the test when it exits otherwise. Never reads the status of a running process.
    func expectCleanExit(_ p: Process, _ what: String, timeout: Double, file: StaticString = #filePath, line: UInt = #line) throws {
        guard wait(p, timeout: timeout) else {
            throw ProcessDidNotExit(description: "\(what) did not exit within \(Int(timeout)) s\n\(allLogs())")
        }
        XCTAssertEqual(p.terminationReason, .exit, "\(what) was killed by a signal\n\(allLogs())", file: file, line: line)
        XCTAssertEqual(p.terminationStatus, 0, "\(what) failed\n\(allLogs())", file: file, line: line)
    }

    /// Polls `condition` every 50 ms; false on timeout.
    func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition()
    }

    /// The complete lines of `metrics.jsonl` (a line cut by a kill is skipped).
    func metrics() -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: runDirectory.appendingPathComponent("metrics.jsonl").path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: root.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
    }

    /// The logs of every process, for failure messages.
    func allLogs() -> String {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".log") }.sorted()) ?? []
        return names.map { n in "--- \(n)\n" + String((try? String(contentsOf: root.appendingPathComponent(n), encoding: .utf8))?.suffix(4000) ?? "") }
            .joined(separator: "\n")
    }

    func kill9(_ p: Process) {
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    func cleanup() {
        for p in processes.values where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in processes.values { p.waitUntilExit() }
        if ProcessInfo.processInfo.environment["TETHER_KEEP_TEST_RUNS"] == nil { try? FileManager.default.removeItem(at: root) }
    }
}

extension Dictionary where Key == String, Value == Any {
    func double(_ k: String) -> Double? { (self[k] as? NSNumber)?.doubleValue }
    func ints(_ k: String) -> [Int] { (self[k] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? [] }
}
