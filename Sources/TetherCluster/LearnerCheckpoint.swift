import Foundation
import TetherModel
import TetherRL

/// A learner checkpoint `checkpoints/step-N/`: `policy/` (a Hugging Face Llama directory with
/// `trainer_state.json` and `optimizer.safetensors`: AdamW moments and step) and `cluster_state.json`
/// (the staleness controller's whole state: version, data cursor, re-issue queue, ticket counter,
/// lag histograms and drop counters). Sampling randomness is a pure function of (run seed, ticket,
/// learner incarnation), so no generator state needs saving. Written through `RunDirectory`'s
/// staging + rename, so a crash leaves either the old or the new checkpoint, never half of one.
public enum LearnerCheckpoint {
    public static let policyDirectory = "policy"
    public static let clusterStateFile = "cluster_state.json"

    /// `tokenizer` is the policy's (`ClusterTask.tokenizer`), written beside the weights so the
    /// policy directory loads on its own (`tether generate`, `transformers`).
    public static func write(run: RunDirectory, version: Int, model: LlamaModel, optimizer: AdamW,
                      controller: StalenessController, config: RunConfig, tokenizer: Tokenizer = .standard) throws {
        // A committed step-N from an abandoned timeline (killed between the rename and the `latest`
        // update, or the same version checkpointed before a drain) is superseded by this one.
        let existing = run.checkpointDirectory(step: version)
        if FileManager.default.fileExists(atPath: existing.path) { try FileManager.default.removeItem(at: existing) }
        let staging = try run.beginCheckpoint(step: version)
        do {
            try fill(staging: staging, version: version, model: model, optimizer: optimizer, controller: controller, config: config,
                     tokenizer: tokenizer)
            try run.commitCheckpoint(step: version, staging: staging)
        } catch {
            // A failed write (full disk) leaves no half checkpoint and gives back the space it took.
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        try run.pruneCheckpoints(keep: config.checkpoint.keep)
    }

    private static func fill(staging: URL, version: Int, model: LlamaModel, optimizer: AdamW,
                             controller: StalenessController, config: RunConfig, tokenizer: Tokenizer) throws {
        let l = config.learner
        let state = TrainerState(
            trainer: "tether-learner", step: version, totalSteps: config.run.steps, policyVersion: version,
            seed: UInt64(truncatingIfNeeded: config.run.seed), examplesSeen: controller.statistics.trainedGroups,
            optimizer: .init(learningRate: l.learningRate, beta1: l.adamBeta1, beta2: l.adamBeta2, epsilon: l.adamEps, weightDecay: l.weightDecay))
        let moments = OptimizerState(step: optimizer.step, firstMoment: Array(optimizer.firstMoment.buffer),
                                     secondMoment: Array(optimizer.secondMoment.buffer))
        try model.save(to: staging.appendingPathComponent(policyDirectory).path, tokenizer: tokenizer, trainerState: state,
                       optimizerState: moments)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(encoder.encode(controller.snapshot()), to: staging.appendingPathComponent(clusterStateFile))
        try CheckpointChecksums.write(directory: staging)
    }

    struct Restored {
        var checkpoint: LlamaCheckpoint
        var staleness: StalenessState
        var step: Int
    }

    /// The checkpoint `latest` names, after every check `tether checkpoint verify` makes (checksums,
    /// finite weights, step numbers, value ranges, ticket accounting): resuming a bad checkpoint
    /// would train on nothing (NaN weights reject every group) or trap on an impossible version.
    static func readLatest(run: RunDirectory) throws -> Restored {
        let latest: (step: Int, url: URL)?
        do { latest = try run.latestCheckpoint() } catch { throw ClusterError.noCheckpoint("\(error)") }
        guard let (step, url) = latest else {
            throw ClusterError.noCheckpoint("\(run.checkpointsDirectory.path) holds no committed checkpoint yet")
        }
        do {
            let inspected = try inspect(step: step, directory: url)
            return Restored(checkpoint: inspected.checkpoint, staleness: inspected.staleness, step: step)
        } catch let defect as CheckpointDefect {
            throw ClusterError.noCheckpoint("checkpoint step-\(step) is bad: \(defect). Point \(run.latestPointerURL.path) at an "
                + "earlier step that `tether checkpoint verify` accepts to resume from there")
        }
    }
}
