import CZMQ
import Foundation
import Logging

/// A ZeroMQ context: the I/O threads, the ZAP handler that enforces the CURVE allow-list, and
/// the sockets made from it. `close()` closes every socket still open, stops the ZAP handler and
/// then terminates the context (ZeroMQ requires sockets closed before `zmq_ctx_term`).
public final class WireContext: @unchecked Sendable {
    // @unchecked Sendable: a zmq context is thread-safe; `sockets` and `closed` are behind `lock`.
    let handle: UnsafeMutableRawPointer
    let logger: Logger
    private let lock = NSLock()
    private var sockets: [ObjectIdentifier: WeakSocket] = [:]
    private var closed = false
    private var zap: ZAPHandler?

    /// Whether a ZAP handler enforces an allow-list on this context's CURVE server sockets.
    public var hasAllowList: Bool { zap != nil }

    /// - Parameters:
    ///   - ioThreads: ZeroMQ I/O threads (one moves ~GB/s; count it in the process's thread budget).
    ///   - allowList: public keys a CURVE server socket of this context accepts; required for one.
    public init(ioThreads: Int32 = 1, allowList: CurveAllowList? = nil, logger: Logger = Logger(label: "tether.wire")) throws {
        guard let ctx = zmq_ctx_new() else {
            throw WireSocketError.zmq(operation: "zmq_ctx_new", message: zmqErrorMessage())
        }
        handle = ctx
        self.logger = logger
        zmq_ctx_set(ctx, ZMQ_IO_THREADS, ioThreads)
        if let allowList {
            do { zap = try ZAPHandler(context: ctx, allowList: allowList, logger: logger) } catch {
                zmq_ctx_term(ctx)
                throw error
            }
        }
    }

    deinit { close() }

    /// Connections the ZAP handler refused (unknown or missing CURVE key).
    public var deniedConnections: Int { zap?.denied ?? 0 }
    /// Connections the ZAP handler accepted.
    public var acceptedConnections: Int { zap?.accepted ?? 0 }

    func register(_ socket: WireSocket) throws {
        lock.lock(); defer { lock.unlock() }
        if closed { throw WireSocketError.closed }
        sockets[ObjectIdentifier(socket)] = WeakSocket(socket: socket)
    }

    func unregister(_ socket: WireSocket) {
        lock.lock(); defer { lock.unlock() }
        sockets[ObjectIdentifier(socket)] = nil
    }

    public func close() {
        lock.lock()
        if closed { lock.unlock(); return }
        closed = true
        let open = sockets.values.compactMap { $0.socket }
        sockets = [:]
        lock.unlock()
        for s in open { s.close() }
        zap?.stop()
        zap = nil
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    private struct WeakSocket { weak var socket: WireSocket? }
}

/// The ZAP handler (ZeroMQ RFC 27): a REP socket on `inproc://zeromq.zap.01` of the same context,
/// owned by its own thread, asked by libzmq to approve every CURVE handshake. It approves a
/// client whose public key is in the allow-list and names it (the ZAP user id); it refuses all
/// others, so their messages never reach the server socket.
final class ZAPHandler: @unchecked Sendable {
    // @unchecked Sendable: the REP socket is touched only by `thread`; counters and the stop flag
    // are behind `lock`.
    private let lock = NSLock()
    private var stopping = false
    private var deniedCount = 0
    private var acceptedCount = 0
    private let finished = DispatchSemaphore(value: 0)
    private let allowList: CurveAllowList
    private let logger: Logger

    var denied: Int { lock.lock(); defer { lock.unlock() }; return deniedCount }
    var accepted: Int { lock.lock(); defer { lock.unlock() }; return acceptedCount }

    init(context: UnsafeMutableRawPointer, allowList: CurveAllowList, logger: Logger) throws {
        self.allowList = allowList
        self.logger = logger
        let ready = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var setupError: Error?
        nonisolated(unsafe) let ctx = context
        let thread = Thread { [self] in
            guard let socket = zmq_socket(ctx, ZMQ_REP) else {
                setupError = WireSocketError.zmq(operation: "zmq_socket(ZAP)", message: zmqErrorMessage())
                ready.signal(); finished.signal(); return
            }
            do {
                try zmqSet(socket, ZMQ_LINGER, 0, "ZMQ_LINGER")
                guard zmq_bind(socket, "inproc://zeromq.zap.01") == 0 else {
                    throw WireSocketError.zmq(operation: "zmq_bind(inproc://zeromq.zap.01)", message: zmqErrorMessage())
                }
            } catch {
                setupError = error
                zmq_close(socket)
                ready.signal(); finished.signal(); return
            }
            ready.signal()
            serve(socket)
            zmq_close(socket)
            finished.signal()
        }
        thread.name = "tether.wire.zap"
        thread.start()
        ready.wait()
        if let setupError { throw setupError }
    }

    func stop() {
        lock.lock(); stopping = true; lock.unlock()
        finished.wait()
    }

    private func isStopping() -> Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    private func serve(_ socket: UnsafeMutableRawPointer) {
        while !isStopping() {
            var item = zmq_pollitem_t(socket: socket, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
            // Short timeout: the stop flag is checked between polls (a ZAP request is rare).
            if zmq_poll(&item, 1, 50) <= 0 { continue }
            guard let request = try? zmqReceiveMultipart(socket) else { continue }
            let parts = request.map { $0.bytes }
            let reply = answer(parts)
            _ = try? zmqSendMultipart(socket, reply.map { .bytes($0) }, blocking: true)
        }
    }

    /// ZAP request: version, request id, domain, address, routing id, mechanism, credentials….
    private func answer(_ parts: [[UInt8]]) -> [[UInt8]] {
        let requestId = parts.count > 1 ? parts[1] : []
        func reply(_ code: String, _ text: String, user: String) -> [[UInt8]] {
            [Array("1.0".utf8), requestId, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard parts.count >= 6, parts[0] == Array("1.0".utf8) else { return reply("500", "malformed ZAP request", user: "") }
        let address = String(decoding: parts[3], as: UTF8.self)
        let mechanism = String(decoding: parts[5], as: UTF8.self)
        if mechanism == "CURVE", parts.count >= 7, parts[6].count == 32, let name = allowList.name(forRawKey: parts[6]) {
            lock.lock(); acceptedCount += 1; lock.unlock()
            return reply("200", "OK", user: name)
        }
        lock.lock(); deniedCount += 1; let n = deniedCount; lock.unlock()
        if n <= 10 || n % 1000 == 0 {
            logger.warning("refused \(mechanism) connection from \(address): public key not in the allow-list (\(n) refused so far)")
        }
        return reply("400", "public key not in the allow-list", user: "")
    }
}
