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
    /// The learner's ticket accounting; nil for a `tether train` run.
    public var issuedGroups: Int?
    public var trainedGroups: Int?
}

extension RunCheckpoint {
    /// Loads every committed checkpoint of a run (`tether train` or learner) exactly as `--resume`
    /// would (weights into a model, optimizer moments, a learner's staleness state into a
    /// controller) and checks what a loader alone would not: the weights are finite, the step recorded inside matches the directory name,
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
        try inspect(step: step, directory: directory).verified
    }

    /// Every check of one checkpoint, returning what it loaded so `--resume` reads it once.
    static func inspect(step: Int, directory: URL) throws
        -> (verified: VerifiedCheckpoint, checkpoint: LlamaCheckpoint, staleness: StalenessState?) {
        let policyPath = directory.appendingPathComponent(policyDirectory).path
        func defect(_ problem: String) -> CheckpointDefect { CheckpointDefect(path: directory.path, problem: problem) }
        try CheckpointChecksums.verify(directory: directory)
        let checkpoint: LlamaCheckpoint
        let model: LlamaModel
        do {
            checkpoint = try LlamaCheckpoint.read(from: policyPath)
            model = try LlamaModel(checkpoint: checkpoint)
        } catch { throw defect("policy does not load: \(error)") }
        if let bad = model.parameters.buffer.firstIndex(where: { !$0.isFinite }) {
            throw defect("policy weights hold NaN or infinity (parameter \(bad) is \(model.parameters.buffer[bad]))")
        }
        guard let trainer = checkpoint.trainerState else { throw defect("policy has no trainer_state.json") }
        guard trainer.step == step else { throw defect("trainer_state.json says step \(trainer.step)") }
        guard let optimizer = checkpoint.optimizerState else { throw defect("policy has no optimizer.safetensors") }
        guard optimizer.step >= 0 else { throw defect("optimizer step is \(optimizer.step)") }
        guard optimizer.firstMoment.allSatisfy(\.isFinite), optimizer.secondMoment.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw defect("optimizer moments hold NaN, infinity or a negative second moment")
        }
        var verified = VerifiedCheckpoint(step: step, parameters: model.parameters.count, optimizerStep: optimizer.step)
        let statePath = directory.appendingPathComponent(clusterStateFile)
        guard let data = FileManager.default.contents(atPath: statePath.path) else {
            // A single-process run has no staleness controller; a learner's checkpoint must have its state.
            guard trainer.trainer != learnerTrainerName else { throw defect("\(clusterStateFile) is missing") }
            return (verified, checkpoint, nil)
        }
        let state: StalenessState
        do { state = try JSONDecoder().decode(StalenessState.self, from: data) } catch {
            throw defect("\(clusterStateFile) does not load: \(error)")
        }
        if let problem = state.outOfRangeField { throw defect("\(clusterStateFile): \(problem)") }
        guard state.version == step else { throw defect("\(clusterStateFile) holds version \(state.version)") }
        let controller: StalenessController
        do { controller = try StalenessController(restoring: state) } catch {
            throw defect("\(clusterStateFile) does not load: \(error)")
        }
        let s = controller.statistics
        guard s.accountingBalances else { throw defect("ticket accounting does not balance: \(s)") }
        verified.issuedGroups = s.issuedGroups
        verified.trainedGroups = s.trainedGroups
        return (verified, checkpoint, state)
    }
}

extension StalenessState {
    /// The first integer that no run can produce (a negative version, counter or id, a lag), or nil. Such values come from a hand-edited or corrupt file, and code downstream
    /// converts them (`UInt64(version)` for the wire) assuming they are in range.
    var outOfRangeField: String? {
        let nonNegative: [(String, Int)] = [
            ("version", version), ("nextTicketID", nextTicketID), ("cursor", cursor), ("admittedSlots", admittedSlots),
            ("issuedGroups", issuedGroups), ("reissuedGroups", reissuedGroups), ("trainedGroups", trainedGroups),
        ]
        if let (name, value) = nonNegative.first(where: { $0.1 < 0 }) { return "\(name) is \(value), must be ≥ 0" }
        // Far below Int.max, so the controller's sums ((v + η + 1)·B, counters + 1) cannot overflow.
        let limit = 1 << 50
        if let (name, value) = nonNegative.first(where: { $0.1 > limit }) { return "\(name) is \(value), must be ≤ 2^50" }
        for (name, counts) in [("lost", lost), ("rejected", rejected)] {
            if let (reason, n) = counts.first(where: { $0.value < 0 || $0.value > limit }) { return "\(name).\(reason.rawValue) is \(n)" }
        }
        for (name, histogram) in [("sampleLagHistogram", sampleLagHistogram), ("groupLagHistogram", groupLagHistogram)] {
            if let n = histogram.first(where: { $0 < 0 || $0 > limit }) { return "\(name) holds \(n)" }
        }
        for (id, live) in liveTickets {
            guard id >= 0, id < nextTicketID, live.ticket.id == id else { return "live ticket \(id) does not match its id \(live.ticket.id)" }
            guard live.ticket.minVersion >= 0, live.ticket.minVersion <= limit, live.ticket.leaseDeadline.isFinite else {
                return "live ticket \(id) has min version \(live.ticket.minVersion) or lease deadline \(live.ticket.leaseDeadline)"
            }
            if let p = (live.pending + live.ticket.promptIDs).first(where: { $0 < 0 || $0 > limit }) { return "live ticket \(id) holds prompt \(p)" }
        }
        if let p = reissueQueue.first(where: { $0 < 0 || $0 > limit }) { return "reissueQueue holds prompt \(p)" }
        for g in buffer {
            guard g.ticket >= 0, g.promptID >= 0, (0 ... limit).contains(g.trainVersion), (0 ... limit).contains(g.lag),
                  g.sampleLags.allSatisfy({ (0 ... limit).contains($0) }) else {
                return "buffered group (ticket \(g.ticket), prompt \(g.promptID)) has train version \(g.trainVersion) or negative lags"
            }
        }
        if let w = budgetWaiters.first(where: { $0.weightsVersion < -1 || $0.weightsVersion > limit }) {
            return "budget waiter \(w.actor) reports weights version \(w.weightsVersion)"
        }
        return nil
    }
}
