import Foundation
import TetherCluster
import XCTest

/// The fast CRC-32C paths (the `crc32` instruction with three interleaved streams, slicing-by-8)
/// against the bytewise table loop, over the lengths and alignments where their head, block and
/// tail loops change over.
final class CRC32CTests: XCTestCase {
    /// RFC 3720 (iSCSI) Appendix B.4 vectors and the "123456789" check value, through each path.
    func testKnownVectorsOnEveryPath() {
        let vectors: [([UInt8], UInt32)] = [
            (Array("123456789".utf8), 0xE306_9283),
            ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
            ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
            ((0 ..< 32).map { UInt8($0) }, 0x46DD_794E),
            ([], 0),
        ]
        for (bytes, expected) in vectors {
            XCTAssertEqual(CRC32C.bytewise(bytes), expected)
            XCTAssertEqual(bytes.withUnsafeBytes { CRC32C.checksum($0) }, expected)
            XCTAssertEqual(bytes.withUnsafeBytes { CRC32C.slicingBy8($0) }, expected)
            XCTAssertEqual(CRC32C.checksum(bytes), expected)
        }
    }

    func testFastPathsMatchBytewiseAtEveryLengthAndOffset() {
        var generator = SystemRandomNumberGenerator()
        let buffer = (0 ..< 300 + 8).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        buffer.withUnsafeBytes { all in
            for offset in 0 ..< 8 {
                for length in 0 ... 300 {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset ..< offset + length])
                    let expected = CRC32C.bytewise(slice)
                    XCTAssertEqual(CRC32C.checksum(slice), expected, "offset \(offset) length \(length)")
                    XCTAssertEqual(CRC32C.slicingBy8(slice), expected, "offset \(offset) length \(length)")
                }
            }
        }
    }

    /// 10 MB plus an odd tail, at an odd offset: many rounds of the 3 × 8 KiB interleaved blocks, then
    /// the 3 × 256-byte ones, then single words and bytes. `update` over uneven pieces gives the same.
    func testLargeBufferAndPiecewiseUpdate() {
        var generator = SystemRandomNumberGenerator()
        let count = 10_000_000 + 3 * 8192 + 3 * 256 + 13
        let buffer = (0 ..< count + 1).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        buffer.withUnsafeBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[1...])
            let expected = CRC32C.bytewise(bytes)
            XCTAssertEqual(CRC32C.checksum(bytes), expected)
            XCTAssertEqual(CRC32C.slicingBy8(bytes), expected)
            var crc: UInt32 = 0
            var start = 0
            for piece in [0, 1, 7, 24_576 + 5, 769, 3_000_001] {
                crc = CRC32C.update(crc, UnsafeRawBufferPointer(rebasing: bytes[start ..< start + piece]))
                start += piece
            }
            XCTAssertEqual(CRC32C.update(crc, UnsafeRawBufferPointer(rebasing: bytes[start...])), expected)
        }
    }

    /// A single flipped bit anywhere changes the checksum (any odd number of bit errors is detected).
    func testFlippedBitChangesChecksum() {
        var bytes = [UInt8](repeating: 0x5A, count: 100_003)
        let clean = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        for position in [0, 7, 8191, 24_576, 50_000, 100_002] {
            bytes[position] ^= 0x10
            XCTAssertNotEqual(bytes.withUnsafeBytes { CRC32C.checksum($0) }, clean, "bit flip at \(position)")
            bytes[position] ^= 0x10
        }
    }

    /// Sequences without contiguous storage take the bytewise loop and agree with the fast path.
    func testNonContiguousSequence() {
        let bytes = (0 ..< 1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        XCTAssertEqual(CRC32C.checksum(bytes.lazy.map { $0 }), bytes.withUnsafeBytes { CRC32C.checksum($0) })
    }

    func testHardwarePathOnThisMachine() throws {
        #if arch(x86_64)
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        try XCTSkipUnless(cpuinfo.contains(" sse4_2"), "no SSE4.2")
        XCTAssertTrue(CRC32C.hardwareAccelerated)
        #else
        throw XCTSkip("the crc32 instruction path is x86_64 only")
        #endif
    }
}
