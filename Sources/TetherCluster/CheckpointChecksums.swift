import Foundation
import TetherModel

/// `checksums.json` in a learner checkpoint: the CRC-32C of every file in it (weights, optimizer
/// moments, trainer and cluster state), written last, just before the commit rename.
///
/// Finite-weights and accounting checks catch a checkpoint that is wrong as a whole, not a flipped
/// bit that leaves a finite weight (a mantissa bit changes a value by less than the weight itself).
/// A CRC-32C detects every error burst of up to 32 bits and any odd number of flipped bits
/// (Castagnoli, Bräuer & Herrmann 1993), and is what TFRecord frames and the TensorBoard event files
/// this run writes already use.
public enum CheckpointChecksums {
    public static let fileName = "checksums.json"

    struct Manifest: Codable, Equatable {
        var algorithm = "crc32c"
        /// Path relative to the checkpoint directory → checksum as 8 lowercase hex digits.
        var files: [String: String]
    }

    /// Checksums every file under `directory` and writes the manifest beside them.
    public static func write(directory: URL) throws {
        var files: [String: String] = [:]
        for path in try relativeFiles(in: directory) { files[path] = try checksum(of: directory.appendingPathComponent(path)) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(encoder.encode(Manifest(files: files)), to: directory.appendingPathComponent(fileName))
    }

    /// Recomputes every listed checksum; throws a `CheckpointDefect` naming the first file that is
    /// missing, differs, or is present but not listed. Returns the number of files checked.
    @discardableResult
    public static func verify(directory: URL) throws -> Int {
        func defect(_ problem: String) -> CheckpointDefect { CheckpointDefect(path: directory.path, problem: problem) }
        let manifestURL = directory.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else {
            throw defect("\(fileName) is missing, so the files cannot be checked for corruption")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch { throw defect("\(fileName) does not load: \(error)") }
        guard manifest.algorithm == "crc32c" else { throw defect("\(fileName) uses unknown algorithm '\(manifest.algorithm.prefix(40))'") }
        let present = Set(try relativeFiles(in: directory))
        for path in manifest.files.keys.sorted() {
            guard present.contains(path) else { throw defect("\(path) is listed in \(fileName) but missing") }
            let actual = try checksum(of: directory.appendingPathComponent(path))
            guard actual == manifest.files[path] else {
                throw defect("\(path) is corrupt: CRC-32C \(actual), \(fileName) records \(manifest.files[path]!.prefix(16))")
            }
        }
        if let stray = present.subtracting(manifest.files.keys).sorted().first {
            throw defect("\(stray) is not listed in \(fileName) (added after the checkpoint was written?)")
        }
        return manifest.files.count
    }

    static func checksum(of url: URL) throws -> String {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        let crc = data.withUnsafeBytes { CRC32C.checksum($0) }
        let hex = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Regular files below `directory`, relative, without the manifest itself.
    static func relativeFiles(in directory: URL) throws -> [String] {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: directory.path) else {
            throw CheckpointDefect(path: directory.path, problem: "cannot list the checkpoint directory")
        }
        var files: [String] = []
        while let path = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            guard path != fileName, fm.fileExists(atPath: directory.appendingPathComponent(path).path, isDirectory: &isDirectory),
                  !isDirectory.boolValue else { continue }
            files.append(path)
        }
        return files.sorted()
    }
}
