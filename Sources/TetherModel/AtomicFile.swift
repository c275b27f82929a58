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
    public static let temporaryMarker = ".tmp-"

    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { fd, temporary in try writeAll(data, to: fd, path: temporary) }
    }

    /// The streaming form: `contents` writes the file's bytes to `fd` (an empty temporary file;
    /// errors should name `temporaryPath`), so a large file (a checkpoint's tensors) goes from the
    /// caller's buffers to the file without first being assembled in memory.
    public static func write(to url: URL, contents: (_ fd: Int32, _ temporaryPath: String) throws -> Void) throws {
        let directory = url.deletingLastPathComponent().path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent)\(temporaryMarker)\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DurableFileError.from(errno: errno, path: temporary, operation: "create") }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            defer { close(fd) }
            try contents(fd, temporary)
            guard fsync(fd) == 0 else { throw DurableFileError.from(errno: errno, path: temporary, operation: "fsync") }
        }
        guard rename(temporary, url.path) == 0 else {
            throw DurableFileError.from(errno: errno, path: url.path, operation: "rename")
        }
        renamed = true
        try syncDirectory(directory)
    }

    /// Path-string spelling of `write(to:contents:)`.
    public static func write(to path: String, contents: (_ fd: Int32, _ temporaryPath: String) throws -> Void) throws {
        try write(to: URL(fileURLWithPath: path), contents: contents)
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

    /// Path-string spelling of `write(_:to:)` for callers that work in paths (checkpoints).
    public static func write(_ data: Data, to path: String) throws { try write(data, to: URL(fileURLWithPath: path)) }

    /// Builds a directory under a temporary name beside `path` (via `fill`), then moves it into
    /// place. An existing directory at `path` is swapped out atomically (`RENAME_EXCHANGE`) and then
    /// removed, so a reader sees the old or the new checkpoint and a crash leaves one of them (plus
    /// a stray `.name.tmp-…` directory), never a mix of the two.
    public static func replaceDirectory(at path: String, fill: (_ temporaryDirectory: String) throws -> Void) throws {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let parent = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw DurableFileError.notWritable(path: parent, reason: error.localizedDescription)
        }
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let tmp = parent + "/." + name + ".tmp-" + tag
        guard mkdir(tmp, 0o755) == 0 else { throw DurableFileError.from(errno: errno, path: tmp, operation: "create directory") }
        do {
            try fill(tmp)
            try syncDirectory(tmp)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: url.path, isDirectory: &isDir)
        if exists && !isDir.boolValue {
            try? fm.removeItem(atPath: tmp)
            throw DurableFileError.notWritable(path: url.path, reason: "exists and is not a directory; refusing to replace it")
        }
        if exists, let exchange = renameExchange, exchange(AT_FDCWD, tmp, AT_FDCWD, url.path, renameExchangeFlag) == 0 {
            // Swapped in one step: readers never see the path missing; `tmp` now holds the old directory.
            try syncDirectory(parent)
            try? fm.removeItem(atPath: tmp)
            return
        }
        var old: String?
        if exists {
            let aside = parent + "/." + name + ".old-" + tag
            guard rename(url.path, aside) == 0 else {
                try? fm.removeItem(atPath: tmp)
                throw DurableFileError.from(errno: errno, path: path, operation: "move the previous directory aside")
            }
            old = aside
        }
        guard rename(tmp, url.path) == 0 else {
            let e = DurableFileError.from(errno: errno, path: path, operation: "rename the new directory into place")
            if let old { _ = rename(old, url.path) }
            try? fm.removeItem(atPath: tmp)
            throw e
        }
        try syncDirectory(parent)
        if let old { try? fm.removeItem(atPath: old) }
    }

    /// Linux's `renameat2(…, RENAME_EXCHANGE)` swaps two paths atomically. Glibc's Swift overlay
    /// does not import it, so it is looked up at run time; where it is missing (old kernels, other
    /// systems, some filesystems) the replacement falls back to rename-aside-then-rename.
    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    private static let renameExchangeFlag: UInt32 = 1 << 1  // RENAME_EXCHANGE in <linux/fs.h>
    private static let renameExchange: RenameAt2? = {
        #if os(Linux)
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2") else { return nil }
        return unsafeBitCast(sym, to: RenameAt2.self)
        #else
        return nil
        #endif
    }()

    public static func writeAll(_ data: Data, to fd: Int32, path: String) throws {
        try data.withUnsafeBytes { try writeAll($0, to: fd, path: path) }
    }

    /// Bytes handed to one write(2). Linux moves at most 2 GiB − 4 KiB per call anyway; smaller
    /// pieces keep each call (the kernel's copy into the page cache) short, so a pending signal
    /// waits for at most one piece.
    public static let maxWriteBytes = 8 << 20

    /// Writes all of `bytes` to `fd`, continuing after partial writes and EINTR; a failure is a
    /// `DurableFileError` naming `path`.
    public static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32, path: String) throws {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            #if canImport(Glibc)
            let n = Glibc.write(fd, base + offset, min(bytes.count - offset, maxWriteBytes))
            #else
            let n = Darwin.write(fd, base + offset, min(bytes.count - offset, maxWriteBytes))
            #endif
            if n < 0 {
                if errno == EINTR { continue }
                throw DurableFileError.from(errno: errno, path: path, operation: "write")
            }
            guard n > 0 else { throw DurableFileError.io(path: path, operation: "write", reason: "the file accepted no bytes") }
            offset += n
        }
    }

    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw DurableFileError.from(errno: errno, path: path, operation: "open directory") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw DurableFileError.from(errno: errno, path: path, operation: "fsync directory") }
    }
}
