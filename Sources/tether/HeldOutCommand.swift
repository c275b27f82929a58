import ArgumentParser
import Foundation
import TetherCluster
import TetherModel

/// `tether heldout`: greedy accuracy of a checkpoint on the config's task, held-out split.
struct HeldOutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heldout",
        abstract: "Greedy held-out accuracy of a checkpoint on the run config's task (prints JSON).")

    @OptionGroup var configOptions: ClusterConfigOptions
    @OptionGroup var blas: BLASThreadOption

    @Option(name: .long, help: "Hugging Face Llama checkpoint directory.")
    var checkpoint: String

    @Option(name: .long, help: "Held-out problems to score.")
    var n: Int = 200

    func run() async throws {
        blas.apply()
        let config = try configOptions.load()
        let task = try ClusterTask(config: config)
        let model = try LlamaModel.load(from: checkpoint).model
        let r = try HeldOutEvaluation.evaluate(model: model, task: task, count: n, maxNewTokens: config.rollout.maxNewTokens)
        print("{\"checkpoint\": \"\(checkpoint)\", \"task\": \"\(task.name)\", \"correct\": \(r.correct), \"total\": \(r.total), \"accuracy\": \(String(format: "%.4f", r.accuracy))}")
    }
}
