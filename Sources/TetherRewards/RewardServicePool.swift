import Foundation

/// How an actor uses its reward workers (`task.reward_service` in the config).
public struct RewardServiceOptions: Sendable, Equatable {
    /// The worker command, run by `/bin/sh -c "exec …"`.
    public var command: String
    /// Worker processes: at most this many requests are scored at once.
    public var workers: Int
    /// Seconds a request may take before the worker is killed and the request retried.
    public var timeoutSeconds: Double
    /// Seconds a new worker may take to print its hello line.
    public var startupTimeoutSeconds: Double
    /// Attempts per request (each failed one restarts its worker) before the group is given up.
    public var maxAttempts: Int
    /// Extra environment for the workers.
    public var environment: [String: String]

    public init(command: String, workers: Int = 1, timeoutSeconds: Double = 30, startupTimeoutSeconds: Double = 60,
                maxAttempts: Int = 3, environment: [String: String] = [:]) {
        self.command = command
        self.workers = workers
        self.timeoutSeconds = timeoutSeconds
        self.startupTimeoutSeconds = startupTimeoutSeconds
        self.maxAttempts = maxAttempts
        self.environment = environment
    }
}

/// The outcome of scoring one group through the service.
public struct ServiceScoredGroup: Sendable {
    /// The rewards, one per sample, or why the group could not be scored after every attempt.
    public var result: Result<RewardServiceReply, RewardServiceFailure>
    /// Failed attempts before the result (each restarted a worker); every reason, in order.
    public var failures: [RewardServiceFailure]
    public var seconds: Double
}

/// `workers` reward worker processes, each driven by its own thread, scoring groups in parallel:
/// bounded concurrency (never more than `workers` requests in flight) with one request per group
/// (a batch of G samples). A request that fails — timeout, crash, garbage — kills its worker
/// (restarted on its next request) and goes back to the queue for any worker, up to
/// `maxAttempts`; after that the group comes back as a failure with its reason, never as rewards.
public final class RewardServicePool: @unchecked Sendable {
    // @unchecked Sendable: the job queue and results behind `lock`; each worker owned by one thread.
    public let options: RewardServiceOptions
    private let workers: [RewardWorkerProcess]
    private let lock = NSCondition()
    private var queue: [(job: Int, attempt: Int, failures: [RewardServiceFailure], started: Double)] = []
    private var batch: [[RewardServiceSample]] = []
    private var results: [Int: ServiceScoredGroup] = [:]
    private var stopped = false
    private var threads: [Thread] = []
    private var startCounts: [Int]

    public init(options: RewardServiceOptions) throws {
        guard !options.command.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw RewardError.invalidSpec("task.reward_service.command is empty: name the worker command (e.g. python3 scripts/rewards/worker.py --reward math)")
        }
        guard options.workers >= 1, options.maxAttempts >= 1, options.timeoutSeconds > 0, options.startupTimeoutSeconds > 0 else {
            throw RewardError.invalidSpec("reward service needs workers ≥ 1, max_attempts ≥ 1 and positive timeouts")
        }
        self.options = options
        startCounts = Array(repeating: 0, count: options.workers)
        workers = (0..<options.workers).map { i in
            RewardWorkerProcess(command: options.command, startupTimeout: options.startupTimeoutSeconds,
                                environment: options.environment.merging(["TETHER_REWARD_WORKER_INDEX": String(i)]) { $1 })
        }
        for i in workers.indices {
            let t = Thread { [self] in serve(index: i) }
            t.name = "tether.reward.worker\(i)"
            threads.append(t)
            t.start()
        }
    }

    deinit { stop() }

    /// Worker processes started so far, restarts included.
    public var starts: Int { lock.lock(); defer { lock.unlock() }; return startCounts.reduce(0, +) }

    /// Scores every group (one request each), returning when all have a result. One call at a time.
    public func score(_ groups: [[RewardServiceSample]]) -> [ServiceScoredGroup] {
        lock.lock()
        batch = groups
        results = [:]
        let now = nowSeconds()
        queue = groups.indices.map { ($0, 1, [], now) }
        lock.broadcast()
        while results.count < groups.count && !stopped { lock.wait() }
        let out = groups.indices.map { results[$0] ?? ServiceScoredGroup(result: .failure(.crashed("reward service stopped")), failures: [], seconds: 0) }
        batch = []
        lock.unlock()
        return out
    }

    /// Stops the threads and kills the workers.
    public func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        lock.broadcast()
        lock.unlock()
        guard !wasStopped else { return }
        for w in workers { w.stop() }
    }

    private func serve(index: Int) {
        let worker = workers[index]
        while true {
            lock.lock()
            while queue.isEmpty && !stopped { lock.wait() }
            if stopped { lock.unlock(); worker.stop(); return }
            let item = queue.removeFirst()
            let samples = batch[item.job]
            lock.unlock()

            let outcome: Result<RewardServiceReply, RewardServiceFailure>
            do { outcome = .success(try worker.score(samples, timeout: options.timeoutSeconds)) } catch let e as RewardServiceFailure {
                outcome = .failure(e)
            } catch {
                outcome = .failure(.badReply("\(error)"))
            }

            lock.lock()
            startCounts[index] = worker.starts
            switch outcome {
            case .success:
                results[item.job] = ServiceScoredGroup(result: outcome, failures: item.failures, seconds: nowSeconds() - item.started)
            case .failure(let e) where item.attempt < options.maxAttempts:
                // First in line again: a retry is the oldest work, and its group's ticket waits on it.
                queue.insert((item.job, item.attempt + 1, item.failures + [e], item.started), at: 0)
            case .failure(let e):
                results[item.job] = ServiceScoredGroup(result: outcome, failures: item.failures + [e], seconds: nowSeconds() - item.started)
            }
            lock.broadcast()
            lock.unlock()
        }
    }
}
