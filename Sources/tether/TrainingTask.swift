import Foundation
import TetherCluster
import TetherKernels
import TetherModel
import TetherRL
import TetherRewards

/// The prompts and the scorer of a run, from the `task` section of a `RunConfig`: a built-in
/// generator (`addition`, `arithmetic[:level]`, `sequence`) split into train and held-out by problem
/// hash, or a prompts JSONL (`jsonl`, `PromptDataset`'s contract), scored by the configured reward
/// (`task.reward_weights`) or a reward model.
struct TrainingTask {
    let train: [TaskPrompt]
    let heldOut: [TaskPrompt]
    /// For warm-starting a missing base checkpoint (built-in tasks only).
    let generator: (any TaskGenerator)?
    let rewardModel: RewardModelScorer?
    /// The configured verifier reward (correct, format, length components).
    let reward: WeightedVerifier
    let answerFormat: AnswerFormat

    init(config: RunConfig, trainCount: Int, heldOutCount: Int, tokenizer: Tokenizer? = nil) throws {
        let t = config.task
        reward = try t.rewardSpec().makeVerifier()
        answerFormat = t.extract
        generator = try ClusterTask.generator(named: t.name, answerFormat: t.extract)  // names resolve as in the cluster
        if let g = generator {
            let seed = UInt64(truncatingIfNeeded: config.run.seed)
            train = try ClusterTask.rlPrompts(g, source: t.rlPrompts, count: trainCount, seed: seed)
            heldOut = try TaskDataset.prompts(g, split: .heldout, count: heldOutCount, seed: seed)
        } else {
            let all = try TaskPrompt.load(path: t.datasetPath, promptField: t.promptField, answerField: t.answerField, tokenizer: tokenizer)
            // Held out by problem hash, the same rule as the built-in generators.
            train = all.filter { DatasetSplit.of(task: $0.task, prompt: $0.prompt) != .heldout }
            heldOut = Array(all.filter { DatasetSplit.of(task: $0.task, prompt: $0.prompt) == .heldout }.prefix(heldOutCount))
            guard !train.isEmpty else { throw ConfigError.invalidValue(path: "task.dataset_path", reason: "no training prompts in \(t.datasetPath)") }
        }
        rewardModel = t.reward == .rewardModel ? try RewardModelScorer(directory: t.rewardModelPath) : nil
    }

    /// What the policy is trained on: the reward model when configured, else the configured reward.
    func verifier(for prompt: TaskPrompt) throws -> any Verifier {
        if let rewardModel { return rewardModel }
        return reward
    }

    /// What accuracy is measured with, whatever the training reward: the exact answer, read as
    /// `task.extract` says.
    func exactAnswer(for prompt: TaskPrompt) throws -> any Verifier {
        IntegerAnswerVerifier.correct(answerFormat)
    }

    /// The prompts of step `step`: consecutive slices of a per-epoch seeded shuffle of `train`.
    func batch(step: Int, size: Int, seed: Int, shuffle: Bool) -> [TaskPrompt] {
        (0..<size).map { i in
            let k = step * size + i
            let epoch = k / train.count, j = k % train.count
            guard shuffle else { return train[j] }
            var rng = SeededRandom(seed: UInt64(truncatingIfNeeded: seed), stream: UInt64(epoch) &+ 0xE90C)
            return train.shuffled(using: &rng)[j]
        }
    }
}
