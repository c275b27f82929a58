import ArgumentParser
import Foundation
import TetherCluster
import TetherModel
import TetherRewards

/// `tether task-data`: the run config's task (including the cluster-only `addition`) as JSONL, so
/// an SFT warm start sees exactly the prompt format and train split the RL run uses.
struct TaskDataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task-data",
        abstract: "Print the run config's RL training prompts as JSONL, or with --sft SFT examples from the task's sft split.")

    @OptionGroup var configOptions: ClusterConfigOptions

    @Option(name: .customLong("n"), help: "Number of lines (at most the task's train prompts).")
    var count: Int = 1000

    @Flag(help: "Print SFT examples (prompt and correct completion) instead of prompt records.")
    var sft = false

    func run() async throws {
        let config = try configOptions.load()
        let task = try ClusterTask(config: config, trainPromptCount: max(count, 1))
        for p in sft ? try task.sftPrompts(count: count) : Array(task.trainPrompts.prefix(count)) {
            print(sft ? SFTExample(prompt: p.prompt, completion: p.answer).jsonLine : p.jsonLine)
        }
    }
}
