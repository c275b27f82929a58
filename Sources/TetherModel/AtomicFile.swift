import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Crash-safe file and directory replacement: a reader sees the old content or the new, never a
/// half-written file. The recipe is the POSIX one (write a temporary in the same directory, fsync
/// it, rename over the target, fsync the directory so the rename itself is durable).
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw ioError("cannot create \(tmp)", path: path) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var done = 0
                while done < raw.count {
                    let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw ioError("write failed", path: path)
                    }
                    done += n
                }
            }
            guard fsync(fd) == 0 else { throw ioError("fsync failed", path: path) }
        }
        guard rename(tmp, path) == 0 else { throw ioError("rename into place failed", path: path) }
        ok = true
        syncDirectory(dir)
    }

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
            throw ModelError.writeFailed(path: parent, detail: "cannot create directory: \(error.localizedDescription)")
        }
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let tmp = parent + "/." + name + ".tmp-" + tag
        guard mkdir(tmp, 0o755) == 0 else { throw ioError("cannot create \(tmp)", path: path) }
        do {
            try fill(tmp)
            syncDirectory(tmp)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: url.path, isDirectory: &isDir)
        if exists && !isDir.boolValue {
            try? fm.removeItem(atPath: tmp)
            throw ModelError.writeFailed(path: url.path, detail: "exists and is not a directory; refusing to replace it")
        }
        if exists, let exchange = renameExchange, exchange(AT_FDCWD, tmp, AT_FDCWD, url.path, renameExchangeFlag) == 0 {
            // Swapped in one step: readers never see the path missing; `tmp` now holds the old directory.
            syncDirectory(parent)
            try? fm.removeItem(atPath: tmp)
            return
        }
        var old: String?
        if exists {
            let aside = parent + "/." + name + ".old-" + tag
            guard rename(url.path, aside) == 0 else {
                try? fm.removeItem(atPath: tmp)
                throw ioError("cannot move the previous directory aside", path: path)
            }
            old = aside
        }
        guard rename(tmp, url.path) == 0 else {
            let e = ioError("cannot rename the new directory into place", path: path)
            if let old { _ = rename(old, url.path) }
            try? fm.removeItem(atPath: tmp)
            throw e
        }
        syncDirectory(parent)
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

    static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    static func ioError(_ what: String, path: String) -> ModelError {
        .writeFailed(path: path, detail: "\(what): \(String(cString: strerror(errno)))")
    }
}
