import Foundation
import TetherModel
import TetherRL

/// A checkpoint `checkpoints/step-N/` of a run, the one layout of `tether train` and the learner:
///
///     policy/             a Hugging Face Llama directory with trainer_state.json and
///                         optimizer.safetensors (AdamW moments and step)
///     cluster_state.json  learner runs: the staleness controller's whole state (version, data
///                         cursor, re-issue queue, ticket counter, lag histograms, drop counters)
///     critic/             `tether train` with PPO: the value model
///     checksums.json      CRC-32C of every file above (`CheckpointChecksums`)
///
/// Sampling randomness is a pure function of (run seed, ticket or step, learner incarnation), so no
/// generator state needs saving. Written through `RunDirectory`'s staging + rename, so a crash
/// leaves either the old or the new checkpoint, never half of one.
public enum RunCheckpoint {
    public static let policyDirectory = "policy"
    public static let criticDirectory = "critic"
    public static let clusterStateFile = "cluster_state.json"
    /// `trainer_state.json`'s `trainer` of a learner checkpoint, which must hold `cluster_state.json`.
    public static let learnerTrainerName = "tether-learner"

    /// Writes step `step`: the policy with its training state, whatever `extras` adds to the
    /// staging directory, the checksums; then commits it and prunes to `keep` checkpoints.
    public static func write(run: RunDirectory, step: Int, keep: Int, policy: LlamaModel, tokenizer: Tokenizer,
                             trainerState: TrainerState, optimizerState: any OptimizerMoments,
                             extras: (URL) throws -> Void = { _ in }) throws {
        // A committed step-N from an abandoned timeline (killed between the rename and the `latest`
        // update, or the same version checkpointed before a drain) is superseded by this one.
        let existing = run.checkpointDirectory(step: step)
        if FileManager.default.fileExists(atPath: existing.path) { try FileManager.default.removeItem(at: existing) }
        let staging = try run.beginCheckpoint(step: step)
        do {
            try policy.save(to: staging.appendingPathComponent(policyDirectory).path, tokenizer: tokenizer,
                            trainerState: trainerState, optimizerState: optimizerState)
            try extras(staging)
            try CheckpointChecksums.write(directory: staging)
            try run.commitCheckpoint(step: step, staging: staging)
        } catch {
            // A failed write (full disk) leaves no half checkpoint and gives back the space it took.
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        try run.pruneCheckpoints(keep: keep)
    }

    /// The learner's checkpoint at `version`: the policy, AdamW's state and the staleness controller's.
    public static func write(run: RunDirectory, version: Int, model: LlamaModel, optimizer: AdamW,
                             controller: StalenessController, config: RunConfig, tokenizer: Tokenizer = .standard) throws {
        let l = config.learner
        let state = TrainerState(
            trainer: learnerTrainerName, step: version, totalSteps: config.run.steps, policyVersion: version,
            seed: UInt64(truncatingIfNeeded: config.run.seed), examplesSeen: controller.statistics.trainedGroups,
            optimizer: .init(learningRate: l.learningRate, beta1: l.adamBeta1, beta2: l.adamBeta2, epsilon: l.adamEps, weightDecay: l.weightDecay))
        try write(run: run, step: version, keep: config.checkpoint.keep, policy: model, tokenizer: tokenizer,
                  trainerState: state, optimizerState: optimizer) { staging in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try AtomicFile.write(encoder.encode(controller.snapshot()), to: staging.appendingPathComponent(clusterStateFile))
        }
    }

    public struct Restored {
        public var checkpoint: LlamaCheckpoint
        /// The staleness controller's state; nil for a `tether train` run.
        public var staleness: StalenessState?
        public var step: Int
        public var directory: URL
    }

    /// The checkpoint `latest` names, after every check `tether checkpoint verify` makes (checksums,
    /// finite weights, step numbers, value ranges, ticket accounting): resuming a bad checkpoint
    /// would train on nothing (NaN weights reject every group) or trap on an impossible version.
    public static func readLatest(run: RunDirectory) throws -> Restored {
        let latest: (step: Int, url: URL)?
        do { latest = try run.latestCheckpoint() } catch { throw ClusterError.noCheckpoint("\(error)") }
        guard let (step, url) = latest else {
            throw ClusterError.noCheckpoint("\(run.checkpointsDirectory.path) holds no committed checkpoint yet")
        }
        do {
            let inspected = try inspect(step: step, directory: url)
            return Restored(checkpoint: inspected.checkpoint, staleness: inspected.staleness, step: step, directory: url)
        } catch let defect as CheckpointDefect {
            throw ClusterError.noCheckpoint("checkpoint step-\(step) is bad: \(defect). Point \(run.latestPointerURL.path) at an "
                + "earlier step that `tether checkpoint verify` accepts to resume from there")
        }
    }

    /// The model directory `path` names: a Hugging Face directory itself, a checkpoint `step-N`
    /// (its `policy/`), or a run directory (the policy of the checkpoint `latest` names).
    public static func modelDirectory(_ path: String) throws -> String {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        func isModel(_ u: URL) -> Bool { fm.fileExists(atPath: u.appendingPathComponent("config.json").path) }
        if isModel(url) { return url.path }
        if isModel(url.appendingPathComponent(policyDirectory)) { return url.appendingPathComponent(policyDirectory).path }
        if let (_, step) = try RunDirectory(existing: url).latestCheckpoint(), isModel(step.appendingPathComponent(policyDirectory)) {
            return step.appendingPathComponent(policyDirectory).path
        }
        throw CheckpointDefect(path: path, problem: "neither a model directory (config.json), a checkpoint step-N (policy/config.json) nor a run directory with checkpoints/latest")
    }
}
