import ArgumentParser
import Foundation
import TetherRewards

/// `tether tasks …`: the built-in tasks as JSONL, for RL prompts (`export`) and SFT sets (`export --sft`).
struct TasksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "Built-in tasks (arithmetic, sequence): export prompts or SFT examples as JSONL.",
        subcommands: [Export.self]
    )

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print N problems of one split as JSONL: {\"id\",\"task\",\"prompt\",\"answer\"}, or {\"prompt\",\"completion\"} with --sft.",
            discussion: "Train and held-out problems are disjoint for every n and seed (split by a hash of the problem). The same seed gives the same lines.")

        @Option(help: "Task: \(TaskCatalog.names.joined(separator: ", ")).") var task: String
        @Option(help: "train or heldout.") var split: String = "train"
        @Option(name: .customLong("n"), help: "Number of lines.") var count: Int
        @Option(help: "Random seed.") var seed: UInt64 = 0
        @Option(help: "Difficulty level (arithmetic 1...5, default 3; sequence 1...4, default 3).") var level: Int?
        @Option(help: "Answer format: bare (the integer) or tagged (<think>…</think><answer>…</answer>).") var format: String = "bare"
        @Flag(help: "Print SFT examples (prompt and correct completion) instead of RL prompts.") var sft = false

        func run() throws {
            guard let split = DatasetSplit(rawValue: split) else {
                throw ValidationError("--split must be train or heldout, got '\(self.split)'")
            }
            guard let format = AnswerFormat(rawValue: format) else {
                throw ValidationError("--format must be bare or tagged, got '\(self.format)'")
            }
            guard count >= 0 else { throw ValidationError("--n must be ≥ 0") }
            let generator = try TaskCatalog.generator(named: task, level: level, answerFormat: format)
            let lines: [String] = sft
                ? try TaskDataset.sft(generator, split: split, count: count, seed: seed).map(\.jsonLine)
                : try TaskDataset.prompts(generator, split: split, count: count, seed: seed).map(\.jsonLine)
            var out = lines.joined(separator: "\n")
            if !lines.isEmpty { out += "\n" }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}
