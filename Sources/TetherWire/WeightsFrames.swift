/// Building and reading weight broadcasts: one header plus the parameter buffer as raw frames.
public enum WeightsFrames {
    /// A tensor's place in a contiguous buffer, as the model's parameter layout lists it.
    public struct Slot: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        /// Offset in elements from the start of the buffer.
        public var elementOffset: Int
        public init(name: String, shape: [Int], elementOffset: Int) {
            self.name = name; self.shape = shape; self.elementOffset = elementOffset
        }
    }

    /// The header and the single zero-copy frame for a contiguous parameter buffer. ZeroMQ reads
    /// `buffer` after this returns, until `onRelease` runs: the buffer must stay unchanged until then.
    public static func message(version: UInt64, dtype: WireDType = .float32, slots: [Slot],
                               buffer: UnsafeRawBufferPointer, keepAlive: AnyObject?,
                               onRelease: (@Sendable () -> Void)? = nil) -> (WireMessage, [WireAttachment]) {
        let width = UInt64(dtype.byteWidth)
        let tensors = slots.map { s in
            TensorEntry(name: s.name, shape: s.shape.map { UInt64($0) }, frame: 0,
                        byteOffset: UInt64(s.elementOffset) * width,
                        byteLength: UInt64(s.shape.reduce(1, *)) * width)
        }
        let header = WeightsHeader(version: version, dtype: dtype, tensors: tensors,
                                   frameLengths: [UInt64(buffer.count)], frameChecksums: [WireChecksum.xxh64(buffer)])
        let frame = WireAttachment.borrowing(buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: buffer.count,
                                             keepAlive: keepAlive, onRelease: onRelease)
        return (.weightsHeader(header), [frame])
    }

    /// Calls `body` with the bytes of tensor `name` of a received (already validated) broadcast.
    public static func withTensor<R>(named name: String, in received: WireReceived,
                                     _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard case .weightsHeader(let header) = received.message,
              let entry = header.tensors.first(where: { $0.name == name }),
              Int(entry.frame) < received.attachments.count else { return nil }
        return try received.attachments[Int(entry.frame)].withUnsafeBytes { frame in
            try body(UnsafeRawBufferPointer(rebasing: frame[Int(entry.byteOffset)..<Int(entry.byteOffset + entry.byteLength)]))
        }
    }
}
