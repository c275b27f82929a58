import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import TetherModel

/// An append-only file (metrics.jsonl, TensorBoard events): each `append` is one write(2) with
/// O_APPEND, so a crash leaves at most a torn last record (TensorBoard skips it; `dropTornTail`
/// removes a torn JSONL line on reopen). A failed append (a full disk writes part of the record
/// and then fails) is rolled back to the previous length, so retrying it later cannot glue a
/// fragment onto the next record.
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

    public func append(_ data: Data) throws {
        let before = lseek(fd, 0, SEEK_END)
        do { try AtomicFile.writeAll(data, to: fd, path: url.path) } catch {
            if before >= 0 { _ = ftruncate(fd, before) }
            throw error
        }
    }

    /// Cuts everything after the last `separator` (a record torn by a crash), so the next append
    /// starts a fresh record. Returns the number of bytes removed.
    @discardableResult
    public func dropTornTail(separator: UInt8 = UInt8(ascii: "\n")) throws -> Int {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return 0 }
        let data = try Data(contentsOf: url)
        guard data.last != separator else { return 0 }
        let keep = data.lastIndex(of: separator).map { $0 + 1 } ?? 0
        guard ftruncate(fd, off_t(keep)) == 0 else { throw DurableFileError.from(errno: errno, path: url.path, operation: "truncate torn record") }
        return data.count - keep
    }

    /// Forces appended data to disk (call at checkpoints, not every record).
    public func sync() throws {
        guard fsync(fd) == 0 else { throw DurableFileError.from(errno: errno, path: url.path, operation: "fsync") }
    }
}
