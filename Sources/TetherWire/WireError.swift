/// Why an incoming message was rejected. Each case names the problem precisely enough to find the
/// sender's bug; `reason` groups them for the per-reason counters (`WireErrorCounters`).
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The envelope's body field number is not one this build knows (a newer peer?).
    case unknownMessageType(fieldNumbers: [UInt32])
    /// The envelope carries no body at all.
    case missingMessageType
    /// The header frame is not a valid protobuf `tether.Envelope` (truncated or garbage).
    case malformedProtobuf(byteCount: Int)
    case unsupportedProtocolVersion(got: UInt32, supported: UInt32)
    /// The number of frames differs from what the header announces (1 + its frame table).
    case frameCountMismatch(expected: Int, got: Int)
    case frameSizeMismatch(frame: Int, expected: UInt64, got: UInt64)
    /// Two fields that must have equal lengths do not (e.g. tokens vs log-probs of one sample).
    case lengthMismatch(field: String, expected: Int, got: Int)
    case nonFiniteValue(field: String)
    case tokenOutOfVocabulary(field: String, token: UInt32, vocabularySize: Int)
    /// A policy version newer than the receiver's current one.
    case versionFromFuture(field: String, version: UInt64, current: UInt64)
    case unknownActor(String)
    case invalidEnumValue(field: String, value: UInt32)
    /// A tensor's byte range leaves its frame, or disagrees with its shape and dtype.
    case invalidTensorLayout(name: String, problem: String)
    case checksumMismatch(frame: Int, expected: UInt64, got: UInt64)
    /// A field whose value makes the message meaningless (e.g. an empty actor id).
    case invalidField(field: String, problem: String)
    /// An integer beyond what the receiver can represent or use (a policy version of 2^63).
    case integerOutOfRange(field: String, value: UInt64, limit: UInt64)
    /// An actor id that is empty, too long, or holds control, format or whitespace characters.
    case invalidIdentifier(field: String, problem: String)
    /// A free-text field longer than `PeerText.maxTextBytes`.
    case textTooLong(field: String, bytes: Int, limit: Int)
    /// With CURVE, the sender's key (its name in the allow-list, the ZAP user id) may not act as
    /// the actor id the message claims.
    case identityMismatch(claimed: String, key: String)

    public var reason: WireErrorReason {
        switch self {
        case .unknownMessageType: return .unknownMessageType
        case .missingMessageType: return .missingMessageType
        case .malformedProtobuf: return .malformedProtobuf
        case .unsupportedProtocolVersion: return .unsupportedProtocolVersion
        case .frameCountMismatch: return .frameCountMismatch
        case .frameSizeMismatch: return .frameSizeMismatch
        case .lengthMismatch: return .lengthMismatch
        case .nonFiniteValue: return .nonFiniteValue
        case .tokenOutOfVocabulary: return .tokenOutOfVocabulary
        case .versionFromFuture: return .versionFromFuture
        case .unknownActor: return .unknownActor
        case .invalidEnumValue: return .invalidEnumValue
        case .invalidTensorLayout: return .invalidTensorLayout
        case .checksumMismatch: return .checksumMismatch
        case .invalidField: return .invalidField
        case .integerOutOfRange: return .integerOutOfRange
        case .invalidIdentifier: return .invalidIdentifier
        case .textTooLong: return .textTooLong
        case .identityMismatch: return .identityMismatch
        }
    }

    /// Every string a peer controls is escaped and shortened (`PeerText.loggable`): this text goes to logs.
    public var description: String {
        let safe = PeerText.loggable
        switch self {
        case .unknownMessageType(let fields):
            return "unknown message type (envelope field(s) \(fields)); is the sender newer than this build?"
        case .missingMessageType: return "envelope carries no message body"
        case .malformedProtobuf(let n): return "header frame of \(n) bytes is not a valid tether.Envelope (truncated or garbage)"
        case .unsupportedProtocolVersion(let got, let supported):
            return "protocol version \(got) is not supported (this build speaks \(supported)); run the same Tether version on both ends"
        case .frameCountMismatch(let e, let g): return "message has \(g) frame(s) but its header announces \(e)"
        case .frameSizeMismatch(let f, let e, let g): return "raw frame \(f) is \(g) bytes but the header says \(e)"
        case .lengthMismatch(let field, let e, let g): return "\(safe(field)) has \(g) entries, expected \(e)"
        case .nonFiniteValue(let field): return "\(safe(field)) is NaN or infinite"
        case .tokenOutOfVocabulary(let field, let t, let v): return "\(safe(field)) holds token id \(t), outside the vocabulary of \(v)"
        case .versionFromFuture(let field, let v, let c): return "\(field) is policy version \(v), newer than the current \(c)"
        case .unknownActor(let id): return "message from unknown actor \"\(safe(id))\" (it has not joined)"
        case .invalidEnumValue(let field, let v): return "\(field) has unknown enum value \(v)"
        case .invalidTensorLayout(let name, let problem): return "tensor \"\(safe(name))\": \(safe(problem))"
        case .checksumMismatch(let f, let e, let g):
            return "raw frame \(f) has XXH64 \(String(g, radix: 16)), header says \(String(e, radix: 16))"
        case .invalidField(let field, let problem): return "\(safe(field)): \(safe(problem))"
        case .integerOutOfRange(let field, let v, let limit): return "\(field) is \(v), beyond the limit of \(limit)"
        case .invalidIdentifier(let field, let problem): return "\(field) \(problem)"
        case .textTooLong(let field, let bytes, let limit): return "\(field) is \(bytes) bytes, longer than the limit of \(limit)"
        case .identityMismatch(let claimed, let key):
            return "a peer holding the CURVE key \"\(safe(key))\" claims to be actor \"\(safe(claimed))\": a key named <actor-id> may only act as that actor (the shared key only with wire.shared_actor_key: true)"
        }
    }
}

/// The counter key of a `WireError`.
public enum WireErrorReason: String, Sendable, CaseIterable, Hashable {
    case unknownMessageType = "unknown_message_type"
    case missingMessageType = "missing_message_type"
    case malformedProtobuf = "malformed_protobuf"
    case unsupportedProtocolVersion = "unsupported_protocol_version"
    case frameCountMismatch = "frame_count_mismatch"
    case frameSizeMismatch = "frame_size_mismatch"
    case lengthMismatch = "length_mismatch"
    case nonFiniteValue = "non_finite_value"
    case tokenOutOfVocabulary = "token_out_of_vocabulary"
    case versionFromFuture = "version_from_future"
    case unknownActor = "unknown_actor"
    case invalidEnumValue = "invalid_enum_value"
    case invalidTensorLayout = "invalid_tensor_layout"
    case checksumMismatch = "checksum_mismatch"
    case invalidField = "invalid_field"
    case integerOutOfRange = "integer_out_of_range"
    case invalidIdentifier = "invalid_identifier"
    case textTooLong = "text_too_long"
    case identityMismatch = "identity_mismatch"
}
