import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file operation, saying which file, what was attempted and what to do about it.
public enum DurableFileError: Error, Equatable, CustomStringConvertible {
    case noSpace(path: String)
    case notWritable(path: String, reason: String)
    case io(path: String, operation: String, reason: String)

    public var description: String {
        switch self {
        case .noSpace(let path): return "\(path): no space left on device (disk full or file size limit); free space and resume from the last checkpoint"
        case let .notWritable(path, reason): return "\(path): not writable (\(reason)); check the directory exists and its permissions"
        case let .io(path, operation, reason): return "\(path): \(operation) failed: \(reason)"
        }
    }

    /// Maps an errno to the case that tells the user what to do.
    public static func from(errno code: Int32, path: String, operation: String) -> DurableFileError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOSPC, EDQUOT, EFBIG: return .noSpace(path: path)
        case EACCES, EPERM, EROFS, ENOENT, ENOTDIR, EISDIR: return .notWritable(path: path, reason: reason)
        default: return .io(path: path, operation: operation, reason: reason)
        }
    }
}

/// Writes a whole file so a reader sees either the old or the new contents, never a torn mix,
/// even if the process dies or the machine loses power mid-write: write a temporary file in the
/// same directory, fsync it, rename(2) over the target (atomic within one file system), fsync the
/// directory so the rename itself is durable.
public enum AtomicFile {
    /// Temporary files are named `.<name>.tmp-<pid>-<n>`; `removeStaleTemporaries` cleans leftovers.
    static let temporaryMarker = ".tmp-"

    public static func write(_ data: Data, to url: URL) throws {
        let directory = url.deletingLastPathComponent().path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent)\(temporaryMarker)\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DurableFileError.from(errno: errno, path: temporary, operation: "create") }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            try writeAll(data, to: fd, path: temporary)
            guard fsync(fd) == 0 else { throw DurableFileError.from(errno: errno, path: temporary, operation: "fsync") }
        }
        guard rename(temporary, url.path) == 0 else {
            throw DurableFileError.from(errno: errno, path: url.path, operation: "rename")
        }
        renamed = true
        try syncDirectory(directory)
    }

    public static func write(_ text: String, to url: URL) throws { try write(Data(text.utf8), to: url) }

    /// Deletes temporary files left by writes that were interrupted (they were never visible).
    @discardableResult
    public static func removeStaleTemporaries(in directory: URL) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        let stale = names.filter { $0.hasPrefix(".") && $0.contains(temporaryMarker) }
        for name in stale { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
        return stale
    }

    static func writeAll(_ data: Data, to fd: Int32, path: String) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                #if canImport(Glibc)
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #else
                let n = Darwin.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DurableFileError.from(errno: errno, path: path, operation: "write")
                }
                offset += n
            }
        }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw DurableFileError.from(errno: errno, path: path, operation: "open directory") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw DurableFileError.from(errno: errno, path: path, operation: "fsync directory") }
    }
}

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
