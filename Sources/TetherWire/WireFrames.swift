import CZMQ
import Foundation

/// A raw frame to send after the envelope. `.borrowing` hands ZeroMQ the caller's memory without a
/// copy (`zmq_msg_init_data`): ZeroMQ reads it from its I/O thread until every peer has it, then
/// calls `onRelease`. Until then the caller must neither free nor modify the bytes — a learner
/// double-buffers its weights or waits for the release before the next optimizer step.
public final class WireAttachment: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the borrowed memory's lifetime is the caller's
    // contract documented above, kept alive by `keepAlive` until ZeroMQ releases it.
    enum Storage {
        case bytes([UInt8])
        case borrowed(UnsafeRawPointer, Int, AnyObject?, (@Sendable () -> Void)?)
    }
    let storage: Storage

    private init(_ storage: Storage) { self.storage = storage }

    /// Copies `bytes` into the message (for small frames).
    public static func bytes(_ bytes: [UInt8]) -> WireAttachment { WireAttachment(.bytes(bytes)) }

    /// Sends `count` bytes at `base` without copying; `keepAlive` is retained until ZeroMQ is done.
    public static func borrowing(_ base: UnsafeRawPointer, count: Int, keepAlive: AnyObject?,
                                 onRelease: (@Sendable () -> Void)? = nil) -> WireAttachment {
        WireAttachment(.borrowed(base, count, keepAlive, onRelease))
    }

    public var count: Int {
        switch storage {
        case .bytes(let b): return b.count
        case .borrowed(_, let n, _, _): return n
        }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .bytes(let b): return try b.withUnsafeBytes(body)
        case .borrowed(let p, let n, _, _): return try body(UnsafeRawBufferPointer(start: p, count: n))
        }
    }
}

/// What ZeroMQ holds on to while it sends a borrowed frame.
final class BorrowedFrameRelease {
    let keepAlive: AnyObject?
    let onRelease: (@Sendable () -> Void)?
    init(keepAlive: AnyObject?, onRelease: (@Sendable () -> Void)?) { self.keepAlive = keepAlive; self.onRelease = onRelease }
}

/// `zmq_free_fn` for borrowed frames: runs on a ZeroMQ I/O thread once the frame is sent everywhere.
let releaseBorrowedFrame: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    guard let hint else { return }
    let box = Unmanaged<BorrowedFrameRelease>.fromOpaque(hint).takeRetainedValue()
    box.onRelease?()
}

/// A received frame, still in ZeroMQ's buffer (no copy); freed when the last reference goes.
public final class WireFrameBuffer: @unchecked Sendable {
    // @unchecked Sendable: the zmq_msg_t is never mutated after receipt, and zmq_msg_close is
    // safe from any thread (messages are not tied to sockets).
    let message: UnsafeMutablePointer<zmq_msg_t>

    init(taking message: UnsafeMutablePointer<zmq_msg_t>) { self.message = message }

    deinit {
        zmq_msg_close(message)
        message.deallocate()
    }

    public var count: Int { zmq_msg_size(message) }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message)))
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

/// One accepted message with its raw frames and who sent it.
public struct WireReceived: Sendable {
    public let message: WireMessage
    /// Raw frames after the envelope (the tensors of a weights header), in order.
    public let attachments: [WireFrameBuffer]
    /// The ZAP user id of the sender: its name in the CURVE allow-list (nil without CURVE).
    public let peerUserId: String?
    /// The sender's routing id on a ROUTER socket (pass it to `send(…, to:)` to reply).
    public let routingId: [UInt8]?
}
