import Foundation
import TetherWire
#if canImport(Glibc)
import Glibc
#endif

/// The three learner sockets of DESIGN.md's data flow, and how both sides configure them from the
/// `learner:` and `wire:` sections: control (ROUTER ↔ DEALER: joins, ticket requests, tickets,
/// heartbeats, weight fetches), trajectories (PUSH → PULL) and weights (PUB → SUB).
public enum ClusterEndpoint: String, Sendable, CaseIterable {
    case control, trajectories, weights
}

/// CURVE material under `wire.curve_keys_dir`: `learner.key/.pub` (the server pair), `actor.key/.pub`
/// (an actor's pair; `<actor-id>.key/.pub` wins when present) and `allowed_actors` (the allow-list,
/// one `PUBLIC_KEY name` per line; defaults to the `actor` public key alone). Each side reads only
/// the other side's public key: the learner needs no actor secret, an actor no learner secret.
///
/// Identity is bound to the key: a key's name in the allow-list is the only actor id it may claim
/// (the ZAP user id is checked against every message's actor id, `WireValidation.IdentityBinding`).
/// The shared key, named `actor`, may claim any id only with `wire.shared_actor_key: true`.
public enum ClusterSecurity {
    /// The allow-list name of the key all actors may share.
    public static let sharedKeyName = "actor"

    /// Who may claim which actor id on the learner's sockets; nil without CURVE.
    static func identityBinding(config: RunConfig) -> WireValidation.IdentityBinding? {
        guard !config.wire.curveKeysDir.isEmpty else { return nil }
        return .init(sharedKeyNames: config.wire.sharedActorKey ? [sharedKeyName] : [])
    }

    public static func learnerContext(config: RunConfig) throws -> WireContext {
        let dir = config.wire.curveKeysDir
        guard !dir.isEmpty else { return try WireContext() }
        let listPath = dir + "/allowed_actors"
        let allow: CurveAllowList
        if FileManager.default.fileExists(atPath: listPath) {
            allow = try CurveAllowList.load(path: listPath)
        } else {
            let shared = try CurveKeyPair.loadPublicKey(directory: dir, name: sharedKeyName)
            guard config.wire.sharedActorKey else {
                throw ClusterError.processFailed(
                    "\(dir) has no allowed_actors, so the only actor key is the shared \(sharedKeyName).pub, but wire.shared_actor_key "
                        + "is false (a key may act only as the actor it is named after): set wire.shared_actor_key: true to let every "
                        + "holder of \(sharedKeyName).key act as any actor, or give each actor its own pair "
                        + "(tether keygen --name <actor-id>) listed in \(dir)/allowed_actors")
            }
            allow = try CurveAllowList(keys: [(publicKey: shared, name: sharedKeyName)])
        }
        return try WireContext(allowList: allow)
    }

    static func learnerSecurity(config: RunConfig) throws -> WireSecurity {
        let dir = config.wire.curveKeysDir
        guard !dir.isEmpty else { return .none }
        return .curveServer(try CurveKeyPair.load(directory: dir, name: "learner"))
    }

    static func actorSecurity(config: RunConfig, actorID: String) throws -> WireSecurity {
        let dir = config.wire.curveKeysDir
        guard !dir.isEmpty else { return .none }
        let server = try CurveKeyPair.loadPublicKey(directory: dir, name: "learner")
        let own = CurveKeyPair.paths(directory: dir, name: actorID).secretKey
        let keys = FileManager.default.fileExists(atPath: own)
            ? try CurveKeyPair.load(directory: dir, name: actorID) : try CurveKeyPair.load(directory: dir, name: "actor")
        return .curveClient(keys, serverPublicKey: server)
    }
}

extension RunConfig {
    func endpoint(_ e: ClusterEndpoint) -> String {
        switch e {
        case .control: return learner.controlEndpoint
        case .trajectories: return learner.trajectoryEndpoint
        case .weights: return learner.weightsEndpoint
        }
    }

    /// What the learner binds for endpoint `e`: the endpoint as written, or with `learner.bind_host`
    /// set, the endpoint's port on that host, so actors elsewhere connect to `tcp://<learner-node>:PORT`
    /// while the learner listens on an address it can bind (ZeroMQ does not resolve DNS names on bind).
    public func learnerBindEndpoint(_ e: ClusterEndpoint) -> String {
        let written = endpoint(e)
        guard !learner.bindHost.isEmpty, let port = RunConfig.tcpPort(written) else { return written }
        return "tcp://\(learner.bindHost):\(port)"
    }

    /// The port of a `tcp://host:port` endpoint.
    static func tcpPort(_ endpoint: String) -> Int? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        return Int(endpoint[endpoint.index(after: colon)...])
    }

    /// Options of a learner (binding) or actor (connecting) socket for endpoint `e`.
    func socketOptions(_ e: ClusterEndpoint, learnerSide: Bool, security: WireSecurity) -> WireSocketOptions {
        let kind: WireSocketKind
        switch (e, learnerSide) {
        case (.control, true): kind = .router
        case (.control, false): kind = .dealer
        case (.trajectories, true): kind = .pull
        case (.trajectories, false): kind = .push
        case (.weights, true): kind = .pub
        case (.weights, false): kind = .sub
        }
        var o = learnerSide
            ? WireSocketOptions(kind: kind, bind: [learnerBindEndpoint(e)], name: "learner.\(e.rawValue)")
            : WireSocketOptions(kind: kind, connect: [endpoint(e)], name: "actor.\(e.rawValue)")
        o.sendHighWaterMark = Int32(clamping: wire.sendHWM)
        o.receiveHighWaterMark = Int32(clamping: wire.receiveHWM)
        o.maxMessageSize = Int64(wire.maxMessageBytes)
        o.maxMessageSizeSetting = "wire.max_message_bytes"
        o.lingerMilliseconds = Int32(clamping: wire.lingerMilliseconds)
        o.security = security
        o.heartbeatIntervalMilliseconds = Int32(clamping: Int(actors.heartbeatSeconds * 1000))
        o.heartbeatTimeoutMilliseconds = Int32(clamping: Int(actors.heartbeatTimeoutSeconds * 1000))
        o.reconnectIntervalMaxMilliseconds = 1000
        return o
    }
}

/// Ticket ids on the wire carry the learner's incarnation in the high 32 bits, so a group sampled
/// for a ticket of a learner that has since restarted can never be mistaken for a new ticket with
/// the same sequence number (the controller's ids restart from the checkpoint).
public struct WireTicketID: Equatable, Sendable {
    public var incarnation: UInt32
    public var ticket: TicketID
    public init(incarnation: UInt32, ticket: TicketID) { self.incarnation = incarnation; self.ticket = ticket }
    public init(raw: UInt64) { incarnation = UInt32(raw >> 32); ticket = Int(raw & 0xFFFF_FFFF) }
    public var raw: UInt64 { UInt64(incarnation) << 32 | UInt64(UInt32(truncatingIfNeeded: ticket)) }
}

/// Heartbeats from the learner name it `learner-<incarnation>`: an actor that sees a new name knows
/// the learner restarted and re-joins (its outstanding request died with the old process).
enum LearnerIdentity {
    static func senderID(incarnation: UInt32) -> String { "learner-\(incarnation)" }
}

/// Picks free loopback TCP ports by binding port 0 and reading the kernel's choice back.
public enum FreePort {
    public static func pick(count: Int = 1) throws -> [Int] {
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw POSIXError(.EMFILE) }
            fds.append(fd)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = 0
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard ok == 0 else { throw POSIXError(.EADDRINUSE) }
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        }
        return ports
    }

    /// `--set` overrides that put the three learner endpoints on fresh loopback ports.
    public static func endpointOverrides() throws -> [String] {
        let p = try pick(count: 3)
        return ["learner.control_endpoint=tcp://127.0.0.1:\(p[0])",
                "learner.trajectory_endpoint=tcp://127.0.0.1:\(p[1])",
                "learner.weights_endpoint=tcp://127.0.0.1:\(p[2])"]
    }
}

/// SIGINT/SIGTERM → a flag the process loops poll (handlers may only touch async-signal-safe state).
public enum StopSignal {
    // nonisolated(unsafe): written only by the signal handler, read by the polling loops; a torn
    // read is impossible for a 32-bit aligned Int32 on the platforms we run on.
    nonisolated(unsafe) static var received: Int32 = 0

    /// `ignoreInterrupt`: processes started by `tether launch` ignore the terminal's Ctrl-C, which
    /// the launcher forwards to the learner as a drain instead.
    public static func install(ignoreInterrupt: Bool = false) {
        if ignoreInterrupt { Glibc.signal(SIGINT, SIG_IGN) } else { Glibc.signal(SIGINT) { StopSignal.received = $0 } }
        Glibc.signal(SIGTERM) { StopSignal.received = $0 }
    }

    public static var number: Int32 { received }
    public static var requested: Bool { received != 0 }
}

/// Wall-clock seconds since the epoch (the staleness controller's clock).
func nowSeconds() -> Double { Date().timeIntervalSince1970 }
