import ArgumentParser
import Foundation
import Logging
import TetherCluster

/// `--config FILE` and `--set key.path=value …`, shared by the cluster commands.
struct ClusterConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Run configuration (YAML); cluster/local.yaml documents every key.")
    var config: String = "cluster/local.yaml"

    @Option(name: .customLong("set"), help: "Override one config key, e.g. --set staleness.max_staleness=0 (repeatable).")
    var overrides: [String] = []

    func load() throws -> RunConfig {
        try RunConfig.load(contentsOf: URL(fileURLWithPath: config), overrides: overrides)
    }
}

/// Runs a blocking process loop on its own thread and awaits it, so no ZeroMQ wait or long
/// training step ever blocks a thread of Swift concurrency's cooperative pool.
func runOnDedicatedThread(name: String, _ body: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
        let t = Thread {
            do { try body(); c.resume() } catch { c.resume(throwing: error) }
        }
        t.name = name
        t.stackSize = 16 << 20
        t.start()
    }
}

func clusterLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    l.logLevel = ProcessInfo.processInfo.environment["TETHER_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
    return l
}
