import Foundation
import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class SafeTensorsTests: XCTestCase {
    /// A safetensors image from a hand-written header and data section (the format, not our writer).
    static func image(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> Data {
        var out = Data()
        var n = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    func expectError(_ bytes: Data, _ check: (ModelError) -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(bytes: bytes, path: "x.safetensors"), file: file, line: line) { e in
            guard let m = e as? ModelError, check(m) else { return XCTFail("unexpected error \(e)", file: file, line: line) }
        }
    }

    func testWriterRoundTripIsBitExactAndAligned() throws {
        var rng = SplitMix64(seed: 1)
        var a = rng.floats(12)
        a[0] = -0.0; a[1] = .nan; a[2] = .infinity; a[3] = .leastNonzeroMagnitude
        let b: [Float] = [1, 2, 3]
        let bytes = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            SafeTensorsWriter.encode([.init(name: "a", shape: [3, 4], values: pa), .init(name: "b\"q", shape: [3], values: pb)],
                                     metadata: ["note": "line\nbreak"])
        } }
        let f = try SafeTensorsFile(bytes: bytes, path: "mem")
        XCTAssertEqual(f.metadata, ["format": "pt", "note": "line\nbreak"])
        XCTAssertEqual(f.tensorNames, ["a", "b\"q"])
        XCTAssertEqual(f["a"]?.shape, [3, 4])
        XCTAssertEqual(try f.floats("a").map(\.bitPattern), a.map(\.bitPattern))
        XCTAssertEqual(try f.floats("b\"q"), b)
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(headerLength % 8, 0, "data section must start 8-byte aligned")
    }

    /// `write` streams the header and then each tensor from its own buffer; the file must be
    /// exactly the in-memory image, for a tensor larger than one write(2) piece, an empty tensor
    /// and tensors that are unaligned slices of one buffer.
    func testStreamedWriteIsByteIdenticalToTheEncodedImage() throws {
        let dir = try makeTemporaryDirectory(self)
        var rng = SplitMix64(seed: 3)
        let big = AtomicFile.maxWriteBytes / 4 + 12_345
        let flat = rng.floats(7 + big + 5)
        let path = dir + "/t.safetensors"
        let metadata = ["step": "3", "optimizer": "adamw"]
        let expected = try flat.withUnsafeBufferPointer { all -> Data in
            let tensors: [SafeTensorsWriter.Tensor] = [
                .init(name: "small", shape: [7], values: UnsafeBufferPointer(rebasing: all[0..<7])),
                .init(name: "empty", shape: [0, 3], values: UnsafeBufferPointer(rebasing: all[7..<7])),
                .init(name: "big", shape: [big], values: UnsafeBufferPointer(rebasing: all[7..<(7 + big)])),
                .init(name: "tail", shape: [5, 1], values: UnsafeBufferPointer(rebasing: all[(7 + big)...])),
            ]
            try SafeTensorsWriter.write(tensors, metadata: metadata, to: path)
            return SafeTensorsWriter.encode(tensors, metadata: metadata)
        }
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(onDisk.count, expected.count)
        XCTAssertTrue(onDisk == expected, "the streamed file differs from the encoded image")
        XCTAssertEqual(try SafeTensorsFile.open(path: path).floats("big").map(\.bitPattern), flat[7..<(7 + big)].map(\.bitPattern))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["t.safetensors"])
    }

    /// The streamed file against a header written by hand from the format (not by our encoder):
    /// sorted metadata with `format: pt`, tensors in the order given, F32 little-endian, padded
    /// with spaces to a multiple of 8.
    func testStreamedWriteMatchesAHandWrittenHeader() throws {
        let path = try makeTemporaryDirectory(self) + "/h.safetensors"
        let a: [Float] = [1, -2.5], b: [Float] = [0.15625]
        try a.withUnsafeBufferPointer { pa in try b.withUnsafeBufferPointer { pb in
            try SafeTensorsWriter.write([.init(name: "a", shape: [2], values: pa), .init(name: "b", shape: [1, 1], values: pb)],
                                        metadata: ["step": "3"], to: path)
        } }
        var header = #"{"__metadata__":{"format":"pt","step":"3"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}"#
        while header.utf8.count % 8 != 0 { header += " " }
        // 1.0 = 0x3F800000, -2.5 = 0xC0200000, 0.15625 = 0x3E200000, little-endian.
        let data: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0x20, 0xC0, 0, 0, 0x20, 0x3E]
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Self.image(header: header, data: data))
    }

    /// A write that cannot create its file (missing directory, a file where the directory should
    /// be, a read-only directory) is a typed error naming the path and leaves nothing behind.
    func testStreamedWriteIntoAnUnwritableDirectoryIsANamedError() throws {
        let dir = try makeTemporaryDirectory(self)
        let v: [Float] = [1, 2, 3]
        func write(_ path: String) throws {
            try v.withUnsafeBufferPointer { try SafeTensorsWriter.write([.init(name: "v", shape: [3], values: $0)], to: path) }
        }
        FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8))
        var targets = [dir + "/missing/w.safetensors", dir + "/file/w.safetensors"]
        if geteuid() != 0 {  // root writes into a 0555 directory regardless
            try FileManager.default.createDirectory(atPath: dir + "/ro", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o555])
            targets.append(dir + "/ro/w.safetensors")
        }
        for target in targets {
            XCTAssertThrowsError(try write(target)) { error in
                guard case .notWritable(let path, _)? = error as? DurableFileError else { return XCTFail("\(target): \(error)") }
                XCTAssertTrue(path.hasPrefix((target as NSString).deletingLastPathComponent + "/.w.safetensors.tmp-"), path)
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), geteuid() != 0 ? ["file", "ro"] : ["file"])
        if geteuid() != 0 { XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/ro"), []) }
    }

    /// A write that fails half-way through the tensors (the file-size limit makes write(2) stop,
    /// as a full disk does) is `noSpace`, keeps the previous file and removes its temporary.
    func testStreamedWriteFailingHalfWayKeepsThePreviousFile() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/w.safetensors"
        try Data("previous".utf8).write(to: URL(fileURLWithPath: path))
        var rng = SplitMix64(seed: 4)
        let values = rng.floats(AtomicFile.maxWriteBytes / 4 + 1000)
        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var small = saved
        small.rlim_cur = rlim_t(values.count * 2)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        var thrown: Error?
        do {
            try values.withUnsafeBufferPointer { try SafeTensorsWriter.write([.init(name: "v", shape: [values.count], values: $0)], to: path) }
        } catch { thrown = error }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)
        guard case .noSpace(let p)? = thrown as? DurableFileError else { return XCTFail("expected noSpace, got \(String(describing: thrown))") }
        XCTAssertTrue(p.contains(".w.safetensors.tmp-"), p)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data("previous".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["w.safetensors"])
    }

    func testBF16WidensExactly() throws {
        // BF16 is the upper 16 bits of a Float32: 1.0 = 0x3F80, -2.5 = 0xC020, 0.15625 = 0x3E20.
        let data: [UInt8] = [0x80, 0x3F, 0x20, 0xC0, 0x20, 0x3E, 0x00, 0x00]
        let f = try SafeTensorsFile(bytes: Self.image(
            header: #"{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}"#, data: data), path: "bf16")
        XCTAssertEqual(try f.floats("w"), [1.0, -2.5, 0.15625, 0.0])
    }

    func testF16WidensExactly() throws {
        // 1.0 = 0x3C00, -2.0 = 0xC000, max 65504 = 0x7BFF, smallest subnormal 2^-24 = 0x0001,
        // largest subnormal (1023/1024)·2^-14 = 0x03FF, -0 = 0x8000, +inf = 0x7C00, NaN = 0x7E00.
        let halves: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x8000, 0x7C00, 0x7E00]
        let data = halves.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let f = try SafeTensorsFile(bytes: Self.image(
            header: #"{"w":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}"#, data: data), path: "f16")
        let v = try f.floats("w")
        XCTAssertEqual(Array(v[0..<5]), [1.0, -2.0, 65504, 0x1p-24, Float(1023) / 1024 * 0x1p-14])
        XCTAssertEqual(v[5].bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(v[6], .infinity)
        XCTAssertTrue(v[7].isNaN)
    }

    /// Shards as save_pretrained writes them: the index maps each tensor to a file beside it.
    func testShardsReadThroughTheirIndexAndDisagreementsAreNamed() throws {
        let dir = try makeTemporaryDirectory(self)
        let a: [Float] = [1, 2, 3], b: [Float] = [4, 5], c: [Float] = [6]
        func shard(_ name: String, _ tensors: [(String, [Float])]) throws {
            let data = tensors[0].1.withUnsafeBufferPointer { p0 in
                (tensors.count > 1 ? tensors[1].1 : []).withUnsafeBufferPointer { p1 in
                    SafeTensorsWriter.encode([.init(name: tensors[0].0, shape: [p0.count], values: p0)]
                        + (tensors.count > 1 ? [.init(name: tensors[1].0, shape: [p1.count], values: p1)] : []))
                }
            }
            try data.write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        func index(_ map: [String: String]) throws {
            try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 24], "weight_map": map])
                .write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        }
        try shard("s1.safetensors", [("a", a), ("b", b)])
        try shard("s2.safetensors", [("c", c)])
        try index(["a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"])
        let path = dir + "/model.safetensors.index.json"
        let shards = try SafeTensorsShards.open(indexPath: path)
        XCTAssertEqual(Set(shards.tensorNames), ["a", "b", "c"])
        XCTAssertEqual(try shards.floats("a"), a)
        XCTAssertEqual(try shards.floats("c"), c)
        XCTAssertEqual(shards["b"]?.shape, [2])

        func expectShardError(_ check: (ModelError) -> Bool, line: UInt = #line) {
            XCTAssertThrowsError(try SafeTensorsShards.open(indexPath: path), line: line) { e in
                guard let m = e as? ModelError, check(m) else { return XCTFail("unexpected error \(e)", line: line) }
            }
        }
        try index(["a": "s1.safetensors", "b": "s1.safetensors", "c": "s1.safetensors"])
        expectShardError { $0 == .missingTensor(name: "c", file: dir + "/s1.safetensors (listed in \(path))") }
        try index(["a": "s1.safetensors", "c": "s2.safetensors"])
        expectShardError { if case .corruptFile(_, let d) = $0 { return d.contains("s1.safetensors holds b") } else { return false } }
        try index(["a": "../s1.safetensors"])
        expectShardError { if case .corruptFile(_, let d) = $0 { return d.contains("entry for a") } else { return false } }
        try index(["a": "s1.safetensors", "b": "s1.safetensors", "c": "s3.safetensors"])
        expectShardError { $0 == .missingFile(path: dir + "/s3.safetensors") }
        try Data("{\"weight_map\": 3}".utf8).write(to: URL(fileURLWithPath: path))
        expectShardError { if case .corruptFile(let p, _) = $0 { return p == path } else { return false } }
        try index(["a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"])
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir + "/s2.safetensors"))
        try whole.prefix(whole.count - 2).write(to: URL(fileURLWithPath: dir + "/s2.safetensors"))
        expectShardError { if case .truncatedFile(let p, _) = $0 { return p == dir + "/s2.safetensors" } else { return false } }
    }

    func testHeaderLengthPastEndOfFileIsTruncated() {
        expectError(Self.image(header: "{}", data: [], declaredLength: 4096)) {
            if case .truncatedFile = $0 { return true } else { return false }
        }
        expectError(Data([1, 2, 3])) { if case .truncatedFile = $0 { return true } else { return false } }
    }

    func testGarbageHeaderIsCorrupt() {
        expectError(Self.image(header: "not json at all", data: [])) { if case .corruptFile = $0 { return true } else { return false } }
        expectError(Self.image(header: #"{"w":{"dtype":"F32","shape":"big","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])) {
            if case .corruptFile(_, let d) = $0 { return d.contains("tensor w") } else { return false }
        }
    }

    func testOffsetsBeyondDataAreTruncated() {
        expectError(Self.image(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 8))) {
            if case .truncatedFile(_, let d) = $0 { return d.contains("tensor w") } else { return false }
        }
    }

    func testOverlappingTensorsAreCorrupt() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectError(Self.image(header: h, data: [UInt8](repeating: 0, count: 12))) {
            if case .corruptFile(_, let d) = $0 { return d.contains("overlap") } else { return false }
        }
    }

    func testShapeThatDisagreesWithByteRangeIsCorrupt() {
        expectError(Self.image(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))) {
            if case .corruptFile(_, let d) = $0 { return d.contains("tensor w") && d.contains("12 bytes") } else { return false }
        }
    }

    func testUnsupportedDTypeNamesTheTensor() throws {
        // A known dtype that Tether does not load is reported when the tensor is read…
        let f = try SafeTensorsFile(bytes: Self.image(
            header: #"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)), path: "i64")
        XCTAssertThrowsError(try f.floats("ids")) { XCTAssertEqual($0 as? ModelError, .unsupportedDType(name: "ids", dtype: "I64")) }
        // …and a dtype the format does not define is reported when the file is opened.
        expectError(Self.image(header: #"{"q":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, data: [0])) {
            $0 == .unsupportedDType(name: "q", dtype: "Q4")
        }
    }

    func testMissingFileIsNamed() {
        XCTAssertThrowsError(try SafeTensorsFile.open(path: "/nonexistent/model.safetensors")) {
            XCTAssertEqual($0 as? ModelError, .missingFile(path: "/nonexistent/model.safetensors"))
        }
    }
}
