import CZMQ

public enum WireSocketKind: String, Sendable, CaseIterable {
    case push, pull, pub, sub, dealer, router

    var zmqType: Int32 {
        switch self {
        case .push: return ZMQ_PUSH
        case .pull: return ZMQ_PULL
        case .pub: return ZMQ_PUB
        case .sub: return ZMQ_SUB
        case .dealer: return ZMQ_DEALER
        case .router: return ZMQ_ROUTER
        }
    }

    var canReceive: Bool { self != .push && self != .pub }
    var canSend: Bool { self != .pull && self != .sub }
}

/// CurveZMQ role of a socket. The side that binds (the learner) is the server and needs the
/// context's allow-list; the side that connects (an actor) is a client and needs the server's
/// public key.
public enum WireSecurity: Sendable, Equatable {
    /// No encryption: allowed only on loopback, ipc and inproc unless `allowInsecureBind`.
    case none
    case curveServer(CurveKeyPair)
    case curveClient(CurveKeyPair, serverPublicKey: String)
}

/// Everything a `WireSocket` is configured with (the `wire:` section of a cluster config maps here).
public struct WireSocketOptions: Sendable {
    public var kind: WireSocketKind
    /// Endpoints to bind, e.g. `tcp://127.0.0.1:5555` or `tcp://127.0.0.1:*` (see `boundEndpoints`).
    public var bind: [String]
    public var connect: [String]
    /// Messages queued per peer before a sender blocks (PUSH/DEALER) or drops (PUB).
    public var sendHighWaterMark: Int32 = 1000
    public var receiveHighWaterMark: Int32 = 1000
    /// Largest frame a peer may send (bytes, -1: no limit); ZeroMQ disconnects a peer that
    /// exceeds it before the bytes reach us, and checks each frame of a multipart message on its
    /// own (libzmq's decoder). Must cover a whole weights frame. Peers share the value, so the
    /// sender refuses a frame over its own limit (`WireSocketError.messageTooLarge`) instead of
    /// letting the receiver drop it unseen.
    public var maxMessageSize: Int64 = 256 << 20
    /// What `maxMessageSize` is called where the user sets it (a config key), for error messages.
    public var maxMessageSizeSetting = "maxMessageSize"
    /// How long `close()` keeps trying to deliver queued messages.
    public var lingerMilliseconds: Int32 = 500
    /// ZMTP heartbeats: a peer silent for `heartbeatTimeoutMilliseconds` is disconnected, and
    /// ZeroMQ reconnects (every `reconnectIntervalMilliseconds`, backing off to the max).
    public var heartbeatIntervalMilliseconds: Int32 = 1000
    public var heartbeatTimeoutMilliseconds: Int32 = 5000
    public var reconnectIntervalMilliseconds: Int32 = 100
    public var reconnectIntervalMaxMilliseconds: Int32 = 5000
    public var security: WireSecurity = .none
    /// Permit binding a non-loopback address without CURVE (the wire is then open to anyone
    /// who can reach the port).
    public var allowInsecureBind = false
    /// SUB sockets: subscription prefix (empty: everything).
    public var subscription: [UInt8] = []
    /// Accepted messages waiting for `receive` before the socket stops reading (ZeroMQ's receive
    /// high-water mark then pushes back on the senders: nothing is dropped).
    public var inboxCapacity = 4096
    /// Messages waiting to be handed to ZeroMQ before `send` blocks.
    public var outboxCapacity = 4096
    /// What received messages must agree with (updatable later: `WireSocket.updateValidation`).
    public var validation = WireValidation.structural
    /// Name in logs and thread names.
    public var name: String

    public init(kind: WireSocketKind, bind: [String] = [], connect: [String] = [], name: String? = nil) {
        self.kind = kind
        self.bind = bind
        self.connect = connect
        self.name = name ?? kind.rawValue
    }
}

/// True for endpoints only this machine can reach.
func isLoopbackEndpoint(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
    guard endpoint.hasPrefix("tcp://") else { return false }
    var rest = Substring(endpoint.dropFirst("tcp://".count))
    if let semicolon = rest.firstIndex(of: ";") { rest = rest[rest.index(after: semicolon)...] }  // "src;dest"
    let host: Substring
    if rest.hasPrefix("[") {
        guard let close = rest.firstIndex(of: "]") else { return false }
        host = rest[rest.index(after: rest.startIndex)..<close]
    } else {
        host = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
    }
    return host == "localhost" || host == "::1" || host.hasPrefix("127.") || host == "lo"
}
