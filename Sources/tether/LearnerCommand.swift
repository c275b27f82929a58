import ArgumentParser
import Foundation
import TetherCluster

/// `tether learner`: admits trajectory groups under the staleness limit, trains, broadcasts weights.
struct LearnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learner",
        abstract: "Run the learner: hand out rollout tickets, admit groups under max_staleness, train with GRPO, broadcast weights.")

    @OptionGroup var configOptions: ClusterConfigOptions
    @OptionGroup var blas: BLASThreadOption

    @Option(name: .long, help: "Run directory (default: run.out_dir/run.name from the config).")
    var out: String?

    @Flag(name: .long, help: "Continue from the run directory's latest checkpoint (its config.yaml is used).")
    var resume = false

    @Option(help: "SFT steps when model.checkpoint is missing and has to be made (as in `tether train`).")
    var baseSftSteps: Int = 60

    func run() async throws {
        blas.apply()
        StopSignal.install(ignoreInterrupt: ProcessInfo.processInfo.environment["TETHER_IGNORE_SIGINT"] == "1")
        var config = try configOptions.load()
        let dir = URL(fileURLWithPath: out ?? URL(fileURLWithPath: config.run.outDir).appendingPathComponent(config.run.name).path)
        if resume {
            let saved = dir.appendingPathComponent("config.yaml")
            if FileManager.default.fileExists(atPath: saved.path) {
                config = try RunConfig.load(contentsOf: saved, overrides: configOptions.overrides)
            }
        }
        if !resume {
            // A fresh run on a config whose base is missing (the default's runs/demo-base on a new
            // machine, a new pod) makes it first, as `tether train` does.
            try TrainRunSetup.ensureBaseCheckpoint(config, sftSteps: baseSftSteps) { FileHandle.standardError.write(Data(("learner: " + $0 + "\n").utf8)) }
        }
        let logger = clusterLogger("tether.learner")
        let loop = try LearnerLoop(config: config, options: .init(runDirectory: dir, resume: resume), logger: logger)
        nonisolated(unsafe) let unsafeLoop = loop  // handed to exactly one thread, which owns it from here on
        try await runOnDedicatedThread(name: "tether.learner") { try unsafeLoop.run() }
    }
}
