import CTetherWire
import CZMQ
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One ZeroMQ socket owned by one thread (DESIGN.md: one socket, one owning thread). The thread
/// creates, configures, binds/connects and closes the socket and runs a `zmq_poll` loop; the rest
/// of the program talks to it through two lock-protected queues:
///
/// - `send` encodes on the caller's thread and enqueues; the owner hands messages to ZeroMQ,
///   waiting for the high-water mark to clear rather than dropping (except PUB, which drops).
/// - the owner decodes and validates every message it receives. A bad one is counted in
///   `counters` under its reason, logged (rate-limited) and dropped; a good one goes to the inbox
///   (`receive(timeout:)` for threads, `next()` for async code). A bad message never takes a
///   good neighbour with it: each multipart message is decoded on its own.
///
/// An eventfd wakes the owner when something is enqueued, so no polling interval adds latency.
///
/// Lifetime: the owner thread keeps the socket alive until `close()` (or `WireContext.close()`,
/// which closes every socket of the context) — dropping the last reference does not stop it.
public final class WireSocket: @unchecked Sendable {
    // @unchecked Sendable: the zmq socket is touched only by `thread`; `outbox`, `validation`,
    // `stopping` and the statistics are behind `lock`; the inbox has its own lock.
    public let options: WireSocketOptions
    public let counters: WireErrorCounters
    /// Actual endpoints after binding (a `tcp://…:*` bind is resolved to the chosen port).
    public private(set) var boundEndpoints: [String] = []

    private let context: WireContext
    private let lock = NSCondition()
    private var outbox: [[OutgoingFrame]] = []
    private var outboxHead = 0
    private var validation: WireValidation
    private var stopping = false
    private var closed = false
    private var sentCount = 0
    private var receivedCount = 0
    private var handshakeFailureCount = 0
    private var authFailureCount = 0
    private let inbox: WireInbox
    private let wakeFD: Int32
    private let finished = DispatchSemaphore(value: 0)
    private let logger: Logger

    public init(context: WireContext, options: WireSocketOptions) throws {
        self.context = context
        self.options = options
        self.validation = options.validation
        self.logger = context.logger
        self.counters = WireErrorCounters(logger: context.logger)
        self.inbox = WireInbox(capacity: options.inboxCapacity)
        if case .curveServer = options.security, !context.hasAllowList { throw WireSocketError.missingAllowList }
        if options.security == .none && !options.allowInsecureBind {
            for ep in options.bind where !isLoopbackEndpoint(ep) { throw WireSocketError.insecureBind(ep) }
        }
        let fd = tether_wake_fd()
        guard fd >= 0 else { throw WireSocketError.zmq(operation: "eventfd", message: String(cString: strerror(errno))) }
        wakeFD = fd
        try context.register(self)
        inbox.onSpace = { [fd] in var one: UInt64 = 1; _ = write(fd, &one, 8) }

        let ready = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var setupResult: Result<[String], Error> = .success([])
        let thread = Thread { [self] in
            let socket: UnsafeMutableRawPointer
            var monitor: UnsafeMutableRawPointer?
            do {
                socket = try openSocket()
                if case .curveServer = options.security {
                    do { monitor = try openHandshakeMonitor(socket) } catch {
                        zmq_close(socket)
                        throw error
                    }
                }
                setupResult = .success(options.bind.isEmpty ? [] : (zmqGetString(socket, ZMQ_LAST_ENDPOINT).map { [$0] } ?? []))
                if options.bind.count > 1 { setupResult = .success(options.bind) }
            } catch {
                setupResult = .failure(error)
                ready.signal()
                finished.signal()
                return
            }
            ready.signal()
            run(socket, monitor: monitor)
            finished.signal()
        }
        thread.name = "tether.wire.\(options.name)"
        thread.start()
        ready.wait()
        switch setupResult {
        case .success(let endpoints): boundEndpoints = endpoints
        case .failure(let error):
            context.unregister(self)
            inbox.close()
            Glibc.close(wakeFD)
            closed = true
            throw error
        }
    }

    deinit {
        close()
    }

    // MARK: - Public surface

    /// Encodes `message` and queues it with its raw frames. Blocks while the outbox is full, up to
    /// `timeout` seconds (nil: forever) — call it from a thread, or use `trySend` in async code.
    public func send(_ message: WireMessage, attachments: [WireAttachment] = [], to routingId: [UInt8]? = nil,
                     timeout: Double? = nil) throws {
        try enqueue(try makeFrames(message, attachments, routingId), timeout: timeout)
    }

    /// Queues `message` from async code: waits for outbox space by sleeping the task, never a thread.
    public func sendAsync(_ message: WireMessage, attachments: [WireAttachment] = [], to routingId: [UInt8]? = nil) async throws {
        let frames = try makeFrames(message, attachments, routingId)
        while try !tryEnqueue(frames) { try await Task.sleep(nanoseconds: 500_000) }
    }

    private func enqueue(_ frames: [OutgoingFrame], timeout: Double?) throws {
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0) }
        lock.lock()
        while outbox.count - outboxHead >= options.outboxCapacity && !stopping {
            if let deadline {
                if !lock.wait(until: deadline) { lock.unlock(); throw WireSocketError.outboxFull }
            } else {
                lock.wait()
            }
        }
        if stopping { lock.unlock(); throw WireSocketError.closed }
        outbox.append(frames)
        lock.unlock()
        wake()
    }

    /// Queues `message` unless the outbox is full; never blocks.
    @discardableResult
    public func trySend(_ message: WireMessage, attachments: [WireAttachment] = [], to routingId: [UInt8]? = nil) throws -> Bool {
        try tryEnqueue(try makeFrames(message, attachments, routingId))
    }

    private func tryEnqueue(_ frames: [OutgoingFrame]) throws -> Bool {
        lock.lock()
        if stopping { lock.unlock(); throw WireSocketError.closed }
        if outbox.count - outboxHead >= options.outboxCapacity { lock.unlock(); return false }
        outbox.append(frames)
        lock.unlock()
        wake()
        return true
    }

    /// Queues raw frames as they are, bypassing the encoder: for tests that must put malformed
    /// bytes on the wire, and for benchmarks of the transport alone.
    public func sendRaw(_ frames: [[UInt8]]) throws {
        lock.lock()
        if stopping { lock.unlock(); throw WireSocketError.closed }
        outbox.append(frames.map { .bytes($0) })
        lock.unlock()
        wake()
    }

    /// The next accepted message, waiting up to `timeout` seconds (nil: forever). Nil on timeout
    /// or once the socket is closed. Blocks the calling thread.
    public func receive(timeout: Double? = nil) -> WireReceived? { inbox.pop(timeout: timeout) }

    /// The next accepted message; nil once the socket is closed. Does not block a thread.
    public func next() async -> WireReceived? { await inbox.next() }

    /// Changes what incoming messages are checked against (e.g. the learner's current version).
    public func updateValidation(_ change: (inout WireValidation) -> Void) {
        lock.lock(); change(&validation); lock.unlock()
    }

    public var currentValidation: WireValidation { lock.lock(); defer { lock.unlock() }; return validation }
    public var messagesSent: Int { lock.lock(); defer { lock.unlock() }; return sentCount }
    public var messagesAccepted: Int { lock.lock(); defer { lock.unlock() }; return receivedCount }
    public var pendingSends: Int { lock.lock(); defer { lock.unlock() }; return outbox.count - outboxHead }
    /// CURVE server sockets: handshakes that failed for a reason other than the allow-list (a peer
    /// without CURVE, the wrong server key, a garbled or replayed handshake), from the socket monitor.
    public var handshakeFailures: Int { lock.lock(); defer { lock.unlock() }; return handshakeFailureCount }
    /// CURVE server sockets: handshakes the ZAP handler refused (key not in the allow-list).
    public var authenticationFailures: Int { lock.lock(); defer { lock.unlock() }; return authFailureCount }

    /// Stops the owner thread: queued sends get one last non-blocking attempt, then the socket is
    /// closed with its linger; pending `receive`/`next` calls return nil. Idempotent.
    public func close() {
        lock.lock()
        if closed { lock.unlock(); return }
        closed = true
        stopping = true
        lock.broadcast()
        lock.unlock()
        wake()
        finished.wait()
        inbox.close()
        Glibc.close(wakeFD)
        context.unregister(self)
    }

    // MARK: - Owner thread

    /// The frames of one message; throws `messageTooLarge` for a frame over `maxMessageSize`
    /// (frame 0 is the envelope, the attachments follow; a routing id is not counted).
    private func makeFrames(_ message: WireMessage, _ attachments: [WireAttachment], _ routingId: [UInt8]?) throws -> [OutgoingFrame] {
        let envelope = WireCodec.encode(message)
        let limit = options.maxMessageSize
        if limit >= 0 {
            for (i, bytes) in ([envelope.count] + attachments.map(\.count)).enumerated() where Int64(bytes) > limit {
                throw WireSocketError.messageTooLarge(socket: options.name, frame: i, bytes: bytes, limit: limit,
                                                      setting: options.maxMessageSizeSetting)
            }
        }
        var frames: [OutgoingFrame] = []
        if let routingId { frames.append(.bytes(routingId)) }
        frames.append(.bytes(envelope))
        frames.append(contentsOf: attachments.map { .attachment($0) })
        return frames
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func openSocket() throws -> UnsafeMutableRawPointer {
        guard let s = zmq_socket(context.handle, options.kind.zmqType) else {
            throw WireSocketError.zmq(operation: "zmq_socket(\(options.kind))", message: zmqErrorMessage())
        }
        do {
            try zmqSet(s, ZMQ_LINGER, options.lingerMilliseconds, "ZMQ_LINGER")
            try zmqSet(s, ZMQ_SNDHWM, options.sendHighWaterMark, "ZMQ_SNDHWM")
            try zmqSet(s, ZMQ_RCVHWM, options.receiveHighWaterMark, "ZMQ_RCVHWM")
            try zmqSet(s, ZMQ_MAXMSGSIZE, int64: options.maxMessageSize, "ZMQ_MAXMSGSIZE")
            try zmqSet(s, ZMQ_HEARTBEAT_IVL, options.heartbeatIntervalMilliseconds, "ZMQ_HEARTBEAT_IVL")
            try zmqSet(s, ZMQ_HEARTBEAT_TIMEOUT, options.heartbeatTimeoutMilliseconds, "ZMQ_HEARTBEAT_TIMEOUT")
            try zmqSet(s, ZMQ_RECONNECT_IVL, options.reconnectIntervalMilliseconds, "ZMQ_RECONNECT_IVL")
            try zmqSet(s, ZMQ_RECONNECT_IVL_MAX, options.reconnectIntervalMaxMilliseconds, "ZMQ_RECONNECT_IVL_MAX")
            switch options.security {
            case .none:
                break
            case .curveServer(let keys):
                try zmqSet(s, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
                try zmqSetZ85(s, ZMQ_CURVE_SECRETKEY, keys.secretKey, "ZMQ_CURVE_SECRETKEY")
                try zmqSet(s, ZMQ_ZAP_DOMAIN, bytes: Array("tether".utf8), "ZMQ_ZAP_DOMAIN")
            case .curveClient(let keys, let serverKey):
                try CurveKeyPair.checkZ85Key(serverKey, what: "server public key")
                try zmqSetZ85(s, ZMQ_CURVE_SERVERKEY, serverKey, "ZMQ_CURVE_SERVERKEY")
                try zmqSetZ85(s, ZMQ_CURVE_PUBLICKEY, keys.publicKey, "ZMQ_CURVE_PUBLICKEY")
                try zmqSetZ85(s, ZMQ_CURVE_SECRETKEY, keys.secretKey, "ZMQ_CURVE_SECRETKEY")
            }
            if options.kind == .sub { try zmqSet(s, ZMQ_SUBSCRIBE, bytes: options.subscription, "ZMQ_SUBSCRIBE") }
            for ep in options.bind where zmq_bind(s, ep) != 0 {
                throw WireSocketError.zmq(operation: "zmq_bind(\(ep))", message: zmqErrorMessage())
            }
            for ep in options.connect where zmq_connect(s, ep) != 0 {
                throw WireSocketError.zmq(operation: "zmq_connect(\(ep))", message: zmqErrorMessage())
            }
        } catch {
            zmq_close(s)
            throw error
        }
        return s
    }

    /// A PAIR socket receiving this socket's failed-handshake events (`zmq_socket_monitor`), so a
    /// failed CURVE handshake leaves a count instead of no trace.
    private func openHandshakeMonitor(_ socket: UnsafeMutableRawPointer) throws -> UnsafeMutableRawPointer {
        let endpoint = "inproc://tether.monitor.\(options.name).\(UInt64.random(in: 0 ... .max))"
        let events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
        guard zmq_socket_monitor(socket, endpoint, events) == 0 else {
            throw WireSocketError.zmq(operation: "zmq_socket_monitor", message: zmqErrorMessage())
        }
        guard let pair = zmq_socket(context.handle, ZMQ_PAIR) else {
            throw WireSocketError.zmq(operation: "zmq_socket(monitor)", message: zmqErrorMessage())
        }
        do {
            try zmqSet(pair, ZMQ_LINGER, 0, "ZMQ_LINGER")
            guard zmq_connect(pair, endpoint) == 0 else {
                throw WireSocketError.zmq(operation: "zmq_connect(\(endpoint))", message: zmqErrorMessage())
            }
        } catch {
            zmq_close(pair)
            throw error
        }
        return pair
    }

    /// Counts the events waiting on the monitor socket. Each event is two frames: 6 bytes (event
    /// id as a native uint16, value as a native uint32), then the peer's endpoint.
    private func drainMonitor(_ monitor: UnsafeMutableRawPointer) {
        while let frames = try? zmqReceiveMultipart(monitor) {
            guard let first = frames.first, first.count >= 6 else { continue }
            let event = first.withUnsafeBytes { Int32($0.loadUnaligned(as: UInt16.self)) }
            lock.lock()
            if event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH { authFailureCount += 1 } else { handshakeFailureCount += 1 }
            lock.unlock()
        }
    }

    private func run(_ socket: UnsafeMutableRawPointer, monitor: UnsafeMutableRawPointer?) {
        var blockedOnSend = false
        while true {
            lock.lock()
            let stop = stopping
            let haveSends = outbox.count > outboxHead
            lock.unlock()
            if stop { break }
            var events: Int16 = 0
            if options.kind.canReceive && inbox.hasSpace { events |= Int16(ZMQ_POLLIN) }
            if haveSends && blockedOnSend { events |= Int16(ZMQ_POLLOUT) }
            var items = [
                zmq_pollitem_t(socket: socket, fd: 0, events: events, revents: 0),
                zmq_pollitem_t(socket: nil, fd: wakeFD, events: Int16(ZMQ_POLLIN), revents: 0),
                zmq_pollitem_t(socket: monitor, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
            ]
            // Without pending sends or a blocked send, only the eventfd or incoming data wake us.
            let timeout = haveSends && !blockedOnSend ? 0 : -1
            let rc = zmq_poll(&items, monitor == nil ? 2 : 3, timeout)
            if rc < 0 && zmq_errno() != EINTR {
                logger.error("\(options.name): zmq_poll failed: \(zmqErrorMessage())")
                break
            }
            if items[1].revents != 0 {
                var drained: UInt64 = 0
                _ = read(wakeFD, &drained, 8)
            }
            blockedOnSend = !drainSends(socket, limit: 256)
            if options.kind.canReceive { drainReceives(socket, limit: 256) }
            if let monitor, items[2].revents != 0 { drainMonitor(monitor) }
        }
        // Last chance for what was queued before close(); linger then applies inside ZeroMQ.
        _ = drainSends(socket, limit: Int.max)
        lock.lock()
        let unsent = outbox[outboxHead...].joined()
        outbox = []
        outboxHead = 0
        lock.unlock()
        for frame in unsent { frame.releaseUnsent() }
        if let monitor {
            zmq_socket_monitor(socket, nil, 0)
            zmq_close(monitor)
        }
        zmq_close(socket)
    }

    /// Hands up to `limit` queued messages to ZeroMQ; false when the high-water mark stopped it.
    private func drainSends(_ socket: UnsafeMutableRawPointer, limit: Int) -> Bool {
        var sent = 0
        while sent < limit {
            lock.lock()
            guard outboxHead < outbox.count else { lock.unlock(); return true }
            let frames = outbox[outboxHead]
            lock.unlock()
            do {
                if try !zmqSendMultipart(socket, frames) { return false }
            } catch {
                logger.error("\(options.name): dropping a message that failed to send: \(error)")
            }
            lock.lock()
            outbox[outboxHead] = []
            outboxHead += 1
            sentCount += 1
            if outboxHead > 1024 && outboxHead * 2 > outbox.count { outbox.removeFirst(outboxHead); outboxHead = 0 }
            lock.broadcast()
            lock.unlock()
            sent += 1
        }
        return true
    }

    private func drainReceives(_ socket: UnsafeMutableRawPointer, limit: Int) {
        var n = 0
        while n < limit && inbox.hasSpace {
            let frames: [WireFrameBuffer]
            do {
                guard let received = try zmqReceiveMultipart(socket) else { return }
                frames = received
            } catch {
                logger.error("\(options.name): receive failed: \(error)")
                return
            }
            n += 1
            accept(frames)
        }
    }

    /// Decodes and validates one multipart message; a bad one is counted and dropped alone.
    private func accept(_ rawFrames: [WireFrameBuffer]) {
        var frames = rawFrames
        var routingId: [UInt8]?
        if options.kind == .router {
            routingId = frames.first?.bytes
            frames.removeFirst(min(1, frames.count))
        }
        let peer = frames.first.flatMap { f -> String? in
            guard let p = zmq_msg_gets(f.message, "User-Id") else { return nil }
            return String(cString: p)
        }
        lock.lock()
        let check = validation
        lock.unlock()
        do {
            let message = try withBuffers(frames) { try WireCodec.decode(frames: $0, validation: check) }
            try check.checkIdentity(message, peerUserId: peer)
            lock.lock(); receivedCount += 1; lock.unlock()
            inbox.push(WireReceived(message: message, attachments: Array(frames.dropFirst()), peerUserId: peer, routingId: routingId))
        } catch let error as WireError {
            counters.record(error, source: "\(options.name)" + (peer.map { " peer \(PeerText.loggable($0))" } ?? ""))
        } catch {
            logger.error("\(options.name): unexpected decode failure: \(error)")
        }
    }

    private func withBuffers<R>(_ frames: [WireFrameBuffer], _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        try body(frames.map { UnsafeRawBufferPointer(start: zmq_msg_data($0.message), count: zmq_msg_size($0.message)) })
    }
}
