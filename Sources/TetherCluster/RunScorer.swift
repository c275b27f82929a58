import Foundation
import TetherModel
import TetherRewards
import TetherWire

/// How an actor scores the completions of a group, from the `task` section (`task.reward`):
///
/// - `verifier`: the configured verifier reward (`RewardSpec`: correct, format and length terms);
/// - `reward_model`: a trained Bradley–Terry reward model (`tether rm train`, `task.reward_model_path`)
///   with the format and length terms beside it, R = r_φ(prompt, completion) + w_format·format +
///   w_length·length (InstructGPT's learned reward, Ouyang et al. 2022 §3.5, plus DeepSeek-R1's format
///   and DAPO's overlong terms). The exact-answer check is still scored, at weight 0, so `correct`
///   stays on the wire and accuracy stays measured whatever gives the reward.
///
/// Every breakdown it returns comes with `version`, the reward version the samples carry: for a
/// verifier the hash of its settings (`RunTask.verifierRewardVersion`), for a reward model the
/// checksum of its checkpoint files joined with the hash of the verifier terms beside it, so
/// retraining the reward model or changing a weight gives a new version.
///
/// Not thread-safe (the reward model's forward reuses its buffers): one per actor.
public final class RunScorer {
    /// The name an actor announces (`ActorJoin.scorers`): the verifier's, or `reward_model`.
    public let name: String
    public let version: String
    let task: RunTask
    /// The verifier terms: all of the run's reward, or those beside the reward model.
    let verifier: any Verifier
    let rewardModel: RewardModelScorer?

    public init(task: RunTask, config: RunConfig) throws {
        self.task = task
        switch config.task.reward {
        case .verifier, .service:  // a service's workers score; the verifier still gives `correct_rate`
            verifier = task.verifier
            rewardModel = nil
            name = config.task.reward == .service ? "reward_service" : task.verifier.name
            version = task.rewardVersion
        case .rewardModel:
            var spec = try config.task.rewardSpec()
            spec.correct = 0
            verifier = spec.makeVerifier()
            let path = config.task.rewardModelPath
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigError.invalidValue(path: "task.reward_model_path", reason: "\(path) does not exist (a directory written by `tether rm train`)")
            }
            let loaded: RewardModelScorer
            do { loaded = try RewardModelScorer(directory: path) } catch {
                throw ConfigError.invalidValue(path: "task.reward_model_path", reason: "\(path) is not a reward model: \(error)")
            }
            rewardModel = loaded
            name = loaded.name
            version = "reward_model-" + (try RunScorer.checkpointDigest(directory: URL(fileURLWithPath: path)))
                + "+" + RunTask.verifierRewardVersion(taskName: config.task.name, spec: spec)
        }
    }

    /// The reward of each completion of one prompt (everything after `<eos>` ignored): the
    /// verifier's breakdown, with the reward model's score as one more component when there is
    /// one (one batched forward for the whole group). A non-finite value of any term is an error
    /// (`RewardError.nonFiniteReward`): the group is not sent rather than trained on a NaN.
    public func score(completions: [[Int]], for prompt: TaskPrompt) throws -> [RewardBreakdown] {
        let texts = try completions.map { try PolicyEvaluator.text(of: $0, tokenizer: task.tokenizer) }
        var breakdowns = try texts.map { try verifier.checkedScore(completion: $0, for: prompt) }
        guard let rewardModel else { return breakdowns }
        let scores = try rewardModel.scores(texts.map { (prompt.prompt, $0) })
        for (i, s) in scores.enumerated() {
            guard s.isFinite else { throw RewardError.nonFiniteReward(verifier: rewardModel.name, promptID: prompt.id, value: s) }
            breakdowns[i].reward += s
            breakdowns[i].components.insert(TetherRewards.RewardComponent(name: rewardModel.name, value: s), at: 0)
        }
        return breakdowns
    }

    /// The first 12 hex digits of an XXH64 over every regular file of a checkpoint directory (its
    /// relative path and the XXH64 of its bytes, in path order): what identifies the weights,
    /// tokenizer and head a reward model scores with, equal on every host that holds a copy.
    public static func checkpointDigest(directory: URL) throws -> String {
        var manifest = ""
        for path in try CheckpointChecksums.relativeFiles(in: directory) {
            let data = try Data(contentsOf: directory.appendingPathComponent(path), options: .alwaysMapped)
            manifest += "\(path)\t\(data.withUnsafeBytes { WireChecksum.xxh64($0) })\n"
        }
        return RunTask.hex12(WireChecksum.xxh64(Array(manifest.utf8)))
    }
}
