import CZMQ
import Foundation

/// The figures of `tether bench wire`: trajectory throughput into the learner, and a weight
/// broadcast against raw `zmq_msg_send` of the same bytes in the same run (the ratio is the figure
/// that holds on a shared machine; absolute numbers drift).
public enum WireBenchmark {
    public struct TrajectoryResult: Sendable {
        public var groups: Int
        public var tokensPerGroup: Int
        public var seconds: Double
        public var groupsPerSecond: Double { Double(groups) / seconds }
        public var tokensPerSecond: Double { Double(groups * tokensPerGroup) / seconds }
    }

    /// PUSH → PULL over loopback TCP, full decode and validation on the receiving side, groups of
    /// `samples` × `tokens` completion tokens. Tokens counted are completion tokens.
    public static func trajectories(groups: Int = 10_000, samples: Int = 8, tokens: Int = 64) throws -> TrajectoryResult {
        let learnerContext = try WireContext()
        let actorContext = try WireContext()
        defer { actorContext.close(); learnerContext.close() }
        var rx = WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"], name: "bench-learner")
        rx.validation = WireValidation(vocabularySize: 64, currentPolicyVersion: 10, knownActors: ["bench-actor"])
        let learner = try WireSocket(context: learnerContext, options: rx)
        let actor = try WireSocket(context: actorContext, options: WireSocketOptions(kind: .push, connect: learner.boundEndpoints, name: "bench-actor"))
        let sample = TrajectorySample(completionTokens: (0..<tokens).map { UInt32($0 % 64) },
                                      behaviourLogProbs: (0..<tokens).map { -Float($0 % 7) * 0.3 - 0.01 },
                                      tokenVersions: (0..<tokens).map { $0 < tokens / 2 ? 9 : 10 }, reward: 1,
                                      rewardComponents: [RewardComponent(name: "correct", value: 1)], finishReason: .length,
                                      generationSeconds: 0.5, scoringSeconds: 0.001)
        var group = TrajectoryGroup(ticketId: 0, actorId: "bench-actor", promptId: "p", promptTokens: (0..<32).map { UInt32($0) },
                                    samples: Array(repeating: sample, count: samples))
        // Warm up the connection.
        try actor.send(.trajectoryGroup(group))
        guard learner.receive(timeout: 10) != nil else { throw WireSocketError.unsupported("bench: no warm-up message arrived") }

        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var received = 0
        let consumer = Thread {
            while received < groups, learner.receive(timeout: 30) != nil { received += 1 }
            done.signal()
        }
        let start = DispatchTime.now().uptimeNanoseconds
        consumer.start()
        for i in 0..<groups {
            group.ticketId = UInt64(i)
            try actor.send(.trajectoryGroup(group))
        }
        done.wait()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard received == groups, learner.counters.total == 0 else {
            throw WireSocketError.unsupported("bench: received \(received) of \(groups) groups, \(learner.counters.total) rejected")
        }
        return TrajectoryResult(groups: groups, tokensPerGroup: samples * tokens, seconds: seconds)
    }

    public struct BroadcastResult: Sendable {
        public var bytes: Int
        public var subscribers: Int
        /// Median time until every subscriber has the whole message (Tether: decoded and checksum-verified).
        public var tetherMilliseconds: Double
        public var rawMilliseconds: Double
        /// Bytes/s of Tether over bytes/s of raw ZeroMQ.
        public var ratio: Double { rawMilliseconds / tetherMilliseconds }
    }

    /// Weights of `parameters` Float32 to `subscribers` SUB sockets (each in its own context, as
    /// separate actor processes would be), Tether's `WireSocket` vs raw libzmq with the same
    /// zero-copy send, optionally both with CURVE.
    public static func broadcast(parameters: Int = 10_000_000, subscribers: Int = 4, rounds: Int = 3, repetitions: Int = 3,
                                 curve: Bool = false) throws -> BroadcastResult {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: parameters)
        defer { buffer.deallocate() }
        for i in 0..<parameters { buffer[i] = Float(i % 1000) * 1e-3 }
        let bytes = UnsafeRawBufferPointer(buffer)
        let serverKeys = try CurveKeyPair.generate()
        let clientKeys = try CurveKeyPair.generate()
        let allowList = curve ? try CurveAllowList(keys: [(clientKeys.publicKey, "bench-actor")]) : nil
        let keys: Curve? = curve ? (serverKeys, clientKeys, allowList!) : nil
        // Alternate raw and Tether so that drifting machine load hits both alike.
        var raw: [Double] = [], tether: [Double] = []
        for _ in 0..<max(1, repetitions) {
            raw += try rawBroadcast(bytes, subscribers: subscribers, rounds: rounds, curve: keys)
            tether += try tetherBroadcast(bytes, subscribers: subscribers, rounds: rounds, curve: keys)
        }
        return BroadcastResult(bytes: bytes.count, subscribers: subscribers, tetherMilliseconds: median(tether), rawMilliseconds: median(raw))
    }

    private typealias Curve = (server: CurveKeyPair, client: CurveKeyPair, allowList: CurveAllowList)

    private static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    private static func tetherBroadcast(_ bytes: UnsafeRawBufferPointer, subscribers: Int, rounds: Int, curve: Curve?) throws -> [Double] {
        let pubContext = try WireContext(allowList: curve?.allowList)
        var subContexts: [WireContext] = []
        defer { for c in subContexts { c.close() }; pubContext.close() }
        var pubOptions = WireSocketOptions(kind: .pub, bind: ["tcp://127.0.0.1:*"], name: "bench-pub")
        pubOptions.sendHighWaterMark = 4
        if let curve { pubOptions.security = .curveServer(curve.server) }
        let publisher = try WireSocket(context: pubContext, options: pubOptions)
        var subs: [WireSocket] = []
        for i in 0..<subscribers {
            let c = try WireContext()
            subContexts.append(c)
            var o = WireSocketOptions(kind: .sub, connect: publisher.boundEndpoints, name: "bench-sub\(i)")
            o.maxMessageSize = Int64(bytes.count) + (1 << 20)
            if let curve { o.security = .curveClient(curve.client, serverPublicKey: curve.server.publicKey) }
            subs.append(try WireSocket(context: c, options: o))
        }
        // Slow joiners: heartbeat until every subscriber hears one, then drain.
        var heard = Set<Int>()
        for seq in 0..<2000 where heard.count < subscribers {
            try publisher.send(.heartbeat(Heartbeat(senderId: "bench", role: .learner, sequence: UInt64(seq), sentUnixMs: 0, policyVersion: 0)))
            for (i, s) in subs.enumerated() where s.receive(timeout: 0.005) != nil { heard.insert(i) }
        }
        guard heard.count == subscribers else { throw WireSocketError.unsupported("bench: subscribers never connected") }
        for s in subs { while s.receive(timeout: 0.05) != nil {} }

        let slots = stride(from: 0, to: bytes.count / 4, by: 1_000_000).map {
            WeightsFrames.Slot(name: "layer.\($0 / 1_000_000).weight", shape: [min(1_000_000, bytes.count / 4 - $0)], elementOffset: $0)
        }
        var times: [Double] = []
        for round in 0..<rounds {
            let released = DispatchSemaphore(value: 0)
            let arrived = DispatchGroup()
            for s in subs {
                arrived.enter()
                Thread {
                    while let r = s.receive(timeout: 30) {
                        if case .weightsHeader = r.message { break }
                    }
                    arrived.leave()
                }.start()
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let (message, frames) = WeightsFrames.message(version: UInt64(round + 1), slots: slots, buffer: bytes, keepAlive: nil,
                                                          onRelease: { released.signal() })
            try publisher.send(message, attachments: frames)
            arrived.wait()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            released.wait()
        }
        return times
    }

    private static func rawBroadcast(_ bytes: UnsafeRawBufferPointer, subscribers: Int, rounds: Int, curve: Curve?) throws -> [Double] {
        // A context with a ZAP handler for the CURVE case (the handler is part of any CURVE server).
        let pubContext = try WireContext(allowList: curve?.allowList)
        defer { pubContext.close() }
        guard let pub = zmq_socket(pubContext.handle, ZMQ_PUB) else { throw WireSocketError.zmq(operation: "zmq_socket", message: zmqErrorMessage()) }
        defer { zmq_close(pub) }
        try zmqSet(pub, ZMQ_LINGER, 0, "ZMQ_LINGER")
        try zmqSet(pub, ZMQ_SNDHWM, 4, "ZMQ_SNDHWM")
        if let curve {
            try zmqSet(pub, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
            try zmqSetZ85(pub, ZMQ_CURVE_SECRETKEY, curve.server.secretKey, "ZMQ_CURVE_SECRETKEY")
        }
        guard zmq_bind(pub, "tcp://127.0.0.1:*") == 0, let endpoint = zmqGetString(pub, ZMQ_LAST_ENDPOINT) else {
            throw WireSocketError.zmq(operation: "zmq_bind", message: zmqErrorMessage())
        }
        let state = RawSubscriberState()
        let arrivals = DispatchSemaphore(value: 0)
        let exited = DispatchGroup()
        let fullSize = bytes.count
        for _ in 0..<subscribers {
            exited.enter()
            Thread {
                defer { exited.leave() }
                guard let ctx = zmq_ctx_new() else { return }
                defer { zmq_ctx_term(ctx) }
                guard let sub = zmq_socket(ctx, ZMQ_SUB) else { return }
                defer { zmq_close(sub) }
                try? zmqSet(sub, ZMQ_LINGER, 0, "ZMQ_LINGER")
                try? zmqSet(sub, ZMQ_RCVTIMEO, 200, "ZMQ_RCVTIMEO")
                try? zmqSet(sub, ZMQ_SUBSCRIBE, bytes: [], "ZMQ_SUBSCRIBE")
                if let curve {
                    try? zmqSetZ85(sub, ZMQ_CURVE_SERVERKEY, curve.server.publicKey, "ZMQ_CURVE_SERVERKEY")
                    try? zmqSetZ85(sub, ZMQ_CURVE_PUBLICKEY, curve.client.publicKey, "ZMQ_CURVE_PUBLICKEY")
                    try? zmqSetZ85(sub, ZMQ_CURVE_SECRETKEY, curve.client.secretKey, "ZMQ_CURVE_SECRETKEY")
                }
                zmq_connect(sub, endpoint)
                var sawSync = false
                var msg = zmq_msg_t()
                zmq_msg_init(&msg)
                defer { zmq_msg_close(&msg) }
                while true {
                    if state.stopped { return }
                    if zmq_msg_recv(&msg, sub, 0) < 0 { continue }
                    if zmq_msg_size(&msg) == fullSize {
                        arrivals.signal()
                    } else if !sawSync {
                        sawSync = true
                        state.markConnected()
                    }
                }
            }.start()
        }
        defer {
            state.stop()
            exited.wait()
        }
        // Slow joiners: small messages until every subscriber has one.
        for _ in 0..<2000 {
            if state.connected == subscribers { break }
            _ = zmq_send(pub, "sync", 4, 0)
            usleep(5_000)
        }
        usleep(50_000)
        var times: [Double] = []
        for _ in 0..<rounds {
            let released = DispatchSemaphore(value: 0)
            let start = DispatchTime.now().uptimeNanoseconds
            let frames: [OutgoingFrame] = [.attachment(.borrowing(bytes.baseAddress!, count: bytes.count, keepAlive: nil, onRelease: { released.signal() }))]
            _ = try zmqSendMultipart(pub, frames, blocking: true)
            for _ in 0..<subscribers { arrivals.wait() }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            released.wait()
        }
        return times
    }
}

/// Stop flag and connection count shared by the raw baseline's subscriber threads.
private final class RawSubscriberState: @unchecked Sendable {
    // @unchecked Sendable: both fields behind `lock`.
    private let lock = NSLock()
    private var stopFlag = false
    private var count = 0
    var stopped: Bool { lock.lock(); defer { lock.unlock() }; return stopFlag }
    var connected: Int { lock.lock(); defer { lock.unlock() }; return count }
    func stop() { lock.lock(); stopFlag = true; lock.unlock() }
    func markConnected() { lock.lock(); count += 1; lock.unlock() }
}
