import ArgumentParser
import Foundation
import TetherKernels
import TetherModel
import TetherRL
import TetherRewards

/// `tether rm …`: reward models (Bradley–Terry on preference pairs).
struct RewardModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Reward models: train on preference pairs, export the built-in synthetic preference set.",
        subcommands: [Train.self, Export.self])

    struct Train: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a reward model with the Bradley–Terry loss on {\"prompt\",\"chosen\",\"rejected\"} JSONL.",
            discussion: """
            The reward model is the policy architecture with a scalar head (score.weight, [1, hidden]) \
            read at the last token of <bos> prompt completion <eos>. It starts from --checkpoint (the \
            InstructGPT choice: the SFT policy) or, without one, from a fresh tiny model. About 20 % of \
            the prompts (chosen by a hash of the prompt text, so every pair of a prompt goes the same \
            way) are kept out of training; their pair accuracy (fraction with r(chosen) > r(rejected)) \
            is printed before and after, as JSON on stdout. --out receives \
            the backbone checkpoint plus value_head.safetensors, which tether train reads as \
            task.reward_model_path and a PPO critic can start from.
            """)

        @Option(help: "Preference JSONL (tether rm export writes the built-in set).") var data: String
        @Option(help: "Reward-model directory to write.") var out: String
        @Option(help: "Checkpoint to start the backbone from (default: a fresh tiny model).") var checkpoint: String?
        @Option(help: "Optimizer steps.") var steps: Int = 400
        @Option(help: "Pairs per step.") var batchSize: Int = 32
        @Option(help: "Learning rate.") var lr: Float = 1e-3
        @Option(help: "Seed.") var seed: UInt64 = 0
        @OptionGroup var blas: BLASThreadOption

        func run() async throws {
            blas.apply()
            let examples = try PreferenceDataset.load(path: data)
            let backbone: LlamaModel, tokenizer: Tokenizer
            if let checkpoint {
                let (m, c) = try LlamaModel.load(from: checkpoint)
                backbone = m; tokenizer = c.tokenizer
            } else {
                tokenizer = .standard
                var config = LlamaConfig.tiny
                config.bosTokenId = CharTokenizer.standard.bosId; config.eosTokenId = CharTokenizer.standard.eosId
                backbone = try LlamaModel(config: config, seed: seed)
            }
            let model = ScalarHeadModel(backbone: backbone, seed: seed)
            func pair(_ e: PreferenceExample) throws -> PreferencePair {
                let p = try tokenizer.taskPromptIds(e.prompt)
                return PreferencePair(chosen: p + (try tokenizer.completionIds(e.chosen)),
                                      rejected: p + (try tokenizer.completionIds(e.rejected)))
            }
            var train: [PreferencePair] = [], heldOut: [PreferencePair] = []
            for e in examples {
                let split = DatasetSplit.of(task: "preference", prompt: e.prompt)
                if split == .heldout { heldOut.append(try pair(e)) } else { train.append(try pair(e)) }
            }
            guard !train.isEmpty else { throw ValidationError("\(data): every pair fell in the held-out split; give more pairs") }
            let trainer = RewardModelTrainer(model: model, options: RewardModelOptions(steps: steps, batchSize: batchSize, learningRate: lr, seed: seed),
                                             padToken: tokenizer.paddingId)
            let err = FileHandle.standardError
            err.write(Data("rm: \(train.count) training pairs, \(heldOut.count) held out; \(steps) steps of \(batchSize)\n".utf8))
            let before = try trainer.evaluate(heldOut)
            let start = Date()
            try trainer.train(train) { s, loss, acc in
                if s % max(1, steps / 10) == 0 || s == steps {
                    err.write(Data(String(format: "rm: step %d/%d  loss %.4f  batch pair accuracy %.3f\n", s, steps, loss, acc).utf8))
                }
            }
            let after = try trainer.evaluate(heldOut)
            let state = TrainerState(trainer: "reward-model", step: trainer.step, totalSteps: steps, seed: seed,
                                     metrics: ["held_out_pair_accuracy": after.accuracy, "held_out_loss": after.loss])
            try model.save(to: out, tokenizer: tokenizer, trainerState: state)
            err.write(Data(String(format: "rm: done in %.0f s; wrote ", Date().timeIntervalSince(start)).utf8) + Data("\(out)\n".utf8))
            print(String(format: "{\"held_out_pair_accuracy\": %.4f, \"held_out_pair_accuracy_before\": %.4f, \"held_out_loss\": %.4f, \"n_held_out\": %d, \"n_train\": %d}",
                         after.accuracy, before.accuracy, after.loss, heldOut.count, train.count))
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the built-in synthetic preference set: chosen = the correct answer, rejected = a wrong one.")
        @Option(help: "Task: \(TaskCatalog.names.joined(separator: ", ")).") var task: String = "arithmetic"
        @Option(help: "Difficulty level.") var level: Int?
        @Option(name: .customLong("n"), help: "Pairs.") var count: Int = 4000
        @Option(help: "Seed.") var seed: UInt64 = 0
        @Option(help: "Task split the problems come from: sft (default: disjoint from the RL prompts and the held-out problems), train or heldout.")
        var split: String = "sft"

        func run() throws {
            guard let split = DatasetSplit(rawValue: split) else { throw ValidationError("--split must be sft, train or heldout") }
            let g = try TaskCatalog.generator(named: task, level: level)
            let pairs = try PreferenceDataset.synthetic(g, split: split, count: count, seed: seed)
            FileHandle.standardOutput.write(Data(pairs.map { $0.jsonLine + "\n" }.joined().utf8))
        }
    }
}
