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

    /// A reserved buffer, mapped (1 M floats and more) or not, reads zero everywhere before its
    /// first write, also once prefaulted, is aligned, and holds what is written, however many are
    /// made and freed.
    func testReservedFloatBufferIsZeroedAlignedAndWritable() {
        for count in [0, 37, 300_000, 1 << 20, 3_000_017] {
            for round in 0..<3 {
                let b = FloatBuffer(reserving: count)
                XCTAssertEqual(b.count, count)
                XCTAssertEqual(Int(bitPattern: b.pointer) % 64, 0, "count \(count)")
                XCTAssertTrue(b.toArray().allSatisfy { $0 == 0 }, "count \(count), round \(round): not zero before the first write")
                if round == 1 { b.prefault() }
                XCTAssertTrue(b.toArray().allSatisfy { $0 == 0 }, "count \(count), round \(round): prefault wrote something")
                guard count > 1 else { continue }
                let half = count / 2, value = Float(round + 1)
                b.slice(half, count - half).update(repeating: value)
                XCTAssertEqual(b[half - 1], 0)
                XCTAssertEqual(b[half], value)
                XCTAssertEqual(b[count - 1], value)
                XCTAssertEqual(b.toArray().filter { $0 == value }.count, count - half)
            }
        }
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

final class VectorExpTests: XCTestCase {
    func testVectorExpMatchesLibm() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let input = SIMD8<Float>(repeating: x) + SIMD8<Float>(0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
            let v = VectorOps.exp(input)
            for k in 0..<8 {
                let exact = Foundation.exp(Double(input[k]))
                worst = max(worst, Float(abs(Double(v[k]) - exact) / exact))
            }
            x += 0.77
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(VectorOps.exp(SIMD8<Float>(repeating: -200))[0], 0, accuracy: 1e-37)
        var row: [Float] = (0..<13).map { Float($0) * 0.3 }
        let s = VectorOps.expShifted(&row, 13, shift: 1)
        XCTAssertEqual(s, (0..<13).map { expf(Float($0) * 0.3 - 1) }.reduce(0, +), accuracy: 1e-4)
        XCTAssertEqual(row[12], expf(3.6 - 1), accuracy: 1e-5)
    }
}
