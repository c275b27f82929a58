import Foundation
import XCTest

/// The `tether` executable the tests run as a real process, as users and scripts run it:
/// `$TETHER_BINARY`, else the one beside the test bundle `swift test` built, else the package's
/// `.build/release/tether`.
public enum TetherBinary {
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static var path: String? {
        var candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tether").path,
            Bundle.main.bundleURL.appendingPathComponent("tether").path,
            packageRoot.appendingPathComponent(".build/release/tether").path,
        ]
        if let env = ProcessInfo.processInfo.environment["TETHER_BINARY"], !env.isEmpty { candidates.insert(env, at: 0) }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static func require() throws -> String {
        guard let p = path else {
            throw NSError(domain: "TetherBinary", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "tether binary not found beside the tests or in .build/release: run `swift build -c release` first (or set TETHER_BINARY)"])
        }
        return p
    }

    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `tether arguments` in `directory` and waits for it (at most `timeout` seconds, then it is
    /// terminated and the test fails). Output goes to files, so a chatty process never blocks.
    public static func run(_ arguments: [String], in directory: String, timeout: TimeInterval = 120,
                           file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try require())
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let tag = UUID().uuidString.prefix(8)
        let out = directory + "/.stdout-\(tag)", err = directory + "/.stderr-\(tag)"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: err) }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTAssertLessThan(Date(), deadline, "tether \(arguments) timed out", file: file, line: line)
        return Result(status: p.terminationStatus,
                      stdout: try String(contentsOfFile: out, encoding: .utf8),
                      stderr: try String(contentsOfFile: err, encoding: .utf8))
    }
}
