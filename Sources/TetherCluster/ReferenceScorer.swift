import Foundation
import TetherModel
import TetherRL

/// Computes log π_ref of admitted groups on its own thread while they wait in the batch buffer, so
/// the optimizer step only runs the policy's forward and backward.
///
/// The KL term needs the frozen reference's log-probs of every trained token (DeepSeekMath eq. 3):
/// a whole extra forward, a quarter of a step's compute. It depends on nothing the step changes, so
/// OpenRLHF and verl compute it when the experience is made rather than inside the update; here it
/// happens as groups arrive, on time the learner would otherwise spend waiting (η = 0: while the
/// actors sample; η > 0: beside the step). A group the scorer has not reached when its batch is
/// trained is simply scored by the step itself (`take` returns nil), so nothing ever waits on it.
///
/// The scorer owns its own copy of the reference: a `LlamaModel` keeps per-call scratch buffers and
/// must not be shared between threads.
public final class ReferenceScorer<Key: Hashable & Sendable>: @unchecked Sendable {
    // @unchecked Sendable: every field below `lock` is guarded by it; `model` is used only by the
    // scorer thread.
    private let model: LlamaModel
    private let lock = NSCondition()
    private var queue: [(key: Key, group: RolloutBatch)] = []
    private var results: [Key: [[Float]]] = [:]
    private var inProgress: Set<Key> = []
    private var abandoned: Set<Key> = []
    private var stopped = false
    /// Groups scored per round: one GEMM over several groups runs closer to peak than one per group.
    private let groupsPerForward: Int
    /// The forward's micro-batch budget (`learner.micro_batch_tokens`), as in the update itself.
    private let microBatchTokens: Int

    public init(reference: LlamaModel, groupsPerForward: Int = 8, microBatchTokens: Int = RLTrainerOptions.defaultMicroBatchTokens) throws {
        let copy = try LlamaModel(config: reference.config)
        copy.copyParameters(from: reference)
        model = copy
        self.groupsPerForward = max(1, groupsPerForward)
        self.microBatchTokens = max(1, microBatchTokens)
        let thread = Thread { [self] in serve() }
        thread.name = "tether.learner.reference"
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// Queues a group for scoring.
    public func submit(_ key: Key, group: RolloutBatch) {
        lock.lock()
        queue.append((key, group))
        lock.signal()
        lock.unlock()
    }

    /// The group's per-sample reference log-probs if already computed, else nil (and the scorer
    /// forgets the group: the caller computes it).
    public func take(_ key: Key) -> [[Float]]? {
        lock.lock(); defer { lock.unlock() }
        if let r = results.removeValue(forKey: key) { return r }
        queue.removeAll { $0.key == key }
        if inProgress.contains(key) { abandoned.insert(key) }
        return nil
    }

    public func stop() {
        lock.lock()
        stopped = true
        lock.signal()
        lock.unlock()
    }

    /// Groups waiting or being scored (for tests and metrics).
    public var backlog: Int { lock.lock(); defer { lock.unlock() }; return queue.count + inProgress.count }

    private func serve() {
        while true {
            lock.lock()
            while queue.isEmpty && !stopped { lock.wait() }
            if stopped { lock.unlock(); return }
            let work = Array(queue.prefix(groupsPerForward))
            queue.removeFirst(work.count)
            inProgress = Set(work.map(\.key))
            lock.unlock()

            let batch = try? RolloutBatch(concatenating: work.map(\.group))
            // The forward-only workspace (one layer's rows and the LM head's block, ~150 MB at
            // SmolLM2's shape) is kept for the next round: freeing it would fault it in again each time.
            let scored = try? batch.map { try PolicyUpdate.completionLogProbs(of: model, $0, microBatchTokens: microBatchTokens) }

            lock.lock()
            if let batch, let scored {
                var s = 0
                for item in work {
                    let n = item.group.sequenceCount
                    if !abandoned.contains(item.key) { results[item.key] = (s ..< s + n).map { Array(scored[batch.layout.range(of: $0)]) } }
                    s += n
                }
            }
            abandoned.subtract(inProgress)
            inProgress = []
            lock.unlock()
        }
    }
}
