import Foundation

/// One tensor listed in a safetensors header: its dtype name as written, its shape, and its byte
/// range inside the data section (the bytes after the 8-byte length and the JSON header).
public struct SafeTensorsEntry: Equatable, Sendable {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    public let dataRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`,
/// then the raw little-endian tensor bytes, offsets relative to the end of the header.
///
/// `open` validates the whole header against the file size before any tensor is read, so a
/// truncated or corrupt file is rejected up front with an error that names the file and the tensor.
public struct SafeTensorsFile: TensorSource, Sendable {
    public let path: String
    public let metadata: [String: String]
    /// Entries in data-offset order.
    public let entries: [SafeTensorsEntry]
    private let index: [String: Int]
    private let bytes: Data
    private let dataStart: Int

    /// Bytes per element of every dtype the format defines; a name outside this table is corrupt.
    static let dtypeSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
        "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
        "U32": 4, "I32": 4, "F32": 4,
        "U64": 8, "I64": 8, "F64": 8,
    ]
    /// The header limit of the reference implementation (100 MB): larger is garbage, not a model.
    static let maxHeaderBytes = 100_000_000

    public static func open(path: String) throws -> SafeTensorsFile {
        guard FileManager.default.fileExists(atPath: path) else { throw ModelError.missingFile(path: path) }
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw ModelError.corruptFile(path: path, detail: "cannot read: \(error.localizedDescription)")
        }
        return try SafeTensorsFile(bytes: bytes, path: path)
    }

    /// Parses and validates a safetensors image held in memory; `path` only names it in errors.
    public init(bytes: Data, path: String) throws {
        self.path = path
        self.bytes = bytes
        guard bytes.count >= 8 else {
            throw ModelError.truncatedFile(path: path, detail: "\(bytes.count) bytes, shorter than the 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw ModelError.corruptFile(path: path, detail: "header length \(headerLength) is implausible (not a safetensors file?)")
        }
        guard 8 + Int(headerLength) <= bytes.count else {
            throw ModelError.truncatedFile(
                path: path, detail: "header of \(headerLength) bytes runs past the end of the \(bytes.count)-byte file")
        }
        dataStart = 8 + Int(headerLength)
        let headerBytes = bytes.subdata(in: (bytes.startIndex + 8)..<(bytes.startIndex + dataStart))
        guard headerBytes.first == UInt8(ascii: "{"),
              let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any]
        else { throw ModelError.corruptFile(path: path, detail: "header is not a JSON object") }

        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [SafeTensorsEntry] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw ModelError.corruptFile(path: path, detail: "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw ModelError.corruptFile(path: path, detail: "__metadata__ value for \(k) is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            entries.append(try Self.parseEntry(name: name, value: value, dataSize: dataSize, path: path))
        }
        entries.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        for (a, b) in zip(entries, entries.dropFirst()) where b.dataRange.lowerBound < a.dataRange.upperBound {
            throw ModelError.corruptFile(path: path, detail: "tensors \(a.name) and \(b.name) overlap in the data section")
        }
        self.metadata = metadata
        self.entries = entries
        self.index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(name: String, value: Any, dataSize: Int, path: String) throws -> SafeTensorsEntry {
        func corrupt(_ why: String) -> ModelError { .corruptFile(path: path, detail: "tensor \(name): \(why)") }
        guard let d = value as? [String: Any] else { throw corrupt("entry is not an object") }
        guard let dtype = d["dtype"] as? String else { throw corrupt("dtype is missing") }
        guard let elementSize = dtypeSizes[dtype] else { throw ModelError.unsupportedDType(name: name, dtype: dtype) }
        guard let shapeAny = d["shape"] as? [Any], let shape = Self.nonNegativeInts(shapeAny) else {
            throw corrupt("shape is not a list of non-negative integers")
        }
        guard let offsetsAny = d["data_offsets"] as? [Any], let offsets = Self.nonNegativeInts(offsetsAny),
              offsets.count == 2, offsets[0] <= offsets[1]
        else { throw corrupt("data_offsets is not [begin, end] with begin ≤ end") }
        guard offsets[1] <= dataSize else {
            throw ModelError.truncatedFile(
                path: path, detail: "tensor \(name) ends at byte \(offsets[1]) of the data section, which has only \(dataSize)")
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, n in
            let (p, o) = acc.0.multipliedReportingOverflow(by: n)
            return (p, acc.1 || o)
        }
        let (byteCount, overflow2) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow, !overflow2, byteCount == offsets[1] - offsets[0] else {
            throw corrupt("shape \(shape) of \(dtype) needs \(byteCount) bytes but data_offsets span \(offsets[1] - offsets[0])")
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: offsets[0]..<offsets[1])
    }

    private static func nonNegativeInts(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            // JSONSerialization gives NSNumber; reject fractions and negatives, which also bridge to Int.
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d >= 0, d == d.rounded(), d < 9.0e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    public subscript(name: String) -> SafeTensorsEntry? { index[name].map { entries[$0] } }
    public var tensorNames: [String] { entries.map(\.name) }

    /// Decodes a tensor to Float32 into `destination` (exactly `elementCount` floats).
    /// F32 is copied bit for bit; BF16 is the top half of a Float32 and every F16 is a Float32, so
    /// widening either is exact.
    public func readFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let e = self[name] else { throw ModelError.missingTensor(name: name, file: path) }
        precondition(destination.count == e.elementCount, "destination holds \(destination.count) floats, \(name) has \(e.elementCount)")
        let start = dataStart + e.dataRange.lowerBound
        let count = e.elementCount
        let dst = destination.baseAddress
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let src = raw.baseAddress! + start
            switch e.dtype {
            case "F32":
                if count > 0 { memcpy(dst!, src, count * 4) }
                #if _endian(big)
                for i in 0..<count { dst![i] = Float(bitPattern: UInt32(littleEndian: dst![i].bitPattern)) }
                #endif
            case "BF16":
                for i in 0..<count {
                    let lo = UInt32(src.load(fromByteOffset: 2 * i, as: UInt8.self))
                    let hi = UInt32(src.load(fromByteOffset: 2 * i + 1, as: UInt8.self))
                    dst![i] = Float(bitPattern: (hi << 24) | (lo << 16))
                }
            case "F16":
                for i in 0..<count {
                    let lo = UInt16(src.load(fromByteOffset: 2 * i, as: UInt8.self))
                    let hi = UInt16(src.load(fromByteOffset: 2 * i + 1, as: UInt8.self))
                    dst![i] = Self.halfToFloat((hi << 8) | lo)
                }
            default:
                throw ModelError.unsupportedDType(name: name, dtype: e.dtype)
            }
        }
    }

    /// IEEE 754 binary16 → binary32 (sign, 5-bit exponent biased 15, 10-bit fraction): normals
    /// and subnormals to their exact value, ±∞ and NaN kept.
    @inline(__always)
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int(h >> 10) & 0x1F
        let fraction = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            let magnitude = Float(fraction) * 0x1p-24  // subnormal: fraction · 2^-24, exact in Float32
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | (fraction << 13))
        default:
            return Float(bitPattern: sign | (UInt32(exponent + 112) << 23) | (fraction << 13))
        }
    }
}

/// Where a checkpoint's tensors come from: one safetensors file or the shards of one.
public protocol TensorSource {
    /// Names the source in errors.
    var path: String { get }
    var tensorNames: [String] { get }
    subscript(name: String) -> SafeTensorsEntry? { get }
    func readFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws
}

extension TensorSource {
    /// Convenience for tests and small tensors.
    public func floats(_ name: String) throws -> [Float] {
        guard let e = self[name] else { throw ModelError.missingTensor(name: name, file: path) }
        var out = [Float](repeating: 0, count: e.elementCount)
        try out.withUnsafeMutableBufferPointer { try readFloats(name, into: $0) }
        return out
    }
}

/// A sharded safetensors checkpoint, as `save_pretrained` writes one past `max_shard_size`:
/// `model.safetensors.index.json` = `{"metadata": {…}, "weight_map": {tensor: shard file}}` beside
/// the shard files. Every shard is opened (and its header validated) up front; the index and the
/// shards must agree exactly — a tensor mapped to a shard that lacks it, or a tensor in a shard
/// the index does not list, is an error naming both.
public struct SafeTensorsShards: TensorSource, Sendable {
    public let path: String
    public let shards: [SafeTensorsFile]
    private let location: [String: Int]

    public static let indexFile = "model.safetensors.index.json"

    public static func open(indexPath: String) throws -> SafeTensorsShards {
        guard FileManager.default.fileExists(atPath: indexPath) else { throw ModelError.missingFile(path: indexPath) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: indexPath)) } catch {
            throw ModelError.corruptFile(path: indexPath, detail: "cannot read: \(error.localizedDescription)")
        }
        guard let index = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let map = index["weight_map"] as? [String: Any]
        else { throw ModelError.corruptFile(path: indexPath, detail: "not a JSON object with a weight_map object") }
        let directory = (indexPath as NSString).deletingLastPathComponent
        var fileOf: [String: String] = [:]
        for (name, value) in map {
            // A shard is a plain file beside the index, never a path that leaves the directory.
            guard let file = value as? String, !file.isEmpty, !file.contains("/"), !file.contains("\\"), file != ".", file != ".." else {
                throw ModelError.corruptFile(path: indexPath, detail: "weight_map entry for \(name) is not a file name beside the index")
            }
            fileOf[name] = file
        }
        let files = Array(Set(fileOf.values)).sorted()
        let shards = try files.map { try SafeTensorsFile.open(path: directory + "/" + $0) }
        var location: [String: Int] = [:]
        for (i, shard) in shards.enumerated() {
            for name in shard.tensorNames {
                guard fileOf[name] == files[i] else {
                    throw ModelError.corruptFile(path: indexPath, detail: "shard \(files[i]) holds \(name), which the weight_map \(fileOf[name].map { "puts in \($0)" } ?? "does not list")")
                }
                location[name] = i
            }
        }
        for (name, file) in fileOf where location[name] == nil {
            throw ModelError.missingTensor(name: name, file: directory + "/" + file + " (listed in \(indexPath))")
        }
        return SafeTensorsShards(path: indexPath, shards: shards, location: location)
    }

    public var tensorNames: [String] { shards.flatMap(\.tensorNames) }
    public subscript(name: String) -> SafeTensorsEntry? { location[name].flatMap { shards[$0][name] } }

    public func readFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
        guard let i = location[name] else { throw ModelError.missingTensor(name: name, file: path) }
        try shards[i].readFloats(name, into: destination)
    }
}

/// Writes Float32 safetensors files, tensors in the order given, contiguous, header padded with
/// spaces to a multiple of 8 bytes (as the reference writer does, so the data section is aligned).
public enum SafeTensorsWriter {
    public struct Tensor {
        public let name: String
        public let shape: [Int]
        public let values: UnsafeBufferPointer<Float>
        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not hold \(values.count) floats")
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The 8-byte length and the padded JSON header: everything before the first tensor's bytes.
    /// `transformers` refuses files whose metadata lacks `format: pt`.
    static func headerBytes(_ tensors: [Tensor], metadata: [String: String]) -> [UInt8] {
        var meta = metadata
        if meta["format"] == nil { meta["format"] = "pt" }
        var header = "{\"__metadata__\":{"
        header += meta.keys.sorted().map { "\(jsonString($0)):\(jsonString(meta[$0]!))" }.joined(separator: ",")
        header += "}"
        var offset = 0
        for t in tensors {
            let bytes = t.values.count * 4
            header += ",\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
            header += "\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        header += "}"
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        return withUnsafeBytes(of: UInt64(json.count).littleEndian) { [UInt8]($0) } + json
    }

    /// The complete file image in memory, for small files and tests; checkpoints use `write`.
    public static func encode(_ tensors: [Tensor], metadata: [String: String] = [:]) -> Data {
        let header = headerBytes(tensors, metadata: metadata)
        var out = Data(capacity: header.count + 4 * tensors.reduce(0) { $0 + $1.values.count })
        out.append(contentsOf: header)
        for t in tensors where t.values.count > 0 {
            #if _endian(big)
            for v in t.values { var le = v.bitPattern.littleEndian; withUnsafeBytes(of: &le) { out.append(contentsOf: $0) } }
            #else
            out.append(UnsafeBufferPointer(start: UnsafeRawPointer(t.values.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                           count: t.values.count * 4))
            #endif
        }
        return out
    }

    /// Writes the file atomically (see `AtomicFile`), the same bytes `encode` gives: the header,
    /// then each tensor straight from its buffer to the file descriptor. Nothing the size of the
    /// file is allocated, so saving a model does not fault in a second copy of its weights.
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String) throws {
        let header = headerBytes(tensors, metadata: metadata)
        try AtomicFile.write(to: path) { fd, temporary in
            try header.withUnsafeBytes { try AtomicFile.writeAll($0, to: fd, path: temporary) }
            for t in tensors {
                #if _endian(big)
                try writeLittleEndian(t.values, to: fd, path: temporary)
                #else
                try AtomicFile.writeAll(UnsafeRawBufferPointer(t.values), to: fd, path: temporary)
                #endif
            }
        }
    }

    #if _endian(big)
    /// Byte-swaps through a bounded scratch buffer, one `AtomicFile.maxWriteBytes` piece at a time.
    private static func writeLittleEndian(_ values: UnsafeBufferPointer<Float>, to fd: Int32, path: String) throws {
        var scratch = [UInt32](repeating: 0, count: min(values.count, AtomicFile.maxWriteBytes / 4))
        var i = 0
        while i < values.count {
            let n = min(scratch.count, values.count - i)
            for k in 0..<n { scratch[k] = values[i + k].bitPattern.littleEndian }
            try scratch.withUnsafeBytes { try AtomicFile.writeAll(UnsafeRawBufferPointer(rebasing: $0.prefix(4 * n)), to: fd, path: path) }
            i += n
        }
    }
    #endif
}
