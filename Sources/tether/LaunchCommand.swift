import ArgumentParser
import Foundation
import TetherCluster

/// `tether launch FILE`: learner + N actors as processes on this machine.
struct LaunchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Start the learner and N actors on this machine, merge their logs, show live progress; Ctrl-C drains.")

    @Argument(help: "Run configuration (YAML), e.g. cluster/local.yaml.")
    var config: String

    @Option(name: .customLong("set"), help: "Override one config key (repeatable).")
    var overrides: [String] = []

    @Option(name: .long, help: "Actor processes (overrides actors.count).")
    var actors: Int?

    @Option(name: .long, help: "Run directory (default: run.out_dir/run.name).")
    var out: String?

    @Option(name: .long, help: "Continue the run in this directory from its latest checkpoint.")
    var resume: String?

    @Flag(name: .long, help: "Restart an actor that crashes (up to 5 times each).")
    var restartActors = false

    func run() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        let exe = FileManager.default.isExecutableFile(atPath: binary.path)
            ? binary : URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let plan = ClusterLauncher.Plan(
            binary: exe, configPath: config, overrides: overrides, actors: actors,
            runDirectory: (resume ?? out).map { URL(fileURLWithPath: $0) }, resume: resume != nil, restartCrashedActors: restartActors)
        let launcher = ClusterLauncher(plan: plan)
        nonisolated(unsafe) let unsafeLauncher = launcher  // used by exactly one thread
        let status = ExitStatusBox()
        try await runOnDedicatedThread(name: "tether.launch") { status.value = try unsafeLauncher.run() }
        if status.value != 0 { throw ExitCode(status.value) }
    }
}

/// The launcher thread's result, read after it finished (the continuation orders the accesses).
final class ExitStatusBox: @unchecked Sendable {
    var value: Int32 = 0
}
