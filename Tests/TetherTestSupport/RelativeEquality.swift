import XCTest

/// `a` equals `b` to `tolerance` (1e-5) of each entry, with a floor of 1 % of the largest entry of
/// `b` for entries that are nearly zero (sums of terms that cancel).
public func assertRelativelyEqual(_ a: [Float], _ b: [Float], _ what: String, tolerance: Float = 1e-5,
                                  file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    let scale = b.map(abs).max() ?? 0
    var worst: Float = 0, at = 0
    for i in b.indices {
        let excess = abs(a[i] - b[i]) / max(abs(b[i]), 1e-2 * scale, 1e-30)
        if excess > worst { worst = excess; at = i }
    }
    XCTAssertLessThanOrEqual(worst, tolerance, "\(what): entry \(at) is \(a.isEmpty ? 0 : a[at]) vs \(b.isEmpty ? 0 : b[at])", file: file, line: line)
}

/// Two computations of one gradient that differ in how they group rows (blocks, shared prompts,
/// micro-batches) agree to `tolerance` (1e-5) relative in norm, `‖a − b‖₂ / ‖b‖₂`, and to
/// `entryTolerance` (5e-4) in each entry, as `assertRelativelyEqual` measures it. The norm is the
/// test of equality; the entry bound catches a localised error that the norm would dilute. An
/// entry alone can drift further than 1e-5: BLAS kernels round differently at other row counts
/// (OpenBLAS's Haswell kernels among them), and the backward amplifies those last-bit differences
/// where terms cancel.
public func assertGradientsEqual(_ a: [Float], _ b: [Float], _ what: String, tolerance: Double = 1e-5, entryTolerance: Float = 5e-4,
                                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    var difference = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        difference += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    XCTAssertGreaterThan(norm, 0, "\(what) is zero", file: file, line: line)
    XCTAssertLessThanOrEqual((difference / max(norm, 1e-300)).squareRoot(), tolerance, "\(what), relative in norm", file: file, line: line)
    assertRelativelyEqual(a, b, what, tolerance: entryTolerance, file: file, line: line)
}
