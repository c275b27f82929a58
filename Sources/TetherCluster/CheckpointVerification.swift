import Foundation
import TetherModel

/// A checkpoint on disk that would not resume a run, and why.
public struct CheckpointDefect: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var problem: String
    public var description: String { "\(path): \(problem)" }
}

/// What `tether checkpoint verify` found in one committed `checkpoints/step-N`.
public struct VerifiedCheckpoint: Equatable, Sendable {
    public var step: Int
    public var parameters: Int
    public var optimizerStep: Int
    public var issuedGroups: Int
    public var trainedGroups: Int
}

extension LearnerCheckpoint {
    /// Loads every committed checkpoint of a run exactly as `tether learner --resume` would (weights
    /// into a model, optimizer moments, staleness state into a controller) and checks what a loader
    /// alone would not: the weights are finite, the step recorded inside matches the directory name,
    /// the ticket accounting balances, `latest` names a checkpoint that exists, and no staging
    /// directory of a failed write is left behind. Throws the first defect found.
    public static func verifyAll(runDirectory: URL) throws -> [VerifiedCheckpoint] {
        let run = RunDirectory(existing: runDirectory)
        let fm = FileManager.default
        guard fm.fileExists(atPath: run.checkpointsDirectory.path) else {
            throw CheckpointDefect(path: run.checkpointsDirectory.path, problem: "no checkpoints directory (is this a run directory?)")
        }
        let leftovers = try fm.contentsOfDirectory(atPath: run.checkpointsDirectory.path).filter { $0.hasPrefix(".") }
        if let stray = leftovers.first {
            throw CheckpointDefect(path: run.checkpointsDirectory.appendingPathComponent(stray).path,
                                   problem: "staging directory of an unfinished checkpoint write was left behind")
        }
        do { _ = try run.latestCheckpoint() } catch { throw CheckpointDefect(path: run.latestPointerURL.path, problem: "\(error)") }
        return try run.checkpointSteps().map { try verify(step: $0, directory: run.checkpointDirectory(step: $0)) }
    }

    static func verify(step: Int, directory: URL) throws -> VerifiedCheckpoint {
        let policyPath = directory.appendingPathComponent(policyDirectory).path
        func defect(_ problem: String) -> CheckpointDefect { CheckpointDefect(path: directory.path, problem: problem) }
        let checkpoint: LlamaCheckpoint
        let model: LlamaModel
        do {
            checkpoint = try LlamaCheckpoint.read(from: policyPath)
            model = try LlamaModel(checkpoint: checkpoint)
        } catch { throw defect("policy does not load: \(error)") }
        guard model.parameters.buffer.allSatisfy({ $0.isFinite }) else { throw defect("policy weights hold NaN or infinity") }
        guard let trainer = checkpoint.trainerState else { throw defect("policy has no trainer_state.json") }
        guard trainer.step == step else { throw defect("trainer_state.json says step \(trainer.step)") }
        guard let optimizer = checkpoint.optimizerState else { throw defect("policy has no optimizer.safetensors") }
        let statePath = directory.appendingPathComponent(clusterStateFile)
        guard let data = FileManager.default.contents(atPath: statePath.path) else { throw defect("\(clusterStateFile) is missing") }
        let controller: StalenessController
        do { controller = try StalenessController(restoring: JSONDecoder().decode(StalenessState.self, from: data)) } catch {
            throw defect("\(clusterStateFile) does not load: \(error)")
        }
        let s = controller.statistics
        guard s.version == step else { throw defect("\(clusterStateFile) holds version \(s.version)") }
        guard s.accountingBalances else { throw defect("ticket accounting does not balance: \(s)") }
        return VerifiedCheckpoint(step: step, parameters: model.parameters.count, optimizerStep: optimizer.step,
                                  issuedGroups: s.issuedGroups, trainedGroups: s.trainedGroups)
    }
}
