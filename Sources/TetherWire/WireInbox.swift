import Foundation

/// The bounded hand-off from a socket's owner thread to its consumers, blocking (`pop(timeout:)`)
/// or async (`next()`), so nobody blocks on ZeroMQ inside Swift concurrency's cooperative pool.
final class WireInbox: @unchecked Sendable {
    // @unchecked Sendable: all state behind `condition`.
    private let condition = NSCondition()
    /// Popped slots are emptied at once: a consumed message (a weights broadcast holds hundreds of
    /// megabytes of ZeroMQ frames) must be freed when its consumer drops it, not when the array is
    /// next compacted.
    private var items: [WireReceived?] = []
    private var head = 0
    private var waiters: [CheckedContinuation<WireReceived?, Never>] = []
    private var closed = false
    let capacity: Int
    /// Called (outside the lock) after a pop frees space in a full inbox: wakes the owner thread.
    var onSpace: (@Sendable () -> Void)?

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { condition.lock(); defer { condition.unlock() }; return items.count - head }
    var hasSpace: Bool { count < capacity }

    func push(_ item: WireReceived) {
        condition.lock()
        if !waiters.isEmpty {
            let w = waiters.removeFirst()
            condition.unlock()
            w.resume(returning: item)
            return
        }
        items.append(item)
        condition.signal()
        condition.unlock()
    }

    private func popLocked() -> (WireReceived, Bool)? {
        guard head < items.count else { return nil }
        let wasFull = items.count - head >= capacity
        guard let item = items[head] else { return nil }
        items[head] = nil
        head += 1
        if head == items.count { items.removeAll(keepingCapacity: true); head = 0 }
        else if head > 1024 && head * 2 > items.count { items.removeFirst(head); head = 0 }
        return (item, wasFull)
    }

    /// Blocks up to `timeout` seconds (nil: forever); nil when it timed out or the socket closed.
    func pop(timeout: Double?) -> WireReceived? {
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0) }
        condition.lock()
        while true {
            if let (item, wasFull) = popLocked() {
                condition.unlock()
                if wasFull { onSpace?() }
                return item
            }
            if closed { condition.unlock(); return nil }
            if let deadline {
                if !condition.wait(until: deadline) {
                    let r = popLocked()
                    condition.unlock()
                    if let r, r.1 { onSpace?() }
                    return r?.0
                }
            } else {
                condition.wait()
            }
        }
    }

    /// Suspends until a message arrives; nil once the socket is closed.
    func next() async -> WireReceived? {
        await withCheckedContinuation { (c: CheckedContinuation<WireReceived?, Never>) in
            condition.lock()
            if let (item, wasFull) = popLocked() {
                condition.unlock()
                if wasFull { onSpace?() }
                c.resume(returning: item)
            } else if closed {
                condition.unlock()
                c.resume(returning: nil)
            } else {
                waiters.append(c)
                condition.unlock()
            }
        }
    }

    func close() {
        condition.lock()
        closed = true
        let w = waiters
        waiters = []
        condition.broadcast()
        condition.unlock()
        for c in w { c.resume(returning: nil) }
    }
}
