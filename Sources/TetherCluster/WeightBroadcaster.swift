import Foundation
import TetherKernels
import TetherModel
import TetherWire

/// A frozen copy of the parameter buffer for one version. ZeroMQ reads it after `send` returns
/// (zero-copy frames), so it must not change while a send is pending: the learner keeps training
/// on its live buffer and publishes copies.
final class WeightSnapshot: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; freed only when the last reference (held by
    // in-flight ZeroMQ frames through `keepAlive`) goes away. The live count is behind `liveLock`.
    let version: Int
    let storage: UnsafeMutableBufferPointer<Float>
    private static let liveLock = NSLock()
    nonisolated(unsafe) private static var liveCount = 0

    /// Snapshots allocated and not yet freed in this process: the learner's current one plus those
    /// still queued in ZeroMQ for some peer. Bounded by the publisher's high-water mark and one
    /// direct reply per peer, however slowly a peer reads.
    static var live: Int { liveLock.lock(); defer { liveLock.unlock() }; return liveCount }

    init(version: Int, parameters: FloatBuffer) {
        self.version = version
        storage = .allocate(capacity: parameters.count)
        _ = storage.initialize(from: parameters.buffer)
        Self.liveLock.lock(); Self.liveCount += 1; Self.liveLock.unlock()
    }

    deinit {
        storage.deallocate()
        Self.liveLock.lock(); Self.liveCount -= 1; Self.liveLock.unlock()
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage) }
}

/// The learner's side of weight distribution: one PUB broadcast per new version (header + the
/// parameter buffer as one raw frame), direct replies on the control socket for late joiners and
/// for actors that the staleness controller sent to fetch newer weights, and the broadcast latency
/// as acknowledged by actors (an actor heartbeats its version the moment it holds new weights).
///
/// Memory per slow peer is bounded: the PUB socket queues at most `publisherHighWaterMark` versions
/// per subscriber and drops the rest for that subscriber (ZMQ_CONFLATE would keep only the newest,
/// but it does not support multipart messages, and a broadcast is a header plus raw frames); each
/// peer of the control socket has at most one direct reply queued, further requests are skipped and
/// counted until ZeroMQ releases it. A subscriber that never reads therefore pins a few snapshots,
/// not one per version.
final class WeightBroadcaster {
    /// ZMQ_SNDHWM of the weights PUB socket, in messages (a whole multipart broadcast counts once).
    static let publisherHighWaterMark: Int32 = 2
    private let publisher: WireSocket
    private let control: WireSocket
    private let slots: [WeightsFrames.Slot]
    private(set) var current: WeightSnapshot
    private var publishedAt: [Int: Double] = [:]
    private var acknowledged: [Int: Set<String>] = [:]
    /// Seconds from publishing version v to each actor holding it.
    private(set) var latencies: [Int: [Double]] = [:]
    /// Routing ids with a direct reply still queued in ZeroMQ (cleared from an I/O thread on release).
    private let queuedReplies = QueuedReplies()
    /// Direct replies not sent because the previous one to that peer was still queued.
    private(set) var skippedDirectReplies = 0

    final class QueuedReplies: @unchecked Sendable {
        // @unchecked Sendable: `routes` is behind `lock`.
        private let lock = NSLock()
        private var routes: Set<[UInt8]> = []
        func claim(_ route: [UInt8]) -> Bool { lock.lock(); defer { lock.unlock() }; return routes.insert(route).inserted }
        func release(_ route: [UInt8]) { lock.lock(); routes.remove(route); lock.unlock() }
    }

    init(publisher: WireSocket, control: WireSocket, layout: ParameterLayout, initial: WeightSnapshot) {
        self.publisher = publisher
        self.control = control
        slots = layout.entries.map { WeightsFrames.Slot(name: $0.name, shape: $0.shape, elementOffset: $0.offset) }
        current = initial
    }

    private func message(_ s: WeightSnapshot) -> (WireMessage, [WireAttachment]) {
        WeightsFrames.message(version: UInt64(s.version), slots: slots, buffer: s.bytes, keepAlive: s)
    }

    /// Snapshots `parameters` as `version` (what direct requests get) and, with `broadcast`, sends it
    /// to every subscriber; returns the seconds spent on the learner.
    @discardableResult
    func publish(version: Int, parameters: FloatBuffer, now: Double, broadcast: Bool = true) throws -> Double {
        let start = Date()
        current = WeightSnapshot(version: version, parameters: parameters)
        guard broadcast else { return Date().timeIntervalSince(start) }
        publishedAt[version] = now
        let (header, frames) = message(current)
        try publisher.send(header, attachments: frames, timeout: 5)
        if publishedAt.count > 64, let oldest = publishedAt.keys.min() { publishedAt[oldest] = nil; acknowledged[oldest] = nil }
        return Date().timeIntervalSince(start)
    }

    /// The current weights to one actor over the control socket, unless a reply to it is still
    /// queued (that one is already on its way: a peer that does not read gets no second copy).
    func send(to routingId: [UInt8]) throws {
        guard queuedReplies.claim(routingId) else { skippedDirectReplies += 1; return }
        let queued = queuedReplies
        let s = current
        let (header, frames) = WeightsFrames.message(version: UInt64(s.version), slots: slots, buffer: s.bytes, keepAlive: s,
                                                     onRelease: { queued.release(routingId) })
        do { try control.send(header, attachments: frames, to: routingId, timeout: 5) } catch {
            queuedReplies.release(routingId)
            throw error
        }
    }

    /// An actor reported holding `version`: the first report per actor and version is a latency sample.
    func acknowledge(actor: String, version: Int, now: Double) {
        guard let t0 = publishedAt[version], acknowledged[version, default: []].insert(actor).inserted else { return }
        latencies[version, default: []].append(now - t0)
    }

    /// Mean acknowledged latency of the newest version that has any acknowledgement.
    var latestLatency: (version: Int, seconds: Double)? {
        guard let v = latencies.keys.max(), let l = latencies[v], !l.isEmpty else { return nil }
        return (v, l.reduce(0, +) / Double(l.count))
    }
}

/// The actor's side: checks a received broadcast against the model's parameter layout and copies
/// it out of the ZeroMQ frames (which are released right after).
enum WeightReceiver {
    static func unpack(_ received: WireReceived, layout: ParameterLayout) throws -> (version: Int, values: [Float]) {
        guard case .weightsHeader(let header) = received.message else { throw ClusterError.weightsMismatch("not a weights message") }
        guard header.dtype == .float32 else { throw ClusterError.weightsMismatch("dtype \(header.dtype), expected float32") }
        var values = [Float](repeating: 0, count: layout.totalCount)
        try values.withUnsafeMutableBytes { out in
            for entry in layout.entries {
                let copied: Bool? = try WeightsFrames.withTensor(named: entry.name, in: received) { bytes in
                    guard bytes.count == entry.count * MemoryLayout<Float>.size else {
                        throw ClusterError.weightsMismatch("\(entry.name) has \(bytes.count) bytes, expected \(entry.count * 4)")
                    }
                    UnsafeMutableRawBufferPointer(rebasing: out[entry.offset * 4 ..< (entry.offset + entry.count) * 4]).copyMemory(from: bytes)
                    return true
                }
                guard copied == true else { throw ClusterError.weightsMismatch("tensor \(entry.name) is missing") }
            }
        }
        return (Int(header.version), values)
    }
}
