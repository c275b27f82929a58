/// Weight broadcast messages. Wire knows tensors only as named byte ranges (DESIGN.md): the header
/// is a table of (name, shape, frame, offset, length) into the raw frames that follow it, which
/// fits the model's one contiguous Float32 parameter buffer sent as one frame.

public enum WireDType: UInt32, Sendable, Equatable, CaseIterable {
    case unspecified = 0
    case float32 = 1
    case bfloat16 = 2
    case float16 = 3

    /// Bytes per element (0 for `.unspecified`).
    public var byteWidth: Int {
        switch self {
        case .unspecified: return 0
        case .float32: return 4
        case .bfloat16, .float16: return 2
        }
    }
}

public struct TensorEntry: Sendable, Equatable {
    public var name: String
    public var shape: [UInt64]
    /// 0-based index among the raw frames after the envelope.
    public var frame: UInt32
    public var byteOffset: UInt64
    public var byteLength: UInt64

    public init(name: String, shape: [UInt64], frame: UInt32 = 0, byteOffset: UInt64, byteLength: UInt64) {
        self.name = name; self.shape = shape; self.frame = frame; self.byteOffset = byteOffset; self.byteLength = byteLength
    }
}

public struct WeightsHeader: Sendable, Equatable {
    public var version: UInt64
    public var dtype: WireDType
    public var tensors: [TensorEntry]
    /// Byte length of each raw frame following the envelope.
    public var frameLengths: [UInt64]
    /// XXH64 (seed 0) of each raw frame, same order as `frameLengths`.
    public var frameChecksums: [UInt64]

    public init(version: UInt64, dtype: WireDType, tensors: [TensorEntry], frameLengths: [UInt64], frameChecksums: [UInt64]) {
        self.version = version; self.dtype = dtype; self.tensors = tensors
        self.frameLengths = frameLengths; self.frameChecksums = frameChecksums
    }
}

/// A late joiner (or an actor that missed a broadcast) asking for the latest weights.
public struct WeightsRequest: Sendable, Equatable {
    public var actorId: String
    public var haveVersion: UInt64
    public init(actorId: String, haveVersion: UInt64) { self.actorId = actorId; self.haveVersion = haveVersion }
}
