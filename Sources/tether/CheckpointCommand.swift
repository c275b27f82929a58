import ArgumentParser
import Foundation
import TetherCluster

/// `tether checkpoint verify RUN`: proves every learner checkpoint of a run would resume it.
struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Inspect learner checkpoints.",
        subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load every checkpoints/step-N of a run (weights, optimizer, staleness state) and check it; exit 1 naming the first defect.")

        @Argument(help: "Run directory (the learner's --out).")
        var run: String

        func run() async throws {
            let verified = try LearnerCheckpoint.verifyAll(runDirectory: URL(fileURLWithPath: run))
            guard !verified.isEmpty else { throw ValidationError("\(run) holds no committed checkpoint") }
            for c in verified {
                print("step-\(c.step) ok: \(c.parameters) parameters, optimizer step \(c.optimizerStep), groups issued \(c.issuedGroups) trained \(c.trainedGroups)")
            }
        }
    }
}
