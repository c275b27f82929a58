import Foundation

/// Runs one optimizer step on its own thread so the learner's message loop keeps serving while it
/// trains: tickets are granted, trajectories admitted, heartbeats and weight requests answered.
///
/// Without this the learner is deaf for a whole step, actors that finish a ticket mid-step wait
/// for the step to end, and an asynchronous run (η > 0) degrades to lock-step: the learner then
/// waits for the next batch to be sampled, exactly as at η = 0. IMPALA (Espeholt et al. 2018, §3)
/// and SEED RL decouple the learner's compute from its I/O for the same reason.
///
/// Ownership: between `start` and the `finished()` that returns its result, the step's closure has
/// exclusive use of the policy, the reference and the optimizer; the loop thread touches none of
/// them meanwhile (weight requests are served from the broadcaster's snapshot).
final class BackgroundStep<Output>: @unchecked Sendable {
    // @unchecked Sendable: `result` and `running` are guarded by `lock`; the closure's captures are
    // handed over to the step thread for the duration of the step (see the ownership note above).
    private let lock = NSLock()
    private var running = false
    private var result: Result<Output, Error>?

    var isBusy: Bool { lock.lock(); defer { lock.unlock() }; return running || result != nil }

    /// Starts `body` on a new thread. Precondition: not busy.
    func start(name: String, _ body: @escaping () throws -> Output) {
        lock.lock()
        precondition(!running && result == nil, "BackgroundStep started while busy")
        running = true
        lock.unlock()
        nonisolated(unsafe) let work = body  // exclusive to the step thread until it finishes
        let thread = Thread { [self] in
            let r = Result { try work() }
            lock.lock()
            result = r
            running = false
            lock.unlock()
        }
        thread.name = name
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// The step's output once it has finished (rethrowing its error), nil while it runs or when idle.
    func finished() throws -> Output? {
        lock.lock()
        let r = result
        result = nil
        lock.unlock()
        return try r?.get()
    }
}
