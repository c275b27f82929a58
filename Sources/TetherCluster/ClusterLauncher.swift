import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `tether launch`: the learner and N actors as OS processes on this machine.
///
/// It resolves the config once (file + `--set`), writes it into the run directory and gives every
/// process that same file, puts the three learner endpoints on free loopback ports, and splits the
/// cores into BLAS-thread budgets: budget = max(1, ⌊cores / (actors + 1)⌋). With more processes
/// than cores (2 actors + learner on 2 cores) each still gets 1 thread and the machine is
/// oversubscribed; that is reported, not hidden: the learner is idle while actors sample and vice
/// versa, so the overlap costs less than the count suggests.
///
/// Output of all processes is merged line by line with a `[learner]` / `[actor-i]` prefix (and
/// copied to `launch.log` in the run directory); the learner's progress lines are redrawn in place
/// on a terminal. Ctrl-C is forwarded to the learner as a clean drain (actors ignore the terminal's
/// SIGINT and exit when the learner tells them to stop); a second Ctrl-C terminates everything.
public final class ClusterLauncher: @unchecked Sendable {
    // @unchecked Sendable: `learner`, `actors` and `stopping` are behind `lock` (the signal handler
    // reads them); `restarts` is touched only by the thread in `run()`.
    public struct Plan: Sendable {
        public var binary: URL
        public var configPath: String
        public var overrides: [String]
        public var actors: Int?
        public var runDirectory: URL?
        public var resume: Bool
        public var restartCrashedActors: Bool
        public var cores: Int
        public init(binary: URL, configPath: String, overrides: [String] = [], actors: Int? = nil, runDirectory: URL? = nil,
                    resume: Bool = false, restartCrashedActors: Bool = false, cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
            self.binary = binary; self.configPath = configPath; self.overrides = overrides; self.actors = actors
            self.runDirectory = runDirectory; self.resume = resume; self.restartCrashedActors = restartCrashedActors; self.cores = cores
        }
    }

    let plan: Plan
    let output: MergedOutput
    private var learner: Process?
    private var actors: [String: Process] = [:]
    private var restarts: [String: Int] = [:]
    private let lock = NSLock()
    private var stopping = false

    public init(plan: Plan) {
        self.plan = plan
        output = MergedOutput()
    }

    /// Budget per process and whether the processes oversubscribe the cores.
    public static func threadBudget(cores: Int, processes: Int) -> (threads: Int, oversubscribed: Bool) {
        (max(1, cores / max(1, processes)), processes > cores)
    }

    /// Runs the cluster to completion; returns the learner's exit status.
    public func run() throws -> Int32 {
        var overrides = plan.overrides
        if let n = plan.actors { overrides.append("actors.count=\(n)") }
        if !overrides.contains(where: { $0.hasPrefix("learner.") && $0.contains("endpoint") }) {
            overrides += try FreePort.endpointOverrides()
        }
        let source = plan.resume ? (plan.runDirectory?.appendingPathComponent("config.yaml").path ?? plan.configPath) : plan.configPath
        var config = try RunConfig.load(contentsOf: URL(fileURLWithPath: source), overrides: overrides)
        let root = plan.runDirectory ?? URL(fileURLWithPath: config.run.outDir).appendingPathComponent(config.run.name)
        let run = try RunDirectory(root: root)
        let (threads, oversubscribed) = ClusterLauncher.threadBudget(cores: plan.cores, processes: config.actors.count + 1)
        config.learner.blasThreads = threads
        config.actors.blasThreads = threads
        try run.writeResolvedConfig(config)
        output.open(log: root.appendingPathComponent("launch.log"))
        output.line("launch", "run directory \(root.path): learner + \(config.actors.count) actors, \(threads) BLAS thread(s) each on \(plan.cores) cores"
            + (oversubscribed ? " (oversubscribed: \(config.actors.count + 1) processes > \(plan.cores) cores)" : ""))

        let configPath = run.configURL.path
        Glibc.signal(SIGINT, SIG_IGN)
        Glibc.signal(SIGTERM, SIG_IGN)
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in self?.interrupted() }
            s.resume()
            return s
        }
        defer { signals.forEach { $0.cancel() } }

        var learnerArgs = ["learner", "--config", configPath, "--out", root.path, "--threads", String(threads)]
        if plan.resume { learnerArgs.append("--resume") }
        let learner = try spawn(name: "learner", arguments: learnerArgs, ignoreInterrupt: false)
        lock.lock(); self.learner = learner; lock.unlock()
        for i in 0..<config.actors.count {
            let name = "actor-\(i)"
            let p = try spawnActor(name, configPath, threads)
            lock.lock(); actors[name] = p; lock.unlock()
        }

        while learner.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            guard plan.restartCrashedActors, !isStopping else { continue }
            for (name, p) in snapshotActors() where !p.isRunning && (p.terminationStatus != 0 || p.terminationReason == .uncaughtSignal) {
                let n = restarts[name, default: 0]
                guard n < 5 else { continue }
                restarts[name] = n + 1
                output.line("launch", "\(name) exited (status \(p.terminationStatus)); restarting it (\(n + 1)/5)")
                let q = try spawnActor(name, configPath, threads)
                lock.lock(); actors[name] = q; lock.unlock()
            }
        }
        // The learner told the actors to stop; give them a moment, then make sure.
        let deadline = Date().addingTimeInterval(10)
        while snapshotActors().values.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        for p in snapshotActors().values where p.isRunning { p.terminate() }
        for p in snapshotActors().values { p.waitUntilExit() }
        output.finishProgress()
        output.line("launch", "learner exited with status \(learner.terminationStatus); metrics in \(run.metricsURL.path)")
        output.close()
        return learner.terminationStatus
    }

    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }
    private func snapshotActors() -> [String: Process] { lock.lock(); defer { lock.unlock() }; return actors }

    /// Actors sharing this machine's cores with the learner run at nice 10. In an asynchronous run
    /// (η > 0) the learner's step is the serial bottleneck and the actors have slack (they may run
    /// up to η versions ahead), so when they contend the learner should win; at η = 0 the two
    /// alternate and priority changes nothing. Measured on 2 cores: +5–15 % samples/s at η = 2.
    static let actorNiceness: Int32 = 10

    private func spawnActor(_ name: String, _ configPath: String, _ threads: Int) throws -> Process {
        let p = try spawn(name: name, arguments: actorArguments(name, configPath, threads), ignoreInterrupt: true)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(p.processIdentifier), ClusterLauncher.actorNiceness)
        return p
    }

    private func actorArguments(_ name: String, _ configPath: String, _ threads: Int) -> [String] {
        ["actor", "--config", configPath, "--id", name, "--threads", String(threads)]
    }

    private func interrupted() {
        lock.lock()
        let first = !stopping
        stopping = true
        let learner = self.learner
        let actors = Array(self.actors.values)
        lock.unlock()
        if first {
            output.line("launch", "interrupt: asking the learner to drain (Ctrl-C again to terminate everything)")
            if let l = learner, l.isRunning { kill(l.processIdentifier, SIGINT) }
        } else {
            output.line("launch", "second interrupt: terminating all processes")
            for p in actors + [learner].compactMap({ $0 }) where p.isRunning { p.terminate() }
        }
    }

    private func spawn(name: String, arguments: [String], ignoreInterrupt: Bool) throws -> Process {
        let p = Process()
        p.executableURL = plan.binary
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        if ignoreInterrupt { env["TETHER_IGNORE_SIGINT"] = "1" }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        output.attach(out.fileHandleForReading, name: name)
        output.attach(err.fileHandleForReading, name: name)
        try p.run()
        output.line("launch", "started \(name) (pid \(p.processIdentifier))")
        return p
    }
}

/// Merges the children's output line by line with a name prefix; progress lines are redrawn in
/// place on a terminal and printed as plain lines otherwise.
final class MergedOutput: @unchecked Sendable {
    // @unchecked Sendable: all state behind `lock`; readability handlers run on arbitrary threads.
    private let lock = NSLock()
    private var partial: [ObjectIdentifier: Data] = [:]
    private var log: FileHandle?
    private var progressShown = false
    private let isTerminal = isatty(STDOUT_FILENO) == 1

    func open(log url: URL) {
        FileManager.default.createFile(atPath: url.path, contents: nil)
        lock.lock(); log = try? FileHandle(forWritingTo: url); _ = try? log?.seekToEnd(); lock.unlock()
    }

    func close() { lock.lock(); try? log?.close(); log = nil; lock.unlock() }

    func attach(_ handle: FileHandle, name: String) {
        handle.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self else { return }
            if data.isEmpty { h.readabilityHandler = nil; self.flushPartial(h, name: name); return }
            self.consume(data, from: h, name: name)
        }
    }

    private func consume(_ data: Data, from h: FileHandle, name: String) {
        lock.lock()
        var buffer = partial[ObjectIdentifier(h), default: Data()]
        buffer.append(data)
        var lines: [String] = []
        while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(String(decoding: buffer[buffer.startIndex ..< nl], as: UTF8.self))
            buffer = Data(buffer[(nl + 1)...])
        }
        partial[ObjectIdentifier(h)] = buffer
        lock.unlock()
        for l in lines { line(name, l) }
    }

    private func flushPartial(_ h: FileHandle, name: String) {
        lock.lock()
        let rest = partial.removeValue(forKey: ObjectIdentifier(h)) ?? Data()
        lock.unlock()
        if !rest.isEmpty { line(name, String(decoding: rest, as: UTF8.self)) }
    }

    func line(_ name: String, _ text: String) {
        let isProgress = text.hasPrefix(ProgressReporter.prefix)
        let prefixed = "[\(name)] \(text)"
        lock.lock(); defer { lock.unlock() }
        log?.write(Data((prefixed + "\n").utf8))
        if isProgress && isTerminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + text.dropFirst(ProgressReporter.prefix.count)).utf8))
            progressShown = true
            return
        }
        let clear = progressShown && isTerminal ? "\r\u{1B}[K" : ""
        progressShown = false
        FileHandle.standardOutput.write(Data((clear + prefixed + "\n").utf8))
    }

    func finishProgress() {
        lock.lock(); defer { lock.unlock() }
        if progressShown { FileHandle.standardOutput.write(Data("\n".utf8)); progressShown = false }
    }
}
