import TetherKernels
import XCTest

final class BufferAndRandomTests: XCTestCase {
    func testFloatBufferIsZeroedAlignedAndSliced() {
        let b = FloatBuffer(count: 37)
        XCTAssertEqual(Int(bitPattern: b.pointer) % 64, 0)
        XCTAssertTrue(b.toArray().allSatisfy { $0 == 0 })
        b.slice(10, 3).update(repeating: 2)
        XCTAssertEqual(b[9], 0); XCTAssertEqual(b[10], 2); XCTAssertEqual(b[12], 2); XCTAssertEqual(b[13], 0)
        XCTAssertEqual(VectorOps.sumOfSquares(b.pointer, b.count), 12)
    }

    func testSeededRandomIsReproducibleAndRoughlyNormal() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42), c = SeededRandom(seed: 43)
        let xa = (0..<5).map { _ in a.next() }, xb = (0..<5).map { _ in b.next() }, xc = (0..<5).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        var n = SeededRandom(seed: 1)
        let xs = (0..<20_000).map { _ in n.nextNormal() }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }

    func testBLASThreadBudget() {
        BLASThreads.set(1)
        XCTAssertEqual(BLASThreads.current, 1)
        BLASThreads.set(2)
        XCTAssertEqual(BLASThreads.current, 2)
    }
}
