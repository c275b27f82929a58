import Foundation
import XCTest

/// The Python the peer checks run (PyTorch, transformers, tokenizers, gguf, pyzmq, tensorboard):
/// `$TETHER_PYTHON`, else the venv `scripts/test` makes at /tmp/peers, else `python3` on the PATH.
/// A test that needs a module calls `require` and is skipped, with the reason printed, without it.
public enum PeerPython {
    public static var executable: String {
        if let p = ProcessInfo.processInfo.environment["TETHER_PYTHON"], !p.isEmpty { return p }
        if FileManager.default.isExecutableFile(atPath: "/tmp/peers/bin/python") { return "/tmp/peers/bin/python" }
        return "/usr/bin/env"
    }
    static var prefixArguments: [String] { executable == "/usr/bin/env" ? ["python3"] : [] }
    /// How the Python is named in skip and failure messages.
    public static var name: String { ([executable] + prefixArguments).joined(separator: " ") }

    /// A process that runs the peer Python with `arguments` (a script path or `-c` code, then its
    /// arguments), not yet started.
    public static func process(_ arguments: [String]) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = prefixArguments + arguments
        return p
    }

    /// Runs `script` with `arguments` (and `input` on stdin); returns stdout, or throws with
    /// stderr on a non-zero exit.
    public static func run(_ script: String, _ arguments: [String] = [], input: Data? = nil, timeout: TimeInterval = 120) throws -> String {
        try runFile(["-c", script] + arguments, input: input, timeout: timeout)
    }

    /// Runs the peer Python with `arguments` as they are (e.g. a script path first).
    public static func runFile(_ arguments: [String], input: Data? = nil, timeout: TimeInterval = 120) throws -> String {
        let p = process(arguments)
        // Output goes to files, not pipes, so a chatty child can never block on a full pipe.
        let outPath = NSTemporaryDirectory() + "peer-\(UUID().uuidString).out"
        let errPath = outPath + ".err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let stdin = Pipe()
        if input != nil { p.standardInput = stdin }
        try p.run()
        if let input {
            stdin.fileHandleForWriting.write(input)
            try stdin.fileHandleForWriting.close()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            p.terminate()
            p.waitUntilExit()
            throw PeerError(message: "python peer timed out after \(timeout)s")
        }
        p.waitUntilExit()
        let outData = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        let errText = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data(), as: UTF8.self)
        guard p.terminationStatus == 0 else { throw PeerError(message: errText, status: p.terminationStatus) }
        return String(decoding: outData, as: UTF8.self)
    }

    /// Skips the calling test, with the reason printed, unless every module is installed
    /// (found, not imported: importing transformers alone takes half a minute on a busy machine).
    public static func require(_ modules: [String]) throws {
        let probe = "import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in \(modules)) else 1)"
        do { _ = try run(probe, timeout: 120) } catch {
            throw XCTSkip("peer check skipped: \(name) lacks \(modules.joined(separator: ", ")) (set TETHER_PYTHON to a Python that has them)")
        }
    }

    /// Skips the calling test unless `code` runs cleanly (a capability check beyond "installed",
    /// e.g. pyzmq built with CURVE).
    public static func require(running code: String, _ why: String) throws {
        do { _ = try run(code, timeout: 120) } catch {
            throw XCTSkip("peer check skipped: \(name) cannot \(why): \(String(describing: error).suffix(200))")
        }
    }

    public struct PeerError: Error, CustomStringConvertible {
        public var message: String
        public var status: Int32 = -1
        public var description: String { status >= 0 ? "python exited with \(status): \(message)" : message }
    }
}
