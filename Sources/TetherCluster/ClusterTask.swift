import Foundation
import TetherModel
import TetherRewards

/// The task as both sides of a cluster see it: the learner maps a ticket's prompt ids (draw indices
/// of the data cursor) to prompts, and an actor maps the same ids back to the reference answers its
/// verifier needs. Both derive the prompt list deterministically from the config (task, seed), so
/// answers never travel on the wire and a restarted process sees the same data order.
public struct ClusterTask: Sendable {
    public let name: String
    /// The policy checkpoint's tokenizer (`model.checkpoint`), else the built-in character vocabulary.
    public let tokenizer: Tokenizer
    public let verifier: any Verifier
    /// The training split's prompts; draw index p maps to `trainPrompts[perm_epoch(p mod N)]`.
    public let trainPrompts: [TaskPrompt]
    public let maxPromptTokens: Int
    public let seed: UInt64
    public let shuffle: Bool
    let generator: (any TaskGenerator)?

    /// Built-in names: `addition` (up to two-digit a+b), `arithmetic[:level]`, `sequence[:level]`
    /// (TetherRewards' generators and their difficulty levels), or `jsonl` (task.dataset_path).
    public static let builtinNames = ["addition"] + TaskCatalog.names + ["jsonl"]

    public init(config: RunConfig, trainPromptCount: Int = 4096) throws {
        let t = config.task
        name = t.name
        tokenizer = try ClusterTask.tokenizer(config)
        maxPromptTokens = t.maxPromptTokens
        seed = UInt64(truncatingIfNeeded: config.run.seed)
        shuffle = t.shuffle
        verifier = try t.rewardSpec().makeVerifier()
        if let g = try ClusterTask.generator(named: t.name, answerFormat: t.extract) {
            generator = g
            trainPrompts = try ClusterTask.rlPrompts(g, source: t.rlPrompts, count: trainPromptCount, seed: seed)
        } else {
            generator = nil
            trainPrompts = try TaskPrompt.load(path: t.datasetPath, promptField: t.promptField, answerField: t.answerField, tokenizer: tokenizer)
        }
        guard !trainPrompts.isEmpty else { throw TaskError.invalidSetting("task \(t.name) has no training prompts") }
    }

    /// The generator behind a built-in `task.name` (`TaskCatalog.generator(spec:)`: `arithmetic:1`,
    /// `arithmetic:2`, `arithmetic:mixed`, `arithmetic:word`, `sequence`, …), nil for `jsonl`; its chat
    /// prompts ask for `answerFormat`. The cluster and `tether train` both resolve names here.
    public static func generator(named name: String, answerFormat: AnswerFormat = RunConfig.defaults.task.extract) throws -> (any TaskGenerator)? {
        guard name != "jsonl" else { return nil }
        do { return try TaskCatalog.generator(spec: name, answerFormat: answerFormat) } catch let e as TaskError {
            throw ConfigError.invalidValue(path: "task.name", reason: "\(e); expected one of \(builtinNames.joined(separator: ", ")) (a level may follow a colon: arithmetic:2, arithmetic:mixed, arithmetic:word)")
        }
    }

    /// RL prompts from the splits `task.rl_prompts` names; never the held-out split.
    public static func rlPrompts(_ g: any TaskGenerator, source: RLPromptSource, count: Int, seed: UInt64) throws -> [TaskPrompt] {
        let train = try TaskDataset.prompts(g, split: .train, count: count, seed: seed)
        guard source == .trainAndSFT else { return train }
        return train + (try TaskDataset.prompts(g, split: .sft, count: count, seed: seed &+ 3))
    }

    /// Held-out prompts (the split the generators never train on); for `jsonl` the last 10 % of the file.
    public func heldOutPrompts(count: Int) throws -> [TaskPrompt] {
        if let generator { return try TaskDataset.prompts(generator, split: .heldout, count: count, seed: seed &+ 1) }
        return Array(trainPrompts.suffix(max(1, min(count, trainPrompts.count / 10))))
    }

    /// Supervised warm-start problems from the task's `sft` split (disjoint from the RL train split
    /// and from the held-out one); for `jsonl` the training prompts themselves.
    public func sftPrompts(count: Int) throws -> [TaskPrompt] {
        if let generator { return try TaskDataset.prompts(generator, split: .sft, count: count, seed: seed &+ 2) }
        return Array(trainPrompts.prefix(count))
    }

    /// The prompt behind draw index `id` of the data cursor: epoch ⌊id/N⌋ visits every prompt once,
    /// in a seeded permutation when `task.shuffle` is on.
    public func prompt(for id: PromptID) -> TaskPrompt {
        let n = trainPrompts.count
        let epoch = id / n, index = id % n
        guard shuffle else { return trainPrompts[index] }
        return trainPrompts[ClusterTask.permutation(n, seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)[index]]
    }

    /// The prompt as the tokenizer frames it (`<bos> prompt` for the built-in vocabulary, the chat
    /// messages through the template for an instruct checkpoint: `TaskPrompt.promptIds`), keeping
    /// the last `maxPromptTokens` tokens (the SFT format without the completion).
    public func promptTokens(_ prompt: TaskPrompt) throws -> [Int] {
        let tokens = try prompt.promptIds(tokenizer)
        return Array(tokens.suffix(maxPromptTokens))
    }

    /// The verifier's reward for sampled tokens (everything after `<eos>` is ignored).
    public func score(completionTokens: [Int], for prompt: TaskPrompt) throws -> RewardBreakdown {
        var tokens = completionTokens
        if let eos = tokenizer.eosId.flatMap({ tokens.firstIndex(of: $0) }) { tokens = Array(tokens[..<eos]) }
        let text = (try? tokenizer.decode(tokens)) ?? ""
        return try verifier.checkedScore(completion: text, for: prompt)
    }

    /// The tokenizer of `model.checkpoint` when it exists here, else the built-in character
    /// vocabulary (what the learner writes into a base checkpoint it makes from the `model:` section).
    public static func tokenizer(_ config: RunConfig) throws -> Tokenizer {
        let path = config.model.checkpoint
        if !path.isEmpty && FileManager.default.fileExists(atPath: path) { return try Tokenizer.read(from: path) }
        return .standard
    }

    /// The policy's shape: from `model.checkpoint` when it exists here, else from the `model:`
    /// section (an actor on another host or pod has no copy of the learner's base; the learner
    /// makes a missing base from the `model:` section, so the two agree).
    public static func modelConfig(_ config: RunConfig) throws -> LlamaConfig {
        let m = config.model
        if !m.checkpoint.isEmpty && FileManager.default.fileExists(atPath: m.checkpoint) {
            return try LlamaCheckpoint.read(from: m.checkpoint).config
        }
        let tok = CharTokenizer.standard
        return LlamaConfig(
            vocabSize: m.vocabSize, hiddenSize: m.hiddenSize, numHiddenLayers: m.numHiddenLayers,
            numAttentionHeads: m.numAttentionHeads, numKeyValueHeads: m.numKeyValueHeads,
            intermediateSize: m.intermediateSize, ropeTheta: Float(m.ropeTheta), rmsNormEps: Float(m.rmsNormEps),
            tieWordEmbeddings: m.tieWordEmbeddings, maxPositionEmbeddings: m.maxPositionEmbeddings,
            bosTokenId: tok.bosId, eosTokenId: tok.eosId)
    }

    static func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, rng.int(in: 0...i)) } }
        return p
    }
}
