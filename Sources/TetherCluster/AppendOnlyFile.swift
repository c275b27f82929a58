import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import TetherModel

/// An append-only file (metrics.jsonl, TensorBoard events): each `append` is one write(2) with
/// O_APPEND, so a crash leaves at most a torn last record (TensorBoard skips it; JSONL readers
/// should ignore a last line that does not parse).
/// Owned by one thread (the learner's metrics writer); not Sendable.
public final class AppendOnlyFile {
    public let url: URL
    private let fd: Int32

    public init(url: URL) throws {
        self.url = url
        fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DurableFileError.from(errno: errno, path: url.path, operation: "open for append") }
    }

    deinit { close(fd) }

    public func append(_ data: Data) throws { try AtomicFile.writeAll(data, to: fd, path: url.path) }

    /// Forces appended data to disk (call at checkpoints, not every record).
    public func sync() throws {
        guard fsync(fd) == 0 else { throw DurableFileError.from(errno: errno, path: url.path, operation: "fsync") }
    }
}
