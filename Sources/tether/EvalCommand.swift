import ArgumentParser
import Foundation
import TetherCluster
import TetherModel
import TetherRewards

/// `tether eval`: accuracy of a checkpoint, as one JSON object on stdout — on a run config's
/// held-out problems (`--config`, what `tether train` and the cluster measure) or on a prompts
/// JSONL (`--data`).
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Accuracy of a checkpoint on a run config's held-out problems (--config) or on a prompts JSONL (--data).",
        discussion: """
        --config FILE: the config's task, held-out split (problems no training prompt can be, by \
        hash), every distinct problem once up to --n, framed and scored exactly as training does. \
        --data F.jsonl: one {"prompt", "answer"} object per line (`tether tasks export` writes such \
        files), each prompt rendered through the checkpoint's chat template when it has one and the \
        answer read as --extract says. --checkpoint takes a model directory, a checkpoint step-N or \
        a run directory (its latest checkpoint). Prints {"accuracy", "correct", "mean_reward", "n", \
        "pass_at_k", "samples", "temperature"}: accuracy is the mean over all n × samples \
        completions, pass_at_k the fraction of problems with a correct one among their samples; \
        --temperature 0 (the default) is one greedy completion per problem.
        """)

    @Option(help: "Run configuration YAML: evaluate its task's held-out split.")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one config key (repeatable; with --config).")
    var overrides: [String] = []

    @Option(help: "Model directory, checkpoint step-N or run directory (default with --config: model.checkpoint).")
    var checkpoint: String?

    @Option(help: "Prompts JSONL with prompt and answer fields.")
    var data: String?

    @Option(help: "Answer extraction for --data: \(Extraction.allCases.map(\.rawValue).joined(separator: ", ")).")
    var extract: Extraction = .lastInteger

    @Option(help: "Problems to evaluate, each once (default: with --config up to 500 distinct held-out problems, with --data every line).")
    var n: Int?

    @Option(help: "Samples per problem (needs --temperature > 0 when > 1).")
    var samples: Int = 1

    @Option(help: "Sampling temperature; 0 = greedy.")
    var temperature: Float = 0

    @Option(help: "Longest completion (default: rollout.max_new_tokens with --config, else 8).")
    var maxNewTokens: Int?

    @Option(help: "Seed of the sampling.")
    var seed: UInt64 = 0

    @OptionGroup var blas: BLASThreadOption

    /// How `--data` completions are read (`AnswerFormat`: where the answer is, what counts as it).
    enum Extraction: String, ExpressibleByArgument, CaseIterable {
        case boxed, tagged, bare
        case lastInteger = "last-integer"

        var format: AnswerFormat {
            switch self {
            case .boxed: return .boxed
            case .tagged: return .tagged
            case .bare: return .bare
            case .lastInteger: return .lastInteger
            }
        }
    }

    func validate() throws {
        guard (config == nil) != (data == nil) else { throw ValidationError("give either --config FILE.yaml or --data FILE.jsonl") }
        guard config != nil || checkpoint != nil else { throw ValidationError("--data needs --checkpoint DIR") }
        guard overrides.isEmpty || config != nil else { throw ValidationError("--set applies to --config") }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0") }
        guard samples == 1 || temperature > 0 else { throw ValidationError("--samples > 1 needs --temperature > 0 (greedy decoding gives one answer)") }
        guard (maxNewTokens ?? 1) >= 1 else { throw ValidationError("--max-new-tokens must be at least 1") }
        guard (n ?? 1) >= 1 else { throw ValidationError("--n must be at least 1") }
    }

    func run() async throws {
        blas.apply()
        let c: RunConfig?
        do { c = try config.map { try RunConfig.load(contentsOf: URL(fileURLWithPath: $0), overrides: overrides) } } catch let e as ConfigError {
            throw ValidationError("\(e)")
        }
        let (model, ckpt) = try LlamaModel.load(from: try RunCheckpoint.modelDirectory(checkpoint ?? c!.model.checkpoint))
        let result: PolicyEvaluation
        if let c {
            let task = try RunTask(config: c, tokenizer: ckpt.tokenizer)
            let prompts = try task.heldOutPrompts(count: n ?? 500)
            if let n, prompts.count < n {
                FileHandle.standardError.write(Data("eval: task \(task.name) has \(prompts.count) distinct held-out problems; each is evaluated once\n".utf8))
            }
            result = try task.evaluate(model: model, prompts: prompts, samples: samples, temperature: temperature,
                                       maxNewTokens: maxNewTokens ?? c.rollout.maxNewTokens, seed: seed,
                                       scorer: try RunTask.evaluationScorer(config: c))
        } else {
            let verifier = IntegerAnswerVerifier.correct(extract.format)
            let prompts = try TaskPrompt.load(path: data!, tokenizer: ckpt.tokenizer)
            result = try PolicyEvaluator.evaluate(
                model: model, tokenizer: ckpt.tokenizer, prompts: Array(prompts.prefix(n ?? prompts.count)), verifier: { _ in verifier },
                samples: samples, temperature: temperature, maxNewTokens: maxNewTokens ?? 8, seed: seed)
        }
        print(try result.json())
    }
}
