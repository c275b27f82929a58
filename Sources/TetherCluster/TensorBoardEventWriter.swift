import Foundation

/// TFRecord framing (tensorflow/core/lib/io/record_writer.cc): for each record,
/// uint64 length (little endian), masked CRC32C of those 8 bytes, the data, masked CRC32C of the data.
public enum TFRecord {
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = littleEndianBytes(UInt64(data.count))
        out += length
        out += littleEndianBytes(CRC32C.masked(CRC32C.checksum(length)))
        out += data
        out += littleEndianBytes(CRC32C.masked(CRC32C.checksum(data)))
        return out
    }

    static func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

/// The few fields of TensorFlow's `Event` protobuf (tensorflow/core/util/event.proto) TensorBoard
/// needs for scalars, hand-encoded:
///   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
///   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
public enum TensorBoardEvent {
    public static func fileVersion(wallTime: Double) -> [UInt8] {
        var out = fixed64Field(1, wallTime.bitPattern)
        out += lengthDelimited(3, Array("brain.Event:2".utf8))
        return out
    }

    /// One Event holding all `scalars` of a step (tags sorted, non-finite values skipped: TensorBoard
    /// would plot them as gaps anyway, and JSONL records them as null).
    public static func scalars(_ scalars: [String: Double], step: Int, wallTime: Double) -> [UInt8] {
        var summary: [UInt8] = []
        for (tag, value) in scalars.sorted(by: { $0.key < $1.key }) where value.isFinite {
            var entry = lengthDelimited(1, Array(tag.utf8))
            entry += [tagByte(2, wireType: 5)] + TFRecord.littleEndianBytes(Float(value).bitPattern)
            summary += lengthDelimited(1, entry)
        }
        var out = fixed64Field(1, wallTime.bitPattern)
        out += [tagByte(2, wireType: 0)] + varint(UInt64(bitPattern: Int64(step)))
        out += lengthDelimited(5, summary)
        return out
    }

    static func tagByte(_ field: UInt8, wireType: UInt8) -> UInt8 { field << 3 | wireType }

    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
        return out
    }

    static func fixed64Field(_ field: UInt8, _ bits: UInt64) -> [UInt8] {
        [tagByte(field, wireType: 1)] + TFRecord.littleEndianBytes(bits)
    }

    static func lengthDelimited(_ field: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [tagByte(field, wireType: 2)] + varint(UInt64(payload.count)) + payload
    }
}

/// Writes `events.out.tfevents.<time>.<host>` natively, so `tensorboard --logdir <run>` works with
/// no TensorFlow in the process. Owned by one thread.
public final class TensorBoardEventWriter {
    public let url: URL
    private let file: AppendOnlyFile

    public init(directory: URL, wallTime: Double = Date().timeIntervalSince1970,
                host: String = ProcessInfo.processInfo.hostName) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var name = "events.out.tfevents.\(Int(wallTime)).\(host)"
        var n = 1
        while FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            name = "events.out.tfevents.\(Int(wallTime)).\(host).\(n)"
            n += 1
        }
        url = directory.appendingPathComponent(name)
        file = try AppendOnlyFile(url: url)
        try file.append(Data(TFRecord.frame(TensorBoardEvent.fileVersion(wallTime: wallTime))))
    }

    public func write(scalars: [String: Double], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        try file.append(Data(TFRecord.frame(TensorBoardEvent.scalars(scalars, step: step, wallTime: wallTime))))
    }

    public func sync() throws { try file.sync() }
}
