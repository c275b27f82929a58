import Foundation
import TetherWire
import XCTest

/// What a hostile or broken peer can put on a real socket: every case must be rejected by the
/// receiving socket under its own reason and counted, and the good message after it must arrive.
final class WireHostileInputTests: XCTestCase {
    /// A ROUTER (the learner's control socket) and a DEALER peer on loopback.
    private func pair(_ validation: WireValidation = .structural) throws -> (WireContext, WireSocket, WireSocket) {
        let ctx = try WireContext()
        var rx = WireSocketOptions(kind: .router, bind: ["tcp://127.0.0.1:*"], name: "learner.control")
        rx.validation = validation
        let router = try WireSocket(context: ctx, options: rx)
        var tx = WireSocketOptions(kind: .dealer, connect: router.boundEndpoints, name: "peer")
        tx.lingerMilliseconds = 0
        return (ctx, router, try WireSocket(context: ctx, options: tx))
    }

    private func heartbeat(_ id: String, version: UInt64 = 1) -> WireMessage {
        .heartbeat(Heartbeat(senderId: id, role: .actor, sequence: 1, sentUnixMs: 0, policyVersion: version))
    }

    /// Sends `bad`, then a good heartbeat; returns what arrived (must be the good one alone).
    private func sendThenGood(_ peer: WireSocket, _ router: WireSocket, _ bad: [WireMessage]) throws -> [WireReceived] {
        for m in bad { try peer.send(m, timeout: 5) }
        try peer.send(heartbeat("good"), timeout: 5)
        var got: [WireReceived] = []
        while let m = router.receive(timeout: got.isEmpty ? 5 : 0.3) { got.append(m) }
        return got
    }

    /// The learner crashers: a heartbeat with policy_version 2^63, a join with have_version 2^64 − 1,
    /// a group with token_versions 2^63. Each integer a receiver would convert to `Int` is bounded.
    func testOutOfRangeIntegersAreRejectedByReason() throws {
        let (ctx, router, peer) = try pair()
        defer { ctx.close() }
        var group = TrajectoryGroup(ticketId: 1, actorId: "a", promptId: "0", promptTokens: [1],
                                    samples: [TrajectorySample(completionTokens: [2], behaviourLogProbs: [-0.5], tokenVersions: [1 << 63], reward: 1)])
        let bad: [WireMessage] = [
            heartbeat("a", version: 1 << 63),
            .actorJoin(ActorJoin(actorId: "a", haveVersion: .max)),
            .trajectoryGroup(group),
            .weightsRequest(WeightsRequest(actorId: "a", haveVersion: WireValidation.maxVersion + 1)),
            .ticketRequest(TicketRequest(actorId: "a", count: .max)),
        ]
        let got = try sendThenGood(peer, router, bad)
        XCTAssertEqual(got.count, 1, "only the good message may arrive: \(got.map(\.message))")
        if case .heartbeat(let h)? = got.first?.message { XCTAssertEqual(h.senderId, "good") } else { XCTFail("\(got)") }
        XCTAssertEqual(router.counters.count(.integerOutOfRange), bad.count, "\(router.counters.snapshot())")
        XCTAssertEqual(router.counters.total, bad.count)
        XCTAssertTrue("\(router.counters.lastError(.integerOutOfRange)!)".contains("limit of \(WireValidation.maxVersion)")
                      || "\(router.counters.lastError(.integerOutOfRange)!)".contains("ticket_request.count"))
        // The largest accepted version converts to Int without trapping.
        group.samples[0].tokenVersions = [WireValidation.maxVersion]
        XCTAssertNoThrow(try WireCodec.decode([WireCodec.encode(.trajectoryGroup(group))]))
        XCTAssertNotNil(Int(exactly: WireValidation.maxVersion))
    }

    /// Actor ids are identifiers (no newline, escape, bidi override, no 8 MiB), free texts are capped,
    /// and what is logged about them is escaped.
    func testIdentifiersAndTextsAreBoundedAndEscapedInLogs() throws {
        let (ctx, router, peer) = try pair()
        defer { ctx.close() }
        let forged = "x\nFORGED learner done\u{1B}[2J"
        var withLongComponent = TrajectorySample(completionTokens: [2], behaviourLogProbs: [-0.5], tokenVersions: [0], reward: 1)
        withLongComponent.rewardComponents = [RewardComponent(name: String(repeating: "n", count: PeerText.maxTextBytes + 1), value: .nan)]
        var withLongVersion = TrajectorySample(completionTokens: [2], behaviourLogProbs: [-0.5], tokenVersions: [0], reward: 1)
        withLongVersion.rewardVersion = String(repeating: "v", count: WireValidation.maxRewardVersionBytes + 1)
        let bad: [WireMessage] = [
            .actorJoin(ActorJoin(actorId: forged)),
            .actorJoin(ActorJoin(actorId: String(repeating: "a", count: 1 << 20))),
            heartbeat("evil\u{202E}txt"),
            .actorJoin(ActorJoin(actorId: "")),
            .control(Control(kind: .stop, reason: String(repeating: "r", count: PeerText.maxTextBytes + 1))),
            .trajectoryGroup(TrajectoryGroup(ticketId: 1, actorId: "a", promptId: "0", promptTokens: [1], samples: [withLongComponent])),
            .trajectoryGroup(TrajectoryGroup(ticketId: 1, actorId: "a", promptId: "0", promptTokens: [1], samples: [withLongVersion])),
        ]
        let got = try sendThenGood(peer, router, bad)
        XCTAssertEqual(got.count, 1, "only the good message may arrive")
        XCTAssertEqual(router.counters.count(.invalidIdentifier), 4, "\(router.counters.snapshot())")
        XCTAssertEqual(router.counters.count(.textTooLong), 3, "\(router.counters.snapshot())")
        for reason in [WireErrorReason.invalidIdentifier, .textTooLong] {
            let text = "\(router.counters.lastError(reason)!)"
            XCTAssertFalse(text.contains("\n") || text.contains("\u{1B}") || text.contains("\u{202E}"), text)
            XCTAssertLessThan(text.utf8.count, 1000, "a logged rejection must stay one short line")
        }
        XCTAssertEqual(PeerText.loggable(forged), "x\\nFORGED learner done\\u{1B}[2J")
        XCTAssertEqual(PeerText.loggable(String(repeating: "z", count: 300)), String(repeating: "z", count: 200) + "…(300 bytes)")
        XCTAssertEqual(PeerText.loggable("actor-0 left (SIGTERM)"), "actor-0 left (SIGTERM)")
        XCTAssertNil(PeerText.identifierProblem("actor-0"))
        XCTAssertNil(PeerText.identifierProblem("ワーカー-3"))
        XCTAssertNotNil(PeerText.identifierProblem("a b"))
        XCTAssertNotNil(PeerText.identifierProblem("a\u{200B}b"), "zero-width space is a format character")
    }

    /// With CURVE, the ZAP user id (the key's name in the allow-list) is the only actor id a peer
    /// may claim; the shared `actor` key may claim any id only where the binding allows it.
    func testIdentityIsBoundToTheCurveKey() throws {
        let server = try CurveKeyPair.generate(), actor0 = try CurveKeyPair.generate()
        let evil = try CurveKeyPair.generate(), shared = try CurveKeyPair.generate()
        let allow = try CurveAllowList(parsing: "\(actor0.publicKey) actor-0\n\(evil.publicKey) evil\n\(shared.publicKey) actor\n")
        let learnerContext = try WireContext(allowList: allow)
        let actorContext = try WireContext()
        defer { actorContext.close(); learnerContext.close() }

        func router(sharedKeys: Set<String>) throws -> WireSocket {
            var o = WireSocketOptions(kind: .router, bind: ["tcp://127.0.0.1:*"], name: "learner.control")
            o.security = .curveServer(server)
            o.validation = WireValidation(identityBinding: .init(sharedKeyNames: sharedKeys))
            return try WireSocket(context: learnerContext, options: o)
        }
        func client(_ keys: CurveKeyPair, _ to: WireSocket) throws -> WireSocket {
            var o = WireSocketOptions(kind: .dealer, connect: to.boundEndpoints)
            o.security = .curveClient(keys, serverPublicKey: server.publicKey)
            o.lingerMilliseconds = 0
            return try WireSocket(context: actorContext, options: o)
        }
        func arrivals(_ r: WireSocket) -> [String] {
            var ids: [String] = []
            while let m = r.receive(timeout: ids.isEmpty ? 3 : 0.5) { ids.append(WireValidation.claimedActor(m.message) ?? "?") }
            return ids
        }

        let strict = try router(sharedKeys: [])
        let evilClient = try client(evil, strict), actor0Client = try client(actor0, strict), sharedClient = try client(shared, strict)
        try evilClient.send(.actorJoin(ActorJoin(actorId: "actor-0")), timeout: 5)
        try evilClient.send(heartbeat("actor-0"), timeout: 5)
        try evilClient.send(.ticketRequest(TicketRequest(actorId: "actor-0", count: 1)), timeout: 5)
        try sharedClient.send(.actorJoin(ActorJoin(actorId: "actor-7")), timeout: 5)
        try evilClient.send(.actorJoin(ActorJoin(actorId: "evil")), timeout: 5)
        try actor0Client.send(.actorJoin(ActorJoin(actorId: "actor-0")), timeout: 5)
        XCTAssertEqual(Set(arrivals(strict)), ["evil", "actor-0"], "only keys acting as their own name get through")
        XCTAssertEqual(strict.counters.count(.identityMismatch), 4, "\(strict.counters.snapshot())")
        XCTAssertTrue("\(strict.counters.lastError(.identityMismatch)!)".contains("shared_actor_key"))

        let lenient = try router(sharedKeys: ["actor"])
        let sharedClient2 = try client(shared, lenient), evilClient2 = try client(evil, lenient)
        try sharedClient2.send(.actorJoin(ActorJoin(actorId: "actor-7")), timeout: 5)
        try evilClient2.send(.actorJoin(ActorJoin(actorId: "actor-0")), timeout: 5)
        XCTAssertEqual(arrivals(lenient), ["actor-7"], "the shared key may act as any actor, a named key still only as itself")
        XCTAssertEqual(lenient.counters.count(.identityMismatch), 1)
    }

    /// Handshakes that fail for reasons other than the allow-list (no CURVE at all, the wrong
    /// server key) are counted from the socket monitor; allow-list refusals are counted apart.
    func testFailedCurveHandshakesAreCounted() throws {
        let server = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let learnerContext = try WireContext(allowList: try CurveAllowList(keys: [(publicKey: try CurveKeyPair.generate().publicKey, name: "actor-0")]))
        let peers = try WireContext()
        defer { peers.close(); learnerContext.close() }
        var o = WireSocketOptions(kind: .router, bind: ["tcp://127.0.0.1:*"], name: "learner.control")
        o.security = .curveServer(server)
        let router = try WireSocket(context: learnerContext, options: o)
        func client(_ security: WireSecurity) throws -> WireSocket {
            var c = WireSocketOptions(kind: .dealer, connect: router.boundEndpoints)
            c.security = security
            c.lingerMilliseconds = 0
            c.reconnectIntervalMilliseconds = 10_000  // one attempt each within the test
            let s = try WireSocket(context: peers, options: c)
            try s.send(heartbeat("x"), timeout: 5)
            return s
        }
        XCTAssertEqual(router.handshakeFailures, 0)
        let plain = try client(.none)
        XCTAssertTrue(WireFixtures.eventually(5) { router.handshakeFailures >= 1 }, "a peer without CURVE left no trace")
        let wrongServerKey = try client(.curveClient(stranger, serverPublicKey: try CurveKeyPair.generate().publicKey))
        XCTAssertTrue(WireFixtures.eventually(5) { router.handshakeFailures >= 2 }, "a handshake with the wrong server key left no trace")
        let unknownKey = try client(.curveClient(stranger, serverPublicKey: server.publicKey))
        XCTAssertTrue(WireFixtures.eventually(5) { learnerContext.deniedConnections >= 1 && router.authenticationFailures >= 1 })
        XCTAssertNil(router.receive(timeout: 0.3))
        _ = (plain, wrongServerKey, unknownKey)
    }
}
