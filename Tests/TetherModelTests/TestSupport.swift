import Foundation
import XCTest

/// A fresh directory under the system temporary directory, removed by the test's teardown.
func makeTemporaryDirectory(_ test: XCTestCase, _ label: String = "tether-model") throws -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Deterministic test values (SplitMix64), so a failure reproduces.
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    mutating func floats(_ n: Int, scale: Float = 0.1) -> [Float] { (0..<n).map { _ in float() * scale } }
}

/// The Python used for peer checks (TEAM.md: $TETHER_PYTHON, else /tmp/peers/bin/python, else python3).
enum PeerPython {
    static var executable: String {
        if let p = ProcessInfo.processInfo.environment["TETHER_PYTHON"], !p.isEmpty { return p }
        if FileManager.default.isExecutableFile(atPath: "/tmp/peers/bin/python") { return "/tmp/peers/bin/python" }
        return "/usr/bin/env"
    }
    static var prefixArguments: [String] { executable == "/usr/bin/env" ? ["python3"] : [] }

    /// Runs `script` with `arguments`; returns stdout, or throws with stderr on a non-zero exit.
    static func run(_ script: String, _ arguments: [String] = [], timeout: TimeInterval = 120) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = prefixArguments + ["-c", script] + arguments
        // Output goes to files, not pipes, so a chatty child can never block on a full pipe.
        let outPath = NSTemporaryDirectory() + "peer-\(UUID().uuidString).out"
        let errPath = outPath + ".err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); throw NSError(domain: "PeerPython", code: -1, userInfo: [NSLocalizedDescriptionKey: "python peer timed out after \(timeout)s"]) }
        p.waitUntilExit()
        let outData = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        let errText = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data(), as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw NSError(domain: "PeerPython", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: errText])
        }
        return String(decoding: outData, as: UTF8.self)
    }

    /// Skips the calling test, with the reason printed, unless every module is installed
    /// (found, not imported: importing transformers alone takes half a minute on a busy machine).
    static func require(_ modules: [String]) throws {
        let probe = "import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in \(modules)) else 1)"
        do { _ = try run(probe, timeout: 120) } catch {
            throw XCTSkip("peer check skipped: \(([executable] + prefixArguments).joined(separator: " ")) lacks \(modules.joined(separator: ", ")) (set TETHER_PYTHON to a Python that has them)")
        }
    }
}

/// `a` equals `b` to `tolerance` (1e-5) of each entry, with a floor of 1 % of the largest entry of
/// `b` for entries that are nearly zero (sums of terms that cancel).
func assertRelativelyEqual(_ a: [Float], _ b: [Float], _ what: String, tolerance: Float = 1e-5,
                           file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    let scale = b.map(abs).max() ?? 0
    var worst: Float = 0, at = 0
    for i in b.indices {
        let excess = abs(a[i] - b[i]) / max(abs(b[i]), 1e-2 * scale, 1e-30)
        if excess > worst { worst = excess; at = i }
    }
    XCTAssertLessThanOrEqual(worst, tolerance, "\(what): entry \(at) is \(a.isEmpty ? 0 : a[at]) vs \(b.isEmpty ? 0 : b[at])", file: file, line: line)
}
