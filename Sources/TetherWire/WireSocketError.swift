/// Errors of socket setup and use (as opposed to `WireError`, which is about a received message).
public enum WireSocketError: Error, Sendable, Equatable, CustomStringConvertible {
    case zmq(operation: String, message: String)
    /// Binding to a non-loopback address without CURVE keys.
    case insecureBind(String)
    case invalidKey(String)
    /// A CURVE server socket on a context that has no allow-list (no ZAP handler).
    case missingAllowList
    case outboxFull
    case closed
    case unsupported(String)
    /// A frame over the socket's `maxMessageSize`, refused before it is queued: ZeroMQ would hand
    /// it over, and the receiver (same limit) would drop the connection without a word.
    case messageTooLarge(socket: String, frame: Int, bytes: Int, limit: Int64, setting: String)

    public var description: String {
        switch self {
        case .zmq(let op, let msg): return "\(op) failed: \(msg)"
        case .insecureBind(let ep):
            return "refusing to bind \(ep) without CURVE keys: bind to 127.0.0.1, configure keys (tether keygen), or set allow_insecure_bind"
        case .invalidKey(let what): return "invalid CURVE key: \(what)"
        case .missingAllowList: return "a CURVE server socket needs an allow-list of actor public keys on its WireContext"
        case .outboxFull: return "send queue is full (the peer is not keeping up)"
        case .closed: return "socket is closed"
        case .unsupported(let what): return what
        case let .messageTooLarge(socket, frame, bytes, limit, setting):
            return "\(socket): frame \(frame) of the message is \(bytes) bytes, more than \(setting) \(limit); a receiver would drop it unseen, so it is not sent: raise \(setting) to at least \(bytes) on every process"
        }
    }
}
