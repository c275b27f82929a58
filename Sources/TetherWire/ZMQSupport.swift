import CZMQ
#if canImport(Glibc)
import Glibc
#endif

/// Thin checked wrappers over the libzmq C calls used by the socket owners.

/// A Swift string from a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

func zmqErrorMessage() -> String { String(cString: zmq_strerror(zmq_errno())) }

func zmqSet(_ socket: UnsafeMutableRawPointer, _ option: Int32, _ value: Int32, _ name: String) throws {
    var v = value
    guard zmq_setsockopt(socket, option, &v, MemoryLayout<Int32>.size) == 0 else {
        throw WireSocketError.zmq(operation: "zmq_setsockopt(\(name))", message: zmqErrorMessage())
    }
}

func zmqSet(_ socket: UnsafeMutableRawPointer, _ option: Int32, int64 value: Int64, _ name: String) throws {
    var v = value
    guard zmq_setsockopt(socket, option, &v, MemoryLayout<Int64>.size) == 0 else {
        throw WireSocketError.zmq(operation: "zmq_setsockopt(\(name))", message: zmqErrorMessage())
    }
}

func zmqSet(_ socket: UnsafeMutableRawPointer, _ option: Int32, bytes: [UInt8], _ name: String) throws {
    let rc = bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
    guard rc == 0 else { throw WireSocketError.zmq(operation: "zmq_setsockopt(\(name))", message: zmqErrorMessage()) }
}

/// Z85 keys are passed as 41-byte NUL-terminated strings (libzmq tells Z85 from raw by the size).
func zmqSetZ85(_ socket: UnsafeMutableRawPointer, _ option: Int32, _ key: String, _ name: String) throws {
    try zmqSet(socket, option, bytes: Array(key.utf8) + [0], name)
}

func zmqGetString(_ socket: UnsafeMutableRawPointer, _ option: Int32) -> String? {
    var buffer = [CChar](repeating: 0, count: 1024)
    var size = buffer.count
    guard zmq_getsockopt(socket, option, &buffer, &size) == 0 else { return nil }
    return cString(buffer)
}

/// Receives every frame of one multipart message (the first part non-blocking); nil on EAGAIN.
func zmqReceiveMultipart(_ socket: UnsafeMutableRawPointer) throws -> [WireFrameBuffer]? {
    var frames: [WireFrameBuffer] = []
    var flags = ZMQ_DONTWAIT
    while true {
        let msg = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(msg)
        if zmq_msg_recv(msg, socket, flags) < 0 {
            let err = zmq_errno()
            zmq_msg_close(msg)
            msg.deallocate()
            if err == EAGAIN && frames.isEmpty { return nil }
            if err == EINTR { continue }
            throw WireSocketError.zmq(operation: "zmq_msg_recv", message: String(cString: zmq_strerror(err)))
        }
        let more = zmq_msg_more(msg) != 0
        frames.append(WireFrameBuffer(taking: msg))
        if !more { return frames }
        flags = 0  // the remaining parts of a multipart message are already here
    }
}

/// Sends `frames` as one multipart message. Returns false, having sent nothing, when the first
/// frame would block (high-water mark); once the first part is accepted ZeroMQ takes the rest.
func zmqSendMultipart(_ socket: UnsafeMutableRawPointer, _ frames: [OutgoingFrame], blocking: Bool = false) throws -> Bool {
    for (i, frame) in frames.enumerated() {
        let last = i == frames.count - 1
        var msg = zmq_msg_t()
        frame.initialize(&msg)
        let flags = (last ? 0 : ZMQ_SNDMORE) | (i == 0 && !blocking ? ZMQ_DONTWAIT : 0)
        while zmq_msg_send(&msg, socket, flags) < 0 {
            let err = zmq_errno()
            if err == EINTR { continue }
            zmq_msg_close(&msg)  // releases a borrowed frame
            if err == EAGAIN && i == 0 { return false }
            for rest in frames[(i + 1)...] { rest.releaseUnsent() }
            throw WireSocketError.zmq(operation: "zmq_msg_send", message: String(cString: zmq_strerror(err)))
        }
    }
    return true
}

/// One frame about to be sent: bytes copied into a fresh message, or borrowed memory handed over.
enum OutgoingFrame {
    case bytes([UInt8])
    case attachment(WireAttachment)

    func initialize(_ msg: UnsafeMutablePointer<zmq_msg_t>) {
        switch self {
        case .bytes(let b):
            Self.initCopy(msg, b)
        case .attachment(let a):
            switch a.storage {
            case .bytes(let b):
                Self.initCopy(msg, b)
            case .borrowed(let base, let count, let keepAlive, let onRelease):
                if count == 0 {
                    zmq_msg_init(msg)
                    onRelease?()
                    return
                }
                let hint = Unmanaged.passRetained(BorrowedFrameRelease(keepAlive: keepAlive, onRelease: onRelease)).toOpaque()
                zmq_msg_init_data(msg, UnsafeMutableRawPointer(mutating: base), count, releaseBorrowedFrame, hint)
            }
        }
    }

    /// Runs the release callback of a borrowed frame that will never be handed to ZeroMQ, so
    /// a sender waiting for it (to reuse its buffer) is not left waiting forever.
    func releaseUnsent() {
        if case .attachment(let a) = self, case .borrowed(_, _, _, let onRelease) = a.storage { onRelease?() }
    }

    private static func initCopy(_ msg: UnsafeMutablePointer<zmq_msg_t>, _ bytes: [UInt8]) {
        zmq_msg_init_size(msg, bytes.count)
        if !bytes.isEmpty {
            bytes.withUnsafeBytes { zmq_msg_data(msg).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
    }
}
