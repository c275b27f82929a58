import ArgumentParser
import Foundation
import TetherCluster

/// `tether checkpoint verify RUN`: proves every checkpoint of a run (`tether train` or learner) would resume it.
struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Inspect run checkpoints.",
        subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load every checkpoints/step-N of a run (weights, optimizer, a learner's staleness state) and check it; exit 1 naming the first defect.")

        @Argument(help: "Run directory (the --out of tether train, launch or learner).")
        var run: String

        func run() async throws {
            let verified = try RunCheckpoint.verifyAll(runDirectory: URL(fileURLWithPath: run))
            guard !verified.isEmpty else { throw ValidationError("\(run) holds no committed checkpoint") }
            for c in verified {
                let groups = c.issuedGroups.map { ", groups issued \($0) trained \(c.trainedGroups ?? 0)" } ?? ""
                print("step-\(c.step) ok: \(c.parameters) parameters, optimizer step \(c.optimizerStep)" + groups)
            }
        }
    }
}
