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
            // A reward service judges answers itself, so they pass through as written (7/2, 0.5,
            // \frac{1}{3}); the built-in verifiers compare integers and get only those.
            let all = try TaskPrompt.load(path: t.datasetPath, promptField: t.promptField, answerField: t.answerField,
                                          answers: config.task.reward == .service ? .text : .integer, tokenizer: self.tokenizer)
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
    /// messages through the template for an instruct checkpoint: `TaskPrompt.promptIds`; the SFT
    /// format without the completion). A prompt longer than `task.max_prompt_tokens` is an error
    /// (`checkPromptLengths` finds them all at start), never cut: see there.
    public func promptTokens(_ prompt: TaskPrompt) throws -> [Int] {
        let tokens = try prompt.promptIds(tokenizer)
        guard tokens.count <= maxPromptTokens else {
            throw ConfigError.invalidValue(path: "task.max_prompt_tokens",
                                           reason: "prompt '\(prompt.id)' is \(tokens.count) tokens, more than task.max_prompt_tokens \(maxPromptTokens)")
        }
        return tokens
    }

    /// Throws when any of `prompts` (`what`: "training", "held-out") is longer than
    /// `task.max_prompt_tokens`, with how many are, the longest and the value that would fit them.
    ///
    /// An error rather than truncation or a silent drop, as `tether train` and verl's dataset
    /// (`truncation: error`, its default) do: a prompt cut to its last tokens loses its beginning —
    /// the system turn, the start of the question — so the policy would be trained on a problem
    /// other than the one its answer is scored against, and dropping prompts would change the task's
    /// problem set behind the user's back. The run stops at start, before any process is busy.
    public func checkPromptLengths(_ prompts: [TaskPrompt], what: String) throws {
        var overlong = 0
        var longest: (id: String, tokens: Int)?
        for p in prompts {
            let n = try p.promptIds(tokenizer).count
            guard n > maxPromptTokens else { continue }
            overlong += 1
            if n > longest?.tokens ?? 0 { longest = (p.id, n) }
        }
        guard let longest else { return }
        throw ConfigError.invalidValue(
            path: "task.max_prompt_tokens",
            reason: "\(overlong) of \(prompts.count) \(what) prompts are longer than task.max_prompt_tokens \(maxPromptTokens) (the longest, '\(longest.id)', is \(longest.tokens) tokens); prompts are never truncated: set task.max_prompt_tokens to at least \(longest.tokens) or shorten the prompts")
    }

    /// `verifier-` and the first 12 hex digits of the XXH64 of the task name and the reward's
    /// canonical settings (`RewardSpec.canonicalDescription`): the same for every process of a run
    /// (no per-process hash seed), different as soon as a weight, the extraction mode, the length
    /// ramp, the task or the built-in rules differ.
    public static func verifierRewardVersion(taskName: String, spec: RewardSpec) -> String {
        "verifier-" + hex12(WireChecksum.xxh64(Array("task=\(taskName);\(spec.canonicalDescription)".utf8)))
    }

    /// The first 12 of a 64-bit digest's 16 hex digits (48 bits: collisions between the versions of
    /// one run are out of reach, and the string stays short enough for a log line).
    static func hex12(_ digest: UInt64) -> String {
        let hex = String(digest, radix: 16)
        return String((String(repeating: "0", count: 16 - hex.count) + hex).prefix(12))
    }

    /// The ids a sampled completion ends at: the tokenizer's `<eos>` and, when the checkpoint has a
    /// chat template, the chat format's end-of-turn ids (`ChatFormat.endOfTurnIds`: the model
    /// config's `eos_token_id` list, as `transformers`' `generate` stops on). An instruct model
    /// closes its turn with `<|im_end|>` or `<|eot_id|>`, which need not be the tokenizer's eos; a
    /// sampler that ignored it would write past the turn into text no one asked for and score it.
    public func stopTokenIds(model: LlamaConfig) throws -> [Int] {
        var ids = tokenizer.eosId.map { [$0] } ?? []
        if tokenizer.chatTemplate != nil {
            for id in try ChatFormat(tokenizer: tokenizer).endOfTurnIds(model) where !ids.contains(id) { ids.append(id) }
        }
        return ids
    }

    /// What an actor samples a ticket with: the ticket's settings, stopping at `stopTokenIds` and
    /// at any stop token the ticket adds.
    public func samplingParameters(_ s: SamplingSettings, model: LlamaConfig) throws -> SamplingParameters {
        var stops = try stopTokenIds(model: model)
        for t in s.stopTokens where !stops.contains(Int(t)) { stops.append(Int(t)) }
        return SamplingParameters(temperature: s.temperature, topK: Int(s.topK), topP: s.topP, eosTokenId: tokenizer.eosId,
                                  stopTokenIds: stops)
    }

    /// The verifier's reward for sampled tokens (everything after `<eos>` is ignored).
    public func score(completionTokens: [Int], for prompt: TaskPrompt) throws -> RewardBreakdown {
        try verifier.checkedScore(completion: try PolicyEvaluator.text(of: completionTokens, tokenizer: tokenizer), for: prompt)
    }

    /// Accuracy of `model` on `prompts` as every driver measures it: prompts framed by
    /// `promptTokens`, completions correct by the `correct` component (`PolicyEvaluator`) of
    /// `scorer` (`evaluationScorer(config:)`), by default the task's verifier.
    public func evaluate(model: LlamaModel, prompts: [TaskPrompt], samples: Int = 1, temperature: Float = 0,
                         maxNewTokens: Int, seed: UInt64 = 0, scorer: (any Verifier)? = nil) throws -> PolicyEvaluation {
        let v = scorer ?? verifier
        return try PolicyEvaluator.evaluate(model: model, tokenizer: tokenizer, prompts: prompts, verifier: { _ in v },
                                            samples: samples, temperature: temperature, maxNewTokens: maxNewTokens, seed: seed,
                                            promptTokens: promptTokens)
    }

    /// What held-out evaluations of a run score with, so accuracy is measured by the reward the run
    /// trains on: nil (the task's verifier) unless `task.reward` is `service`, then one worker of
    /// `task.reward_service.command` (`RewardServiceVerifier`; started by its first request, with
    /// the configured timeouts and attempts). A reward model gives no accuracy of its own: its runs
    /// keep the verifier's.
    public static func evaluationScorer(config: RunConfig) throws -> (any Verifier)? {
        guard config.task.reward == .service else { return nil }
        var options = config.task.rewardService.options
        options.workers = 1
        return try RewardServiceVerifier(options: options)
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
