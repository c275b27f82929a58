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

    public static func write(run: RunDirectory, version: Int, model: LlamaModel, optimizer: AdamW,
                      controller: StalenessController, config: RunConfig) throws {
        // A committed step-N from an abandoned timeline (killed between the rename and the `latest`
        // update, or the same version checkpointed before a drain) is superseded by this one.
        let existing = run.checkpointDirectory(step: version)
        if FileManager.default.fileExists(atPath: existing.path) { try FileManager.default.removeItem(at: existing) }
        let staging = try run.beginCheckpoint(step: version)
        do {
            try fill(staging: staging, version: version, model: model, optimizer: optimizer, controller: controller, config: config)
            try run.commitCheckpoint(step: version, staging: staging)
        } catch {
            // A failed write (full disk) leaves no half checkpoint and gives back the space it took.
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
        try run.pruneCheckpoints(keep: config.checkpoint.keep)
    }

    private static func fill(staging: URL, version: Int, model: LlamaModel, optimizer: AdamW,
                             controller: StalenessController, config: RunConfig) throws {
        let l = config.learner
        let state = TrainerState(
            trainer: "tether-learner", step: version, totalSteps: config.run.steps, policyVersion: version,
            seed: UInt64(truncatingIfNeeded: config.run.seed), examplesSeen: controller.statistics.trainedGroups,
            optimizer: .init(learningRate: l.learningRate, beta1: l.adamBeta1, beta2: l.adamBeta2, epsilon: l.adamEps, weightDecay: l.weightDecay))
        let moments = OptimizerState(step: optimizer.step, firstMoment: Array(optimizer.firstMoment.buffer),
                                     secondMoment: Array(optimizer.secondMoment.buffer))
        try model.save(to: staging.appendingPathComponent(policyDirectory).path, trainerState: state, optimizerState: moments)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(encoder.encode(controller.snapshot()), to: staging.appendingPathComponent(clusterStateFile))
    }

    struct Restored {
        var checkpoint: LlamaCheckpoint
        var staleness: StalenessState
        var step: Int
    }

    static func readLatest(run: RunDirectory) throws -> Restored {
        guard let (step, url) = try run.latestCheckpoint() else {
            throw ClusterError.noCheckpoint("\(run.checkpointsDirectory.path) holds no committed checkpoint yet")
        }
        let ckpt = try LlamaCheckpoint.read(from: url.appendingPathComponent(policyDirectory).path)
        let path = url.appendingPathComponent(clusterStateFile)
        guard let data = FileManager.default.contents(atPath: path.path) else {
            throw ClusterError.noCheckpoint("\(path.path) is missing")
        }
        let staleness: StalenessState
        do { staleness = try JSONDecoder().decode(StalenessState.self, from: data) } catch {
            throw ClusterError.noCheckpoint("\(path.path) is corrupt: \(error)")
        }
        return Restored(checkpoint: ckpt, staleness: staleness, step: step)
    }
}
