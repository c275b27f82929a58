import Foundation
import TetherWire
import XCTest

/// ZeroMQ's `ZMQ_MAXMSGSIZE` makes a receiver drop a frame over the limit together with the
/// connection, and tells the sender nothing. A `WireSocket` refuses such a frame when it is sent,
/// with a typed error naming the frame, its size, the limit and the setting the limit comes from.
final class WireMessageSizeTests: XCTestCase {
    func testAFrameOverTheLimitIsATypedErrorAtTheSenderAndSmallerOnesArrive() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        var rx = WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"], name: "receiver")
        rx.maxMessageSize = 4096
        rx.validation = WireValidation(verifyChecksums: true)
        let receiver = try WireSocket(context: ctx, options: rx)
        var tx = WireSocketOptions(kind: .push, connect: receiver.boundEndpoints, name: "sender")
        tx.maxMessageSize = 4096
        tx.maxMessageSizeSetting = "wire.max_message_bytes"
        let sender = try WireSocket(context: ctx, options: tx)

        func weights(floats: Int) -> (WireMessage, [WireAttachment]) {
            let bytes = [UInt8](repeating: 7, count: floats * 4)
            let header = WeightsHeader(version: 1, dtype: .float32,
                                       tensors: [TensorEntry(name: "w", shape: [UInt64(floats)], byteOffset: 0, byteLength: UInt64(bytes.count))],
                                       frameLengths: [UInt64(bytes.count)], frameChecksums: [WireChecksum.xxh64(bytes)])
            return (.weightsHeader(header), [.bytes(bytes)])
        }
        // A raw weights frame one float over the limit: frame 1 (after the envelope).
        let (big, bigFrames) = weights(floats: 1025)
        XCTAssertThrowsError(try sender.send(big, attachments: bigFrames, timeout: 1)) { error in
            XCTAssertEqual(error as? WireSocketError,
                           .messageTooLarge(socket: "sender", frame: 1, bytes: 4100, limit: 4096, setting: "wire.max_message_bytes"))
            let text = "\(error)"
            XCTAssertTrue(text.contains("4100 bytes, more than wire.max_message_bytes 4096"), text)
        }
        XCTAssertThrowsError(try sender.trySend(big, attachments: bigFrames))
        // An envelope over the limit: frame 0.
        let longGroup = WireFixtures.group(samples: [WireFixtures.sample(tokens: (0..<2000).map { UInt32($0 % 64) })])
        XCTAssertThrowsError(try sender.send(.trajectoryGroup(longGroup), timeout: 1)) { error in
            guard case let .messageTooLarge(_, frame, bytes, limit, _)? = error as? WireSocketError else { return XCTFail("\(error)") }
            XCTAssertEqual(frame, 0)
            XCTAssertGreaterThan(bytes, 4096)
            XCTAssertEqual(limit, 4096)
        }
        XCTAssertEqual(sender.pendingSends, 0, "a refused message must not be queued")
        // Exactly at the limit is allowed, and arrives intact.
        let (fits, fitFrames) = weights(floats: 1024)
        try sender.send(fits, attachments: fitFrames, timeout: 1)
        let got = try XCTUnwrap(receiver.receive(timeout: 5), "the message at the limit did not arrive: \(receiver.counters.snapshot())")
        XCTAssertEqual(got.message, fits)
        XCTAssertEqual(got.attachments.map(\.count), [4096])
    }
}
