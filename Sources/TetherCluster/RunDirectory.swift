import Foundation
import TetherModel
#if canImport(Glibc)
import Glibc
#endif

public enum RunDirectoryError: Error, Equatable, CustomStringConvertible {
    case corruptLatestPointer(path: String, contents: String)
    case missingCheckpoint(path: String)
    case checkpointExists(path: String)

    public var description: String {
        switch self {
        case let .corruptLatestPointer(path, contents):
            return "\(path): expected 'step-N', found '\(contents.prefix(80))'; delete it to resume from the newest checkpoints/step-N by hand"
        case .missingCheckpoint(let path): return "\(path): the latest pointer names a checkpoint that does not exist"
        case .checkpointExists(let path): return "\(path): checkpoint already exists; refusing to overwrite"
        }
    }
}

/// The layout of one run on disk:
///
///     <out_dir>/<name>/config.yaml          resolved configuration (every key, after --set)
///                      metrics.jsonl        one JSON line per learner step
///                      tensorboard/         events.out.tfevents.*
///                      checkpoints/step-N/  `RunCheckpoint`'s layout (policy/, learner or critic state)
///                      checkpoints/latest   "step-N", replaced atomically after step-N is complete
///                      reference/           the KL term's frozen reference when it is the starting policy
///
/// A checkpoint is written into a hidden temporary directory and renamed into place, then `latest`
/// is switched, so a crash at any point leaves `latest` naming a complete checkpoint.
public struct RunDirectory: Sendable {
    public let root: URL

    public var configURL: URL { root.appendingPathComponent("config.yaml") }
    public var metricsURL: URL { root.appendingPathComponent("metrics.jsonl") }
    public var tensorBoardDirectory: URL { root.appendingPathComponent("tensorboard") }
    public var checkpointsDirectory: URL { root.appendingPathComponent("checkpoints") }
    public var latestPointerURL: URL { checkpointsDirectory.appendingPathComponent("latest") }

    public func checkpointDirectory(step: Int) -> URL { checkpointsDirectory.appendingPathComponent("step-\(step)") }

    /// Creates (or reopens) the directory tree and removes temporaries of interrupted writes.
    public init(root: URL) throws {
        self.root = root
        for dir in [root, tensorBoardDirectory, checkpointsDirectory] {
            do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
                throw DurableFileError.notWritable(path: dir.path, reason: (error as NSError).localizedDescription)
            }
        }
        try AtomicFile.removeStaleTemporaries(in: root)
        try AtomicFile.removeStaleTemporaries(in: checkpointsDirectory)
    }

    /// A run directory as it is on disk, for readers that must not change it (verification).
    public init(existing root: URL) { self.root = root }

    /// `<run.out_dir>/<run.name>`, with the resolved config written into it.
    public static func create(for config: RunConfig) throws -> RunDirectory {
        let dir = try RunDirectory(root: URL(fileURLWithPath: config.run.outDir).appendingPathComponent(config.run.name))
        try dir.writeResolvedConfig(config)
        return dir
    }

    public func writeResolvedConfig(_ config: RunConfig) throws {
        try AtomicFile.write("# Resolved Tether configuration (defaults + file + --set overrides).\n" + config.yaml(), to: configURL)
    }

    /// A fresh hidden directory to write step `step`'s checkpoint into; pass it to `commitCheckpoint`.
    public func beginCheckpoint(step: Int) throws -> URL {
        let staging = checkpointsDirectory.appendingPathComponent(".step-\(step)\(AtomicFile.temporaryMarker)\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        do { try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false) } catch {
            throw DurableFileError.notWritable(path: staging.path, reason: (error as NSError).localizedDescription)
        }
        return staging
    }

    /// Moves a finished staging directory to `checkpoints/step-N` and points `latest` at it.
    public func commitCheckpoint(step: Int, staging: URL) throws {
        let target = checkpointDirectory(step: step)
        guard !FileManager.default.fileExists(atPath: target.path) else {
            throw RunDirectoryError.checkpointExists(path: target.path)
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: staging.path) {
            try syncFile(staging.appendingPathComponent(name))
        }
        try AtomicFile.syncDirectory(staging.path)
        guard rename(staging.path, target.path) == 0 else {
            throw DurableFileError.from(errno: errno, path: target.path, operation: "rename checkpoint")
        }
        try AtomicFile.syncDirectory(checkpointsDirectory.path)
        try AtomicFile.write("step-\(step)\n", to: latestPointerURL)
    }

    /// The checkpoint `latest` names, or nil when none was committed yet.
    public func latestCheckpoint() throws -> (step: Int, url: URL)? {
        guard let data = FileManager.default.contents(atPath: latestPointerURL.path) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("step-"), let step = Int(text.dropFirst(5)), step >= 0 else {
            throw RunDirectoryError.corruptLatestPointer(path: latestPointerURL.path, contents: text)
        }
        let url = checkpointDirectory(step: step)
        guard FileManager.default.fileExists(atPath: url.path) else { throw RunDirectoryError.missingCheckpoint(path: url.path) }
        return (step, url)
    }

    /// Steps of committed checkpoints, ascending.
    public func checkpointSteps() throws -> [Int] {
        try FileManager.default.contentsOfDirectory(atPath: checkpointsDirectory.path)
            .compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }
            .sorted()
    }

    /// Deletes all but the newest `keep` checkpoints (never the one `latest` names); returns deleted steps.
    @discardableResult
    public func pruneCheckpoints(keep: Int) throws -> [Int] {
        let latest = try latestCheckpoint()?.step
        let steps = try checkpointSteps()
        let doomed = steps.dropLast(max(keep, 0)).filter { $0 != latest }
        for step in doomed { try FileManager.default.removeItem(at: checkpointDirectory(step: step)) }
        return Array(doomed)
    }

    /// The frozen reference of the KL term, for both drivers: `model.reference_checkpoint`, else
    /// the starting policy, saved once in `reference/` so a resumed run measures KL to the same model.
    public func referenceModel(config: RunConfig, policy: LlamaModel, tokenizer: Tokenizer, resume: Bool) throws -> LlamaModel {
        if !config.model.referenceCheckpoint.isEmpty { return try LlamaModel.load(from: config.model.referenceCheckpoint).model }
        let saved = root.appendingPathComponent("reference").path
        if resume, FileManager.default.fileExists(atPath: saved) { return try LlamaModel.load(from: saved).model }
        let reference = try LlamaModel(config: policy.config)
        reference.copyParameters(from: policy)
        if !resume { try reference.save(to: saved, tokenizer: tokenizer) }
        return reference
    }

    private func syncFile(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { return }
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DurableFileError.from(errno: errno, path: url.path, operation: "open") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw DurableFileError.from(errno: errno, path: url.path, operation: "fsync") }
    }
}
