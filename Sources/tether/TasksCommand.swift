import ArgumentParser
import Foundation
import TetherCluster
import TetherModel
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
            discussion: """
                Problems are split by a hash of the problem into train (RL prompts, 30%), sft (50%) and heldout (20%), \
                disjoint for every n and seed. The same seed gives the same lines. --sft prints SFT examples from the sft \
                split unless --split says otherwise (never heldout). --config FILE instead of --task prints the run \
                config's task exactly as `tether train` and the cluster draw it (task.name, run.seed, task.rl_prompts; \
                train: the RL prompts, heldout: the distinct held-out problems), so an SFT warm start or an \
                evaluation sees the run's prompt format and splits.
                """)

        @Option(help: "Task: \(TaskCatalog.names.joined(separator: ", ")).") var task: String?
        @Option(help: "Run configuration YAML: export its task instead of --task.") var config: String?
        @Option(name: .customLong("set"), help: "Override one config key (repeatable; with --config).") var overrides: [String] = []
        @Option(help: "train, heldout or sft (default: train for prompts, sft with --sft).") var split: String?
        @Option(name: .customLong("n"), help: "Number of lines.") var count: Int
        @Option(help: "Random seed.") var seed: UInt64 = 0
        @Option(help: "Difficulty level (arithmetic 1...5, default 3; sequence 1...4, default 2).") var level: Int?
        @Option(help: "Answer format: bare (the integer) or tagged (<think>…</think><answer>…</answer>).") var format: String = "bare"
        @Flag(help: "Print SFT examples (prompt and correct completion) instead of RL prompts.") var sft = false

        func run() throws {
            let splitName = split ?? (sft ? "sft" : "train")
            guard let split = DatasetSplit(rawValue: splitName) else {
                throw ValidationError("--split must be train, heldout or sft, got '\(splitName)'")
            }
            guard let format = AnswerFormat(rawValue: format) else {
                throw ValidationError("--format must be bare or tagged, got '\(self.format)'")
            }
            guard count >= 0 else { throw ValidationError("--n must be ≥ 0") }
            guard (task == nil) != (config == nil) else { throw ValidationError("give either --task NAME or --config FILE.yaml") }
            let lines: [String]
            if let config {
                guard !(sft && split == .heldout) else { throw ValidationError("SFT examples from the held-out split would leak the evaluation set") }
                let c: RunConfig
                do { c = try RunConfig.load(contentsOf: URL(fileURLWithPath: config), overrides: overrides) } catch let e as ConfigError {
                    throw ValidationError("\(e)")
                }
                let run = try RunTask(config: c, trainPromptCount: max(count, 1))
                let prompts: [TaskPrompt]
                switch split {
                case .train: prompts = Array(run.trainPrompts.prefix(count))
                case .sft: prompts = try run.sftPrompts(count: count)
                case .heldout: prompts = try run.heldOutPrompts(count: count)
                }
                lines = prompts.map { sft ? SFTExample(prompt: $0.prompt, completion: $0.answer).jsonLine : $0.jsonLine }
            } else {
                let generator = try TaskCatalog.generator(named: task!, level: level, answerFormat: format)
                lines = sft
                    ? try TaskDataset.sft(generator, split: split, count: count, seed: seed).map(\.jsonLine)
                    : try TaskDataset.prompts(generator, split: split, count: count, seed: seed).map(\.jsonLine)
            }
            var out = lines.joined(separator: "\n")
            if !lines.isEmpty { out += "\n" }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}
