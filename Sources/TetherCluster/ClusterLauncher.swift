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
/// copied to `launch.log` in the run directory, see `MergedOutput`); the learner's progress lines
/// are redrawn in place on a terminal. An actor that exits is reported with its status or signal
/// and its last stderr line; with `--restart-actors` a crashed one is restarted (up to 5 times),
/// and when no actor is left and none will restart the learner is drained and launch fails. Ctrl-C is forwarded to the learner as a clean drain (actors ignore the terminal's
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
    /// Exited actor processes already reported (by process object: a restarted actor is a new one).
    private var reported: Set<ObjectIdentifier> = []
    private var deaths: [String] = []
    static let maxRestarts = 5
    /// How long a learner asked to drain (no actors left) may take before it is terminated: its
    /// drain timeout (30 s) plus the final checkpoint.
    static let learnerDrainSeconds = 60.0
    /// How long the learner may keep running after every actor exited cleanly (status 0, as when it
    /// stopped them) before launch treats the run as stuck.
    static let cleanExitGraceSeconds = 20.0
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
        try config.validateForCluster()
        // The local actors load the reward model: a wrong path stops the launch here, not in each actor.
        if config.task.reward == .rewardModel && !FileManager.default.fileExists(atPath: config.task.rewardModelPath) {
            throw ConfigError.invalidValue(path: "task.reward_model_path",
                                           reason: "\(config.task.rewardModelPath) does not exist (a directory written by `tether rm train`)")
        }
        // The processes read the config written below: it carries the policy's real shape.
        config = try config.resolvingModel()
        try config.checkWeightsFitMessageLimit(try config.policyArchitecture())
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

        var failure: String?
        var crashes = 0
        var allGoneSince: Date?
        while learner.isRunning {
            Thread.sleep(forTimeInterval: 0.2)
            guard !isStopping else { continue }
            for (name, p) in snapshotActors().sorted(by: { $0.key < $1.key }) where !p.isRunning && !reported.contains(ObjectIdentifier(p)) {
                reported.insert(ObjectIdentifier(p))
                let why = exitDescription(p, name: name)
                let crashed = p.terminationStatus != 0 || p.terminationReason == .uncaughtSignal
                let n = restarts[name, default: 0]
                if plan.restartCrashedActors && crashed && n < ClusterLauncher.maxRestarts {
                    restarts[name] = n + 1
                    output.line("launch", "\(why); restarting it (\(n + 1)/\(ClusterLauncher.maxRestarts))")
                    let q = try spawnActor(name, configPath, threads)
                    lock.lock(); actors[name] = q; lock.unlock()
                } else {
                    let note = !crashed ? "" : plan.restartCrashedActors ? "; not restarted again (\(n) restarts)" : "; not restarted (use --restart-actors)"
                    output.line("launch", why + note)
                    deaths.append(why)
                    if crashed { crashes += 1 }
                }
            }
            let allGone = !snapshotActors().isEmpty && !snapshotActors().values.contains(where: \.isRunning)
            if !allGone { allGoneSince = nil } else if allGoneSince == nil { allGoneSince = Date() }
            // Actors exit with status 0 when the learner tells them to stop, just before it exits
            // itself; only when one crashed, or the learner outlives clean exits by a grace period,
            // is the run stuck.
            let stuck = allGone && (crashes > 0 || Date().timeIntervalSince(allGoneSince ?? Date()) > ClusterLauncher.cleanExitGraceSeconds)
            if failure == nil, stuck {
                // Nothing can train any more: drain the learner (it checkpoints) rather than wait forever.
                failure = "no actor is left and none will restart (\(deaths.joined(separator: "; "))); stopping the learner"
                output.line("launch", failure!)
                lock.lock(); stopping = true; lock.unlock()
                kill(learner.processIdentifier, SIGINT)
                let deadline = Date().addingTimeInterval(ClusterLauncher.learnerDrainSeconds)
                while learner.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
                if learner.isRunning {
                    output.line("launch", "the learner did not stop within \(Int(ClusterLauncher.learnerDrainSeconds)) s: terminating it")
                    learner.terminate()
                }
            }
        }
        // The learner told the actors to stop; give them a moment, then make sure.
        let deadline = Date().addingTimeInterval(10)
        while snapshotActors().values.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        for p in snapshotActors().values where p.isRunning { p.terminate() }
        for p in snapshotActors().values { p.waitUntilExit() }
        output.finishProgress()
        output.line("launch", exitDescription(learner, name: "learner") + "; metrics in \(run.metricsURL.path)")
        output.close()
        if let failure { throw ClusterError.processFailed("launch failed: " + failure) }
        return learner.terminationReason == .uncaughtSignal ? 128 + learner.terminationStatus : learner.terminationStatus
    }

    /// "actor-1 exited with status 1 (last stderr line: …)" / "… was killed by signal 9 (SIGKILL)".
    private func exitDescription(_ p: Process, name: String) -> String {
        let status = p.terminationStatus
        var text = p.terminationReason == .uncaughtSignal
            ? "\(name) (pid \(p.processIdentifier)) was killed by signal \(status)\(signalName(status).map { " (\($0))" } ?? "")"
            : "\(name) (pid \(p.processIdentifier)) exited with status \(status)"
        if let last = output.lastErrorLine(of: name) { text += " (last stderr line: \(last))" }
        return text
    }

    private func signalName(_ signal: Int32) -> String? {
        [SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGILL: "SIGILL",
         SIGTRAP: "SIGTRAP", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGPIPE: "SIGPIPE", SIGHUP: "SIGHUP"][signal]
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
        try p.run()  // closes the parent's write ends, so a reader sees end of file when the child exits
        output.attach(out.fileHandleForReading, name: name, isErrorStream: false)
        output.attach(err.fileHandleForReading, name: name, isErrorStream: true)
        output.line("launch", "started \(name) (pid \(p.processIdentifier))")
        return p
    }
}

