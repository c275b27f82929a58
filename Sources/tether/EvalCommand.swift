import ArgumentParser
import Foundation
import TetherModel
import TetherRewards

/// `tether eval`: accuracy of a checkpoint on a prompts JSONL, as one JSON object on stdout.
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy and mean reward of a checkpoint on {\"prompt\" or \"messages\", \"answer\"} JSONL.",
        discussion: """
        Each prompt is rendered through the checkpoint's chat template when it has one, and scored by \
        the exact answer read as --extract says (`tether tasks export` writes such files). Prints {"accuracy", "mean_reward", "n", "samples", "temperature"}: with --temperature 0 \
        (the default) one greedy completion per prompt; with --samples K > 1 and a temperature, \
        accuracy is pass@1 estimated from K samples per prompt (the mean fraction correct).
        """)

    @Option(help: "Checkpoint directory.")
    var checkpoint: String

    @Option(help: "Prompts JSONL.")
    var data: String

    @Option(help: "Samples per prompt (needs --temperature > 0 when > 1).")
    var samples: Int = 1

    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature: Float = 0

    @Option(help: "Longest completion.")
    var maxNewTokens: Int = 8

    @Option(help: "Seed of the sampling.")
    var seed: UInt64 = 0

    @Option(help: "Where the answer is read: last-integer (the last number), boxed (\\boxed{…}), tagged (<answer>…</answer>) or bare (the leading integer, the toy's format).")
    var extract: String = AnswerFormat.lastInteger.rawValue

    @OptionGroup var blas: BLASThreadOption

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0") }
        guard samples == 1 || temperature > 0 else { throw ValidationError("--samples > 1 needs --temperature > 0 (greedy decoding gives one answer)") }
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1") }
        guard AnswerFormat(rawValue: extract) != nil else {
            throw ValidationError("--extract must be one of \(AnswerFormat.allCases.map(\.rawValue).joined(separator: ", ")), got '\(extract)'")
        }
    }

    func run() async throws {
        blas.apply()
        let (model, ckpt) = try LlamaModel.load(from: checkpoint)
        let prompts = try TaskPrompt.load(path: data, tokenizer: ckpt.tokenizer)
        let verifier = IntegerAnswerVerifier.correct(AnswerFormat(rawValue: extract) ?? .lastInteger)
        let result = try PolicyEvaluator.evaluate(
            model: model, tokenizer: ckpt.tokenizer, prompts: prompts,
            verifier: { _ in verifier },
            samples: samples, temperature: temperature, maxNewTokens: maxNewTokens, seed: seed)
        print(try result.json())
    }
}
