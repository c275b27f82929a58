import CZMQ
import Foundation
import Logging

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
