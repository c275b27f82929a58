import CTetherWire

/// Encodes `WireMessage`s to the envelope frame and decodes (and validates) received frames.
/// Pure functions over bytes: the sockets call them, and so do the fuzzer and the tests.
public enum WireCodec {
    /// The protobuf bytes of `message` wrapped in a `tether.Envelope` with this build's protocol version.
    public static func encode(_ message: WireMessage) -> [UInt8] {
        let encoder = ProtobufEncoder()
        let envelope = encoder.envelope(message)
        let size = tether__envelope__get_packed_size(envelope)
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBufferPointer { tether__envelope__pack(envelope, $0.baseAddress!) }
        precondition(written == size, "protobuf-c packed \(written) of \(size) bytes")
        return out
    }

    /// Decodes the envelope frame `header` without looking at any raw frames: callers that get a
    /// weights header still have to validate it against its frames (`decode(frames:validation:)`).
    public static func decodeEnvelope(_ header: UnsafeRawBufferPointer) throws -> WireMessage {
        let base = header.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let empty: UInt8 = 0
        let unpacked: UnsafeMutablePointer<Tether__Envelope>? = withUnsafePointer(to: empty) { fallback in
            tether__envelope__unpack(nil, header.count, base ?? fallback)
        }
        guard let envelope = unpacked else { throw WireError.malformedProtobuf(byteCount: header.count) }
        defer { tether__envelope__free_unpacked(envelope, nil) }
        return try ProtobufDecoder.envelope(envelope)
    }

    /// Decodes and validates a whole multipart message: frame 0 is the envelope, the rest are the
    /// raw frames its header announces. Throws a `WireError` naming the first problem.
    public static func decode(frames: [UnsafeRawBufferPointer], validation: WireValidation = .structural) throws -> WireMessage {
        guard let header = frames.first else { throw WireError.frameCountMismatch(expected: 1, got: 0) }
        let message = try decodeEnvelope(header)
        let attachments = frames.dropFirst()
        try validation.validate(message, attachmentSizes: attachments.map { UInt64($0.count) })
        if validation.verifyChecksums, case .weightsHeader(let weights) = message {
            for (i, frame) in attachments.enumerated() {
                let got = WireChecksum.xxh64(frame)
                if got != weights.frameChecksums[i] {
                    throw WireError.checksumMismatch(frame: i + 1, expected: weights.frameChecksums[i], got: got)
                }
            }
        }
        return message
    }

    /// Convenience for tests and tools: decode from byte arrays.
    public static func decode(_ frames: [[UInt8]], validation: WireValidation = .structural) throws -> WireMessage {
        func withAll<R>(_ i: Int, _ acc: [UnsafeRawBufferPointer], _ body: ([UnsafeRawBufferPointer]) throws -> R) throws -> R {
            if i == frames.count { return try body(acc) }
            return try frames[i].withUnsafeBytes { try withAll(i + 1, acc + [$0], body) }
        }
        return try withAll(0, []) { try decode(frames: $0, validation: validation) }
    }
}

/// XXH64 (seed 0), the checksum of raw weights frames.
public enum WireChecksum {
    public static func xxh64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        tether_xxh64(bytes.baseAddress, bytes.count, seed)
    }

    public static func xxh64(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { xxh64($0, seed: seed) }
    }
}
