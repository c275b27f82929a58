import Foundation

/// A metadata value of a GGUF file. Integers keep their sign class but not their width (a reader
/// asks for an `Int` and gets nil when the value does not fit); arrays hold values of one type.
public indirect enum GGUFValue: Equatable, Sendable {
    case unsigned(UInt64)
    case signed(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    public var int: Int? {
        switch self {
        case .unsigned(let v): return Int(exactly: v)
        case .signed(let v): return Int(exactly: v)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .unsigned(let v): return Double(v)
        case .signed(let v): return Double(v)
        case .float(let v): return v
        default: return nil
        }
    }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var array: [GGUFValue]? { if case .array(let a) = self { return a } else { return nil } }
}

/// One tensor of a GGUF file: ggml's dimensions (`ne`, innermost first, so a PyTorch `[out, in]`
/// weight is `[in, out]` here), its type, and its validated absolute byte range in the file.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    public let dimensions: [Int]
    public let type: GGUFTensorType
    public let byteRange: Range<Int>
    public var elementCount: Int { dimensions.reduce(1, *) }
    /// The row-major shape as PyTorch and safetensors write it (`ne` reversed).
    public var shape: [Int] { dimensions.reversed() }
    /// Values per row (`ne[0]`); a row is always a whole number of blocks.
    public var rowLength: Int { dimensions[0] }
    public var rowCount: Int { elementCount / rowLength }
}

/// A GGUF file (llama.cpp's format, https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
///
///     "GGUF"  u32 version  u64 tensor_count  u64 kv_count
///     kv_count × (string key, u32 value_type, value)         strings are u64 length + UTF-8 bytes
///     tensor_count × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
///     padding to `general.alignment` (default 32), then the tensor data, offsets relative to it
///
/// The file is memory-mapped, never copied. `open` checks every count, length and offset against
/// the file's size with overflow-safe arithmetic before anything is allocated or read, so a
/// truncated or hostile file is an error naming the key or tensor, never a trap or a huge allocation.
public struct GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Keys in file order.
    public let keys: [String]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute offset of the tensor data section.
    public let dataOffset: Int
    private let bytes: Data
    private let tensorIndex: [String: Int]

    static let defaultAlignment = 32
    static let maxDimensions = 4  // GGML_MAX_DIMS
    static let maxArrayDepth = 8

    public static func open(path: String) throws -> GGUFFile {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path: path) }
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw GGUFError.corrupt(path: path, detail: "cannot read: \(error.localizedDescription)")
        }
        return try GGUFFile(bytes: bytes, path: path)
    }

    /// Parses and validates a GGUF image in memory; `path` only names it in errors.
    public init(bytes: Data, path: String) throws {
        self.path = path
        self.bytes = bytes
        let parsed = try bytes.withUnsafeBytes { raw -> (UInt32, [String], [String: GGUFValue], [GGUFTensorInfo], Int, Int) in
            var c = GGUFCursor(raw: raw, path: path)
            let magic = try c.take(4, "the magic number")
            guard magic.elementsEqual(Array("GGUF".utf8)) else {
                throw GGUFError.corrupt(path: path, detail: "magic is \(Array(magic)), not \"GGUF\"")
            }
            let version = try c.u32("the version")
            guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
            let tensorCount = try c.count("tensor_count", minimumBytesEach: 24)
            let kvCount = try c.count("kv_count", minimumBytesEach: 12)

            var keys: [String] = []
            var metadata: [String: GGUFValue] = [:]
            for i in 0..<kvCount {
                let key = try c.string("key \(i)")
                let type = try c.u32("the type of \(key)")
                guard metadata[key] == nil else { throw GGUFError.corrupt(path: path, detail: "metadata key \(key) appears twice") }
                metadata[key] = try c.value(type: type, key: key, depth: 0)
                keys.append(key)
            }

            var alignment = Self.defaultAlignment
            if let a = metadata["general.alignment"] {
                guard let n = a.int, n > 0, n <= 1 << 20, n & (n - 1) == 0 else {
                    throw GGUFError.invalidMetadata(path: path, key: "general.alignment", detail: "\(a) is not a power of two up to 2^20")
                }
                alignment = n
            }

            var infos: [(name: String, dims: [Int], type: GGUFTensorType, offset: Int)] = []
            for i in 0..<tensorCount {
                let name = try c.string("the name of tensor \(i)")
                let nDims = try c.u32("the dimension count of \(name)")
                guard nDims >= 1, nDims <= Self.maxDimensions else {
                    throw GGUFError.invalidTensor(path: path, tensor: name, detail: "\(nDims) dimensions (1 to \(Self.maxDimensions) allowed)")
                }
                var dims: [Int] = []
                for d in 0..<Int(nDims) {
                    let n = try c.u64("dimension \(d) of \(name)")
                    guard let v = Int(exactly: n), v > 0, v <= Int(Int32.max) else {
                        throw GGUFError.invalidTensor(path: path, tensor: name, detail: "dimension \(d) is \(n)")
                    }
                    dims.append(v)
                }
                let rawType = try c.u32("the type of \(name)")
                guard let type = GGUFTensorType(rawValue: rawType) else {
                    throw GGUFError.unsupportedTensorType(path: path, tensor: name, type: GGUFTensorType.describe(rawType: rawType))
                }
                let offset = try c.u64("the data offset of \(name)")
                guard let o = Int(exactly: offset) else {
                    throw GGUFError.invalidTensor(path: path, tensor: name, detail: "data offset \(offset) is out of range")
                }
                infos.append((name, dims, type, o))
            }
            // The data section starts at the next multiple of the alignment after the tensor infos.
            let headerEnd = c.offset
            let (padded, overflow) = headerEnd.addingReportingOverflow(alignment - 1)
            guard !overflow else { throw GGUFError.corrupt(path: path, detail: "header end \(headerEnd) is out of range") }
            let dataOffset = padded / alignment * alignment
            guard dataOffset <= raw.count else {
                throw GGUFError.truncated(path: path, detail: "the tensor data section would start at byte \(dataOffset), past the end of the \(raw.count)-byte file")
            }

            var tensors: [GGUFTensorInfo] = []
            var seen = Set<String>()
            for t in infos {
                func bad(_ why: String) -> GGUFError { .invalidTensor(path: path, tensor: t.name, detail: why) }
                guard seen.insert(t.name).inserted else { throw bad("appears twice") }
                guard t.dims[0] % t.type.blockElements == 0 else {
                    throw bad("row length \(t.dims[0]) is not a multiple of the \(t.type.name) block size \(t.type.blockElements)")
                }
                var elements = 1
                for d in t.dims {
                    let (p, o) = elements.multipliedReportingOverflow(by: d)
                    guard !o else { throw bad("dimensions \(t.dims) overflow") }
                    elements = p
                }
                let (byteCount, o1) = (elements / t.type.blockElements).multipliedReportingOverflow(by: t.type.blockBytes)
                guard !o1 else { throw bad("dimensions \(t.dims) overflow") }
                guard t.offset % alignment == 0 else { throw bad("data offset \(t.offset) is not a multiple of the alignment \(alignment)") }
                let (start, o2) = dataOffset.addingReportingOverflow(t.offset)
                let (end, o3) = start.addingReportingOverflow(byteCount)
                guard !o2, !o3, end <= raw.count else {
                    throw GGUFError.truncated(path: path, detail: "tensor \(t.name) (\(t.type.name) \(t.dims)) needs bytes up to \(o2 || o3 ? "beyond Int.max" : String(end)), the file has \(raw.count)")
                }
                tensors.append(GGUFTensorInfo(name: t.name, dimensions: t.dims, type: t.type, byteRange: start..<end))
            }
            let byStart = tensors.sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
            for (a, b) in zip(byStart, byStart.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound {
                throw GGUFError.corrupt(path: path, detail: "tensors \(a.name) and \(b.name) overlap in the data section")
            }
            return (version, keys, metadata, tensors, alignment, dataOffset)
        }
        (version, keys, metadata, tensors, alignment, dataOffset) = parsed
        tensorIndex = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
    }

    public subscript(tensor name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// Dequantizes a tensor to Float32. Row `r` of the file (`ne[0]` values) goes to row
    /// `destinationRow(r)` of `destination`, which must hold exactly `elementCount` floats; a
    /// permutation of rows (llama.cpp's Q/K head order) thus costs nothing extra.
    public func dequantize(_ tensor: GGUFTensorInfo, into destination: UnsafeMutableBufferPointer<Float>,
                           destinationRow: (Int) -> Int = { $0 }) throws {
        guard destination.count == tensor.elementCount else {
            throw GGUFError.invalidTensor(path: path, tensor: tensor.name, detail: "destination holds \(destination.count) floats, the tensor \(tensor.elementCount)")
        }
        let rowLength = tensor.rowLength, rows = tensor.rowCount
        let rowBytes = rowLength / tensor.type.blockElements * tensor.type.blockBytes
        try bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + tensor.byteRange.lowerBound
            let dst = destination.baseAddress!
            for r in 0..<rows {
                let d = destinationRow(r)
                guard d >= 0, d < rows else {
                    throw GGUFError.invalidTensor(path: path, tensor: tensor.name, detail: "row \(r) maps to row \(d) of \(rows)")
                }
                GGUFDequantization.row(tensor.type, from: base + r * rowBytes, to: dst + d * rowLength, count: rowLength)
            }
        }
    }

    /// Convenience for tests and small tensors: the tensor in file order.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = self[tensor: name] else { throw GGUFError.invalidTensor(path: path, tensor: name, detail: "not in the file") }
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBufferPointer { try dequantize(t, into: $0) }
        return out
    }
}

/// Reads little-endian fields from the mapped file, every read bounds-checked against its size.
struct GGUFCursor {
    let raw: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    init(raw: UnsafeRawBufferPointer, path: String) {
        self.raw = raw
        self.path = path
    }

    var remaining: Int { raw.count - offset }
    static let plausibleCount = 1 << 32

    mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else {
            throw GGUFError.truncated(path: path, detail: "\(what()) needs \(n) bytes at offset \(offset), the file has \(raw.count)")
        }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n)])
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        UInt32(littleEndian: try take(4, what()).loadUnaligned(as: UInt32.self))
    }

    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        UInt64(littleEndian: try take(8, what()).loadUnaligned(as: UInt64.self))
    }

    /// A u64 element count, rejected unless `count × minimumBytesEach` still fits in the file:
    /// an absurd count fails here instead of in a multi-terabyte allocation.
    mutating func count(_ what: String, minimumBytesEach: Int) throws -> Int {
        let n = try u64(what)
        guard let v = Int(exactly: n) else {
            throw GGUFError.corrupt(path: path, detail: "\(what) is \(n), more than the file could hold")
        }
        let (need, overflow) = v.multipliedReportingOverflow(by: minimumBytesEach)
        guard !overflow, need <= remaining else {
            // A plausible count in a short file is a truncation; an astronomical one is garbage.
            if v <= Self.plausibleCount { throw GGUFError.truncated(path: path, detail: "\(what) is \(n), but only \(remaining) bytes follow") }
            throw GGUFError.corrupt(path: path, detail: "\(what) is \(n), more than the \(remaining) bytes that follow could hold")
        }
        return v
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = try u64("the length of \(what())")
        guard let length = Int(exactly: n), length <= remaining else {
            throw GGUFError.truncated(path: path, detail: "\(what()) claims \(n) bytes at offset \(offset), only \(remaining) remain")
        }
        let b = try take(length, what())
        guard let s = String(validating: b, as: UTF8.self) else {
            throw GGUFError.corrupt(path: path, detail: "\(what()) is not valid UTF-8")
        }
        return s
    }

    /// Smallest encoding of one value of a type: bounds an array's count before it is read.
    static func minimumBytes(of type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8
        case 9: return 12
        default: return nil
        }
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        func field() -> String { "the value of \(key)" }
        switch type {
        case 0: return .unsigned(UInt64(try take(1, field())[0]))
        case 1: return .signed(Int64(Int8(bitPattern: try take(1, field())[0])))
        case 2: return .unsigned(UInt64(UInt16(littleEndian: try take(2, field()).loadUnaligned(as: UInt16.self))))
        case 3: return .signed(Int64(Int16(littleEndian: try take(2, field()).loadUnaligned(as: Int16.self))))
        case 4: return .unsigned(UInt64(try u32(field())))
        case 5: return .signed(Int64(Int32(bitPattern: try u32(field()))))
        case 6: return .float(Double(Float(bitPattern: try u32(field()))))
        case 7:
            let b = try take(1, field())[0]
            guard b <= 1 else { throw GGUFError.invalidMetadata(path: path, key: key, detail: "bool byte is \(b)") }
            return .bool(b == 1)
        case 8: return .string(try string(field()))
        case 10: return .unsigned(try u64(field()))
        case 11: return .signed(Int64(bitPattern: try u64(field())))
        case 12: return .float(Double(bitPattern: try u64(field())))
        case 9:
            guard depth < GGUFFile.maxArrayDepth else {
                throw GGUFError.invalidMetadata(path: path, key: key, detail: "arrays nested deeper than \(GGUFFile.maxArrayDepth)")
            }
            let elementType = try u32("the element type of \(key)")
            guard let size = Self.minimumBytes(of: elementType) else {
                throw GGUFError.invalidMetadata(path: path, key: key, detail: "unknown array element type \(elementType)")
            }
            let n = try count("the length of \(key)", minimumBytesEach: size)
            var values: [GGUFValue] = []
            values.reserveCapacity(n)
            for _ in 0..<n { values.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(values)
        default:
            throw GGUFError.invalidMetadata(path: path, key: key, detail: "unknown value type \(type)")
        }
    }
}
