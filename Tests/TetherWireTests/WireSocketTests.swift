import Foundation
import TetherWire
import XCTest

/// Real PUSH/PULL, PUB/SUB and DEALER/ROUTER sockets over loopback TCP.
final class WireSocketTests: XCTestCase {
    /// A PULL receiver that knows actor-1, vocabulary 64 and current version 5, and a PUSH sender.
    private func pair(_ ctx: WireContext) throws -> (WireSocket, WireSocket) {
        var rx = WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"], name: "learner")
        rx.validation = WireValidation(vocabularySize: 64, currentPolicyVersion: 5, knownActors: ["actor-1"])
        let receiver = try WireSocket(context: ctx, options: rx)
        let sender = try WireSocket(context: ctx, options: WireSocketOptions(kind: .push, connect: receiver.boundEndpoints, name: "actor"))
        return (receiver, sender)
    }

    func testEachBadInputIsRejectedByReasonAndTheNextValidMessageArrives() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        let (receiver, sender) = try pair(ctx)

        let good = WireFixtures.group()
        let goodBytes = WireCodec.encode(.trajectoryGroup(good))
        func group(_ edit: (inout TrajectoryGroup) -> Void) -> [UInt8] {
            var g = good
            edit(&g)
            return WireCodec.encode(.trajectoryGroup(g))
        }
        let weightBytes = [UInt8](repeating: 9, count: 16)
        let weights = WeightsHeader(version: 5, dtype: .float32, tensors: [TensorEntry(name: "w", shape: [4], byteOffset: 0, byteLength: 16)],
                                    frameLengths: [16], frameChecksums: [WireChecksum.xxh64(weightBytes)])
        let weightsHeader = WireCodec.encode(.weightsHeader(weights))
        var badChecksum = weights
        badChecksum.frameChecksums = [12345]

        let cases: [(String, [[UInt8]], WireErrorReason)] = [
            ("unknown message type", [[0x08, 0x01, 0xf2, 0x01, 0x00]], .unknownMessageType),
            ("missing message type", [[0x08, 0x01]], .missingMessageType),
            ("truncated protobuf", [Array(goodBytes.prefix(goodBytes.count - 7))], .malformedProtobuf),
            ("garbage protobuf", [[0xff, 0xfe, 0xfd, 0xfc, 0x00, 0x13, 0x37]], .malformedProtobuf),
            ("protocol version from elsewhere", [[0x08, 0x07] + goodBytes.dropFirst(2)], .unsupportedProtocolVersion),
            ("extra frame after a trajectory", [goodBytes, [1, 2, 3]], .frameCountMismatch),
            ("weights without their frame", [weightsHeader], .frameCountMismatch),
            ("weights frame of the wrong size", [weightsHeader, [UInt8](repeating: 9, count: 8)], .frameSizeMismatch),
            ("weights frame that fails its checksum", [WireCodec.encode(.weightsHeader(badChecksum)), weightBytes], .checksumMismatch),
            ("tokens vs log-probs", [group { $0.samples[0].behaviourLogProbs.removeLast() }], .lengthMismatch),
            ("tokens vs versions", [group { $0.samples[1].tokenVersions.append(1) }], .lengthMismatch),
            ("NaN reward", [group { $0.samples[0].reward = .nan }], .nonFiniteValue),
            ("infinite log-prob", [group { $0.samples[1].behaviourLogProbs[0] = -.infinity }], .nonFiniteValue),
            ("NaN reward component", [group { $0.samples[0].rewardComponents[1].value = .nan }], .nonFiniteValue),
            ("token outside the vocabulary", [group { $0.samples[0].completionTokens[1] = 64 }], .tokenOutOfVocabulary),
            ("prompt token outside the vocabulary", [group { $0.promptTokens[0] = 1_000_000 }], .tokenOutOfVocabulary),
            ("version from the future", [group { $0.samples[1].tokenVersions[1] = 6 }], .versionFromFuture),
            ("unknown actor", [group { $0.actorId = "mallory" }], .unknownActor),
        ]
        for (i, (name, frames, reason)) in cases.enumerated() {
            try sender.sendRaw(frames)
            var next = good
            next.ticketId = UInt64(1000 + i)
            try sender.send(.trajectoryGroup(next))
            guard let received = receiver.receive(timeout: 5) else { return XCTFail("\(name): the valid message after it never arrived") }
            XCTAssertEqual(received.message, .trajectoryGroup(next), "\(name): the receiver must deliver the next valid message")
            XCTAssertEqual(receiver.counters.count(reason), cases[...i].filter { $0.2 == reason }.count, "\(name) must count as \(reason)")
            XCTAssertNotNil(receiver.counters.lastError(reason), name)
        }
        XCTAssertEqual(receiver.counters.total, cases.count)
        XCTAssertEqual(receiver.messagesAccepted, cases.count)
        XCTAssertEqual(receiver.counters.lastError(.lengthMismatch),
                       .lengthMismatch(field: "trajectory_group.samples[1].token_versions", expected: 2, got: 3))
        XCTAssertNil(receiver.receive(timeout: 0.05), "nothing bad may be delivered")
    }

    func testValidMessagesQueuedAroundABadOneAreAllDelivered() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        let (receiver, sender) = try pair(ctx)
        for i in 0..<200 {
            var g = WireFixtures.group()
            g.ticketId = UInt64(i)
            if i % 10 == 5 { g.samples[0].reward = .nan }
            try sender.send(.trajectoryGroup(g))
        }
        var ids: [UInt64] = []
        while ids.count < 180, let r = receiver.receive(timeout: 5) {
            if case .trajectoryGroup(let g) = r.message { ids.append(g.ticketId) }
        }
        XCTAssertEqual(ids, (0..<200).map { UInt64($0) }.filter { $0 % 10 != 5 })
        XCTAssertEqual(receiver.counters.count(.nonFiniteValue), 20)
    }

    func testValidationFollowsTheLearnersVersion() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        let (receiver, sender) = try pair(ctx)
        var g = WireFixtures.group()
        g.samples[0].tokenVersions = [7, 7, 7]
        try sender.send(.trajectoryGroup(g))
        try sender.send(.heartbeat(Heartbeat(senderId: "actor-1", role: .actor, sequence: 1, sentUnixMs: 0, policyVersion: 5)))
        XCTAssertEqual(receiver.receive(timeout: 5)?.message.kindName, "heartbeat")
        XCTAssertEqual(receiver.counters.count(.versionFromFuture), 1)
        receiver.updateValidation { $0.currentPolicyVersion = 7 }
        try sender.send(.trajectoryGroup(g))
        XCTAssertEqual(receiver.receive(timeout: 5)?.message, .trajectoryGroup(g))
    }

    func testWeightsTravelZeroCopyToEverySubscriberAndReleaseTheBuffer() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        let publisher = try WireSocket(context: ctx, options: WireSocketOptions(kind: .pub, bind: ["tcp://127.0.0.1:*"], name: "weights"))
        let subscribers = try (0..<3).map { i in
            try WireSocket(context: ctx, options: WireSocketOptions(kind: .sub, connect: publisher.boundEndpoints, name: "sub\(i)"))
        }
        // Slow joiners: publish heartbeats until every subscriber hears one.
        var heard = Set<Int>()
        for seq in 0..<500 where heard.count < subscribers.count {
            try publisher.send(.heartbeat(Heartbeat(senderId: "learner", role: .learner, sequence: UInt64(seq), sentUnixMs: 0, policyVersion: 0)))
            for (i, s) in subscribers.enumerated() where s.receive(timeout: 0.01) != nil { heard.insert(i) }
        }
        XCTAssertEqual(heard.count, 3, "subscribers never connected")
        for s in subscribers { while s.receive(timeout: 0.05) != nil {} }

        let count = 10_000
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        for i in 0..<count { buffer[i] = Float(i) * 0.5 }
        let released = expectation(description: "ZeroMQ releases the borrowed buffer")
        let (message, frames) = WeightsFrames.message(
            version: 9, slots: [.init(name: "a", shape: [100, 50], elementOffset: 0), .init(name: "b", shape: [5000], elementOffset: 5000)],
            buffer: UnsafeRawBufferPointer(buffer), keepAlive: nil, onRelease: { released.fulfill() })
        try publisher.send(message, attachments: frames)
        for s in subscribers {
            guard let r = s.receive(timeout: 10) else { return XCTFail("a subscriber got no weights") }
            XCTAssertEqual(r.attachments.count, 1)
            let b = WeightsFrames.withTensor(named: "b", in: r) { bytes in Array(bytes.bindMemory(to: Float.self)) }
            XCTAssertEqual(b?.count, 5000)
            XCTAssertEqual(b?.first, 2500)
            XCTAssertEqual(b?.last, Float(count - 1) * 0.5)
        }
        wait(for: [released], timeout: 5)
        buffer.deallocate()
    }

    /// A consumed message's frames are freed as soon as the consumer drops it. The inbox used to
    /// keep popped messages until it compacted (after 1,024 pops), so an actor held every weights
    /// broadcast it had installed: 538 MB per version at SmolLM2's size, until the OOM killer came.
    func testReceivedFramesAreFreedWhenTheConsumerDropsThem() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        let pull = try WireSocket(context: ctx, options: WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"], name: "actor"))
        let push = try WireSocket(context: ctx, options: WireSocketOptions(kind: .push, connect: pull.boundEndpoints, name: "learner"))
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 256)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1)
        for version in 1...3 {
            let (message, frames) = WeightsFrames.message(version: UInt64(version), slots: [.init(name: "w", shape: [256], elementOffset: 0)],
                                                         buffer: UnsafeRawBufferPointer(buffer), keepAlive: nil, onRelease: {})
            try push.send(message, attachments: frames)
            weak var frame: WireFrameBuffer?
            do {
                guard let r = pull.receive(timeout: 10) else { return XCTFail("version \(version) never arrived") }
                withExtendedLifetime(r) {
                    XCTAssertEqual(r.attachments.count, 1)
                    frame = r.attachments.first
                    XCTAssertNotNil(frame)
                }
            }
            // The socket's own thread may still be returning from the hand-off with the frames in hand.
            let deadline = Date(timeIntervalSinceNow: 2)
            while frame != nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
            XCTAssertNil(frame, "version \(version): the inbox still holds a consumed message's frames")
        }
    }

    func testBorrowedFramesAreReleasedEvenWhenNeverDelivered() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        var o = WireSocketOptions(kind: .push, connect: ["tcp://127.0.0.1:1"], name: "nobody-listens")
        o.lingerMilliseconds = 0
        let push = try WireSocket(context: ctx, options: o)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 16)
        defer { buffer.deallocate() }
        let released = expectation(description: "released on close")
        let (message, frames) = WeightsFrames.message(version: 1, slots: [.init(name: "w", shape: [16], elementOffset: 0)],
                                                      buffer: UnsafeRawBufferPointer(buffer), keepAlive: nil, onRelease: { released.fulfill() })
        try push.send(message, attachments: frames)
        push.close()
        wait(for: [released], timeout: 5)
    }

    func testZeroMQReconnectsWhenTheLearnerComesBack() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        var first = try WireSocket(context: ctx, options: WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"], name: "learner"))
        let endpoint = first.boundEndpoints[0]
        var o = WireSocketOptions(kind: .push, connect: [endpoint], name: "actor")
        o.reconnectIntervalMilliseconds = 20
        o.reconnectIntervalMaxMilliseconds = 100
        let actor = try WireSocket(context: ctx, options: o)
        let beat = { (n: UInt64) in WireMessage.heartbeat(Heartbeat(senderId: "a", role: .learner, sequence: n, sentUnixMs: 0, policyVersion: 0)) }
        try actor.send(beat(1))
        XCTAssertEqual(first.receive(timeout: 5)?.message, beat(1))
        first.close()
        // ZeroMQ releases the port asynchronously after close: retry the bind briefly.
        var restarted: WireSocket?
        for _ in 0..<100 where restarted == nil {
            restarted = try? WireSocket(context: ctx, options: WireSocketOptions(kind: .pull, bind: [endpoint], name: "learner-restarted"))
            if restarted == nil { usleep(20_000) }
        }
        first = try XCTUnwrap(restarted, "could not bind \(endpoint) again")
        // A message queued while PUSH still held the dead connection is dropped with it (ZeroMQ's
        // delivery is at most once); actors re-send heartbeats, so the test does too.
        var received: WireMessage?
        var sequence: UInt64 = 2
        let deadline = Date(timeIntervalSinceNow: 10)
        while received == nil && Date() < deadline {
            try actor.send(beat(sequence))
            received = first.receive(timeout: 0.2)?.message
            sequence += 1
        }
        guard case .heartbeat(let h)? = received else { return XCTFail("the actor must reconnect to the restarted learner by itself") }
        XCTAssertGreaterThanOrEqual(h.sequence, 2)
    }

    func testRouterRepliesReachTheDealerThatAsked() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        let router = try WireSocket(context: ctx, options: WireSocketOptions(kind: .router, bind: ["tcp://127.0.0.1:*"], name: "learner"))
        let dealer = try WireSocket(context: ctx, options: WireSocketOptions(kind: .dealer, connect: router.boundEndpoints, name: "actor"))
        try dealer.send(.ticketRequest(TicketRequest(actorId: "actor-1", count: 1)))
        guard let request = router.receive(timeout: 5), let routing = request.routingId else { return XCTFail("no request") }
        XCTAssertEqual(request.message, .ticketRequest(TicketRequest(actorId: "actor-1", count: 1)))
        let ticket = RolloutTicket(ticketId: 1, prompts: [TicketPrompt(promptId: "p", tokens: [1])], groupSize: 4, policyVersion: 0, leaseDeadlineUnixMs: 10)
        try router.send(.rolloutTicket(ticket), to: routing)
        XCTAssertEqual(dealer.receive(timeout: 5)?.message, .rolloutTicket(ticket))
    }

    func testCloseWakesBlockedReceiversAndAsyncNext() async throws {
        let ctx = try WireContext()
        let pull = try WireSocket(context: ctx, options: WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"]))
        let push = try WireSocket(context: ctx, options: WireSocketOptions(kind: .push, connect: pull.boundEndpoints))
        try await push.sendAsync(.control(Control(kind: .stop)))
        let first = await pull.next()
        XCTAssertEqual(first?.message, .control(Control(kind: .stop)))
        let waiter = Task { await pull.next() }
        try await Task.sleep(nanoseconds: 50_000_000)
        ctx.close()  // closes both sockets, then the context
        let after = await waiter.value
        XCTAssertNil(after)
        XCTAssertThrowsError(try push.send(.control(Control(kind: .stop)))) { XCTAssertEqual($0 as? WireSocketError, .closed) }
    }
}
