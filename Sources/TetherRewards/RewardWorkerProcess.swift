import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One reward worker subprocess (`RewardServiceProtocol`): started with `/bin/sh -c "exec <command>"`
/// (so a command may be `ssh host python3 worker.py` for a worker on another machine), spoken to
/// in JSON lines over its stdin and stdout; its stderr is the actor's. Every read has a deadline
/// (`poll`), so a hung worker costs at most the timeout. After any failure the process is killed
/// and the next request starts a fresh one: a request never reaches a worker in an unknown state.
///
/// Used by one thread at a time (`RewardServicePool` gives each worker its own thread).
public final class RewardWorkerProcess {
    public let command: String
    public let startupTimeout: Double
    public let environment: [String: String]
    private var process: Process?
    private var input: FileHandle?
    private var outputFD: Int32 = -1
    private var buffer: [UInt8] = []
    private var nextID = 1
    /// The version from the hello line of the running process ("" before the first start).
    public private(set) var helloVersion = ""
    /// Processes started so far (the first start included).
    public private(set) var starts = 0

    public init(command: String, startupTimeout: Double, environment: [String: String] = [:]) {
        self.command = command
        self.startupTimeout = startupTimeout
        self.environment = environment
        // A write to a worker that has just died must be an error, not a signal that ends the actor.
        signal(SIGPIPE, SIG_IGN)
    }

    deinit { stop() }

    public var pid: Int32? { process.map { $0.processIdentifier } }

    /// Scores `samples` in one request within `timeout` seconds (starting the worker first when
    /// none runs). Any failure leaves no process behind.
    public func score(_ samples: [RewardServiceSample], timeout: Double) throws -> RewardServiceReply {
        do {
            if process == nil { try start() }
            let id = nextID
            nextID += 1
            var line = try RewardServiceReply.requestLine(id: id, samples: samples)
            line.append(UInt8(ascii: "\n"))
            let deadline = nowSeconds() + timeout
            try write(line, deadline: deadline, timeout: timeout)
            let reply = try readLine(deadline: deadline, timeout: timeout)
            return try RewardServiceReply.parse(reply, id: id, count: samples.count)
        } catch {
            stop()
            throw error
        }
    }

    /// Kills the process (SIGKILL: a worker that failed is not trusted to exit by itself) and reaps it.
    public func stop() {
        guard let p = process else { return }
        process = nil
        try? input?.close()
        input = nil
        if outputFD >= 0 { close(outputFD); outputFD = -1 }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        buffer.removeAll()
    }

    private func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "exec " + command]
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        do { try p.run() } catch { throw RewardServiceFailure.startFailed("\(command): \(error)") }
        starts += 1
        process = p
        input = stdin.fileHandleForWriting
        // Our own copy of the read end, read with poll/read; Foundation's handle is closed with the Pipe.
        outputFD = dup(stdout.fileHandleForReading.fileDescriptor)
        try? stdout.fileHandleForReading.close()
        try? stdin.fileHandleForReading.close()
        try? stdout.fileHandleForWriting.close()
        do {
            let hello = try readLine(deadline: nowSeconds() + startupTimeout, timeout: startupTimeout)
            helloVersion = try RewardServiceReply.parseHello(hello)
        } catch let e as RewardServiceFailure {
            if case .timeout = e { throw RewardServiceFailure.badHello("no hello line within \(startupTimeout) s") }
            throw e
        }
    }

    private func write(_ data: Data, deadline: Double, timeout: Double) throws {
        guard let fd = input?.fileDescriptor else { throw RewardServiceFailure.crashed("no input pipe") }
        var offset = 0
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            while offset < raw.count {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let wait = Int32(max(0, min(Double(Int32.max), (deadline - nowSeconds()) * 1000)))
                let ready = poll(&pfd, 1, wait)
                if ready == 0 { throw RewardServiceFailure.timeout(seconds: timeout) }
                if ready < 0 { if errno == EINTR { continue }; throw RewardServiceFailure.crashed("poll: errno \(errno)") }
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw RewardServiceFailure.crashed(exitDescription(fallback: "stdin closed (errno \(errno))"))
                }
                offset += n
            }
        }
    }

    /// The next line of stdout, without its newline.
    private func readLine(deadline: Double, timeout: Double) throws -> Data {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(buffer[..<nl])
                buffer.removeFirst(nl + 1)
                return line
            }
            var pfd = pollfd(fd: outputFD, events: Int16(POLLIN), revents: 0)
            let wait = Int32(max(0, min(Double(Int32.max), (deadline - nowSeconds()) * 1000)))
            let ready = poll(&pfd, 1, wait)
            if ready == 0 { throw RewardServiceFailure.timeout(seconds: timeout) }
            if ready < 0 { if errno == EINTR { continue }; throw RewardServiceFailure.crashed("poll: errno \(errno)") }
            let n = read(outputFD, &chunk, chunk.count)
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; throw RewardServiceFailure.crashed("read: errno \(errno)") }
            if n == 0 { throw RewardServiceFailure.crashed(exitDescription(fallback: "stdout closed")) }
            buffer.append(contentsOf: chunk[..<n])
            if buffer.count > 64 << 20 { throw RewardServiceFailure.badReply("a line longer than 64 MiB") }
        }
    }

    /// How the process ended, when it has (waits briefly: the pipe closes just before the exit is reaped).
    private func exitDescription(fallback: String) -> String {
        guard let p = process else { return fallback }
        let until = nowSeconds() + 0.5
        while p.isRunning && nowSeconds() < until { usleep(10_000) }
        guard !p.isRunning else { return fallback }
        return p.terminationReason == .uncaughtSignal ? "killed by signal \(p.terminationStatus)" : "exit status \(p.terminationStatus)"
    }
}

func nowSeconds() -> Double { Date().timeIntervalSince1970 }
