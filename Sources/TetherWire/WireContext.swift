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
