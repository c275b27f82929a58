import Foundation
import TetherCluster
import TetherKernels
import TetherModel
import TetherRL
import TetherRewards

/// The prompts and the scorer of a run, from the `task` section of a `RunConfig`: a built-in
/// generator (`addition`, `arithmetic`, `sequence`) split into train and held-out by problem hash,
/// or a prompts JSONL (`jsonl`), scored by the task's exact-answer verifier or a reward model.
struct TrainingTask {
    let train: [TaskPrompt]
    let heldOut: [TaskPrompt]
    /// For warm-starting a missing base checkpoint (built-in tasks only).
    let generator: (any TaskGenerator)?
    let rewardModel: RewardModelScorer?

    init(config: RunConfig, trainCount: Int, heldOutCount: Int) throws {
        let t = config.task
        generator = try ClusterTask.generator(named: t.name)  // names resolve as in the cluster
        if let g = generator {
            let seed = UInt64(truncatingIfNeeded: config.run.seed)
            train = try ClusterTask.rlPrompts(g, source: t.rlPrompts, count: trainCount, seed: seed)
            heldOut = try TaskDataset.prompts(g, split: .heldout, count: heldOutCount, seed: seed)
        } else {
            guard t.promptField == "prompt", t.answerField == "answer" else {
                throw ConfigError.invalidValue(path: "task.prompt_field", reason: "the single-process trainer reads prompts JSONL with the fields prompt and answer")
            }
            let all = try TaskPrompt.load(path: t.datasetPath)
            // Held out by problem hash, the same rule as the built-in generators.
            train = all.filter { DatasetSplit.of(task: $0.task, prompt: $0.prompt) != .heldout }
            heldOut = Array(all.filter { DatasetSplit.of(task: $0.task, prompt: $0.prompt) == .heldout }.prefix(heldOutCount))
            guard !train.isEmpty else { throw ConfigError.invalidValue(path: "task.dataset_path", reason: "no training prompts in \(t.datasetPath)") }
        }
        rewardModel = t.reward == .rewardModel ? try RewardModelScorer(directory: t.rewardModelPath) : nil
    }

    /// What the policy is trained on: the reward model when configured, else the exact answer.
    func verifier(for prompt: TaskPrompt) throws -> any Verifier {
        if let rewardModel { return rewardModel }
        return try exactAnswer(for: prompt)
    }

    /// What accuracy is measured with, whatever the training reward: the task's exact-answer verifier.
    func exactAnswer(for prompt: TaskPrompt) throws -> any Verifier {
        try TaskCatalog.verifier(forTask: prompt.task)
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
