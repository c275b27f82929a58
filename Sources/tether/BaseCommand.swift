import ArgumentParser
import Foundation
import TetherCluster

/// `tether base`: makes the SFT warm start that `model.checkpoint` names, if it is missing, the same
/// way `tether train` and `tether launch` do on their own. Scripts call it to evaluate the base
/// before RL (`scripts/run-demo`) or to share one base between many runs (`scripts/staleness-sweep`).
struct BaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "base",
        abstract: "Make the SFT base checkpoint named by model.checkpoint when it is missing (init + short SFT on the task's SFT split).")

    @OptionGroup var configOptions: ClusterConfigOptions
    @OptionGroup var blas: BLASThreadOption

    @Option(help: "SFT steps of 32 examples.")
    var sftSteps: Int = 60

    func run() async throws {
        blas.apply()
        let config: RunConfig
        do { config = try configOptions.load() } catch let e as ConfigError { throw ValidationError("\(e)") }
        guard !config.model.checkpoint.isEmpty else {
            throw ValidationError("model.checkpoint is empty: set it to the directory the base should be written to")
        }
        if FileManager.default.fileExists(atPath: config.model.checkpoint) {
            FileHandle.standardError.write(Data("base: \(config.model.checkpoint) exists; nothing to do\n".utf8))
        }
        try TrainRunSetup.ensureBaseCheckpoint(config, sftSteps: sftSteps) { FileHandle.standardError.write(Data(("base: " + $0 + "\n").utf8)) }
        print(config.model.checkpoint)
    }
}
