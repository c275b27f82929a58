import Foundation
import TetherKernels
import TetherModel
import TetherRewards
import TetherWire

/// The task of a run, from the `task` section of a `RunConfig`, as `tether train`, the learner,
/// every actor and `tether eval --config` see it. All of them derive the prompt lists
/// deterministically from the config (task, seed), so answers never travel on the wire, a restarted
/// process sees the same data order, and the two drivers train and evaluate on the same problems:
///
/// - training prompts: the built-in generator's RL splits (`task.rl_prompts`), or the JSONL file
///   without its held-out problems;
/// - held-out prompts: the distinct problems of the held-out split (by problem hash, `DatasetSplit`);
/// - draw index p (the learner's data cursor, `tether train`'s step × batch + i) maps to
///   `trainPrompts[perm_epoch(p mod N)]`.
public struct RunTask: Sendable {
    public let name: String
    /// The policy checkpoint's tokenizer (`model.checkpoint`), else the built-in character vocabulary.
    public let tokenizer: Tokenizer
    /// The configured verifier reward (`task.extract`, `task.*_weight`: correct, format and length
    /// components); accuracy is its `correct` component (`RewardBreakdown.isCorrect`), whatever the
    /// training reward.
    public let verifier: any Verifier
    /// The version every sample scored by `verifier` carries (`TrajectorySample.rewardVersion`):
    /// `verifierRewardVersion(taskName:spec:)` of this config.
    public let rewardVersion: String
    /// The training split's prompts.
    public let trainPrompts: [TaskPrompt]
    public let maxPromptTokens: Int
    public let seed: UInt64
    public let shuffle: Bool
    let generator: (any TaskGenerator)?
    /// JSONL tasks: the file's held-out problems.
    let heldOutPool: [TaskPrompt]

    /// Built-in names: `addition` (up to two-digit a+b), `arithmetic[:level]`, `sequence[:level]`
    /// (TetherRewards' generators and their difficulty levels), or `jsonl` (task.dataset_path).
    public static let builtinNames = ["addition"] + TaskCatalog.names + ["jsonl"]

    /// `tokenizer`: the evaluated checkpoint's, when it is not `model.checkpoint` (default: `tokenizer(config)`).
    public init(config: RunConfig, trainPromptCount: Int = 4096, tokenizer: Tokenizer? = nil) throws {
        let t = config.task
        name = t.name
        self.tokenizer = try tokenizer ?? RunTask.tokenizer(config)
        maxPromptTokens = t.maxPromptTokens
        seed = UInt64(truncatingIfNeeded: config.run.seed)
        shuffle = t.shuffle
        let spec = try t.rewardSpec()
        verifier = spec.makeVerifier()
        rewardVersion = RunTask.verifierRewardVersion(taskName: t.name, spec: spec)
        if let g = try RunTask.generator(named: t.name, answerFormat: t.extract) {
            generator = g
            // RL prompts from the splits `task.rl_prompts` names; never the held-out split.
            trainPrompts = try TaskDataset.prompts(g, split: .train, count: trainPromptCount, seed: seed)
                + (t.rlPrompts == .trainAndSFT ? TaskDataset.prompts(g, split: .sft, count: trainPromptCount, seed: seed &+ 3) : [])
            heldOutPool = []
        } else {
            generator = nil
            let all = try TaskPrompt.load(path: t.datasetPath, promptField: t.promptField, answerField: t.answerField, tokenizer: self.tokenizer)
            // Held out by problem hash, the same rule as the built-in generators.
            trainPrompts = all.filter { DatasetSplit.of(task: $0.task, prompt: $0.prompt) != .heldout }
            heldOutPool = RunTask.distinct(all.filter { DatasetSplit.of(task: $0.task, prompt: $0.prompt) == .heldout })
        }
        guard !trainPrompts.isEmpty else {
            throw ConfigError.invalidValue(path: "task.name", reason: "task \(t.name) has no training prompts")
        }
    }

    /// The generator behind a built-in `task.name` (`TaskCatalog.generator(spec:)`: `arithmetic:1`,
    /// `arithmetic:2`, `arithmetic:mixed`, `arithmetic:word`, `sequence`, …; `arithmetic-1` is
    /// accepted too), nil for `jsonl`; its chat prompts ask for `answerFormat`.
    public static func generator(named name: String, answerFormat: AnswerFormat = RunConfig.defaults.task.extract) throws -> (any TaskGenerator)? {
        guard name != "jsonl" else { return nil }
        do { return try TaskCatalog.generator(spec: name, answerFormat: answerFormat) } catch let e as TaskError {
            throw ConfigError.invalidValue(path: "task.name", reason: "\(e); expected one of \(builtinNames.joined(separator: ", ")) (a level may follow a colon: arithmetic:2, arithmetic:mixed, arithmetic:word)")
        }
    }

    /// Up to `count` distinct held-out problems, each once: fewer when the split has fewer (one-digit
    /// addition: its 100 pairs, in the held-out phrasing), so an accuracy is never weighted by
    /// silently repeated problems.
    public func heldOutPrompts(count: Int) throws -> [TaskPrompt] {
        guard let generator else { return Array(heldOutPool.prefix(count)) }
        return Array(RunTask.distinct(try TaskDataset.prompts(generator, split: .heldout, count: count, seed: seed &+ 1)).prefix(count))
    }

    /// Supervised warm-start problems from the task's `sft` split (disjoint from the RL train split
    /// and from the held-out one); for `jsonl` the training prompts themselves.
    public func sftPrompts(count: Int) throws -> [TaskPrompt] {
        if let generator { return try TaskDataset.prompts(generator, split: .sft, count: count, seed: seed &+ 2) }
        return Array(trainPrompts.prefix(count))
    }

    /// The prompt behind draw index `id`: epoch ⌊id/N⌋ visits every prompt once, in a seeded
    /// permutation when `task.shuffle` is on.
    public func prompt(for id: PromptID) -> TaskPrompt {
        let n = trainPrompts.count
        let epoch = id / n, index = id % n
        guard shuffle else { return trainPrompts[index] }
        return trainPrompts[RunTask.permutation(n, seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)[index]]
    }

    /// The prompt as the tokenizer frames it (`<bos> prompt` for the built-in vocabulary, the chat
    /// messages through the template for an instruct checkpoint: `TaskPrompt.promptIds`), keeping
    /// the last `maxPromptTokens` tokens (the SFT format without the completion).
    public func promptTokens(_ prompt: TaskPrompt) throws -> [Int] {
        let tokens = try prompt.promptIds(tokenizer)
        return Array(tokens.suffix(maxPromptTokens))
    }

    /// `verifier-` and the first 12 hex digits of the XXH64 of the task name and the reward's
    /// canonical settings (`RewardSpec.canonicalDescription`): the same for every process of a run
    /// (no per-process hash seed), different as soon as a weight, the extraction mode, the length
    /// ramp, the task or the built-in rules differ.
    public static func verifierRewardVersion(taskName: String, spec: RewardSpec) -> String {
        let digest = WireChecksum.xxh64(Array("task=\(taskName);\(spec.canonicalDescription)".utf8))
        let hex = String(digest, radix: 16)
        return "verifier-" + String((String(repeating: "0", count: 16 - hex.count) + hex).prefix(12))
    }

    /// The verifier's reward for sampled tokens (everything after `<eos>` is ignored).
    public func score(completionTokens: [Int], for prompt: TaskPrompt) throws -> RewardBreakdown {
        try verifier.checkedScore(completion: try PolicyEvaluator.text(of: completionTokens, tokenizer: tokenizer), for: prompt)
    }

    /// Accuracy of `model` on `prompts` as every driver measures it: prompts framed by
    /// `promptTokens`, completions correct by the verifier's `correct` component (`PolicyEvaluator`).
    public func evaluate(model: LlamaModel, prompts: [TaskPrompt], samples: Int = 1, temperature: Float = 0,
                         maxNewTokens: Int, seed: UInt64 = 0) throws -> PolicyEvaluation {
        try PolicyEvaluator.evaluate(model: model, tokenizer: tokenizer, prompts: prompts, verifier: { _ in verifier },
                                     samples: samples, temperature: temperature, maxNewTokens: maxNewTokens, seed: seed,
                                     promptTokens: promptTokens)
    }

    /// The tokenizer of `model.checkpoint` when it exists here, else the built-in character
    /// vocabulary (what a base made from the `model:` section is written with).
    public static func tokenizer(_ config: RunConfig) throws -> Tokenizer {
        let path = config.model.checkpoint
        if !path.isEmpty && FileManager.default.fileExists(atPath: path) { return try Tokenizer.read(from: path) }
        return .standard
    }

    static func distinct(_ prompts: [TaskPrompt]) -> [TaskPrompt] {
        var seen = Set<String>()
        return prompts.filter { seen.insert($0.prompt).inserted }
    }

    static func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, rng.int(in: 0...i)) } }
        return p
    }
}
