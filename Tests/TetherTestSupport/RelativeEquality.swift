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
