import Foundation
import TetherKernels
import XCTest

/// The kernels a decoding step adds to the training ones: the column-split linear layer, the
/// scaled exponential and the inverse CDF of the sampler.
final class DecodeKernelTests: XCTestCase {
    /// Column blocks on single-threaded BLAS give the plain GEMM's result (overwrite and
    /// accumulate), whatever the split, and the lent budget comes back.
    func testColumnSplitLinearEqualsPlainLinear() {
        var r = Rand(3)
        let rows = 7, inFeatures = 40
        let saved = BLASThreads.current
        for outFeatures in [50, 200, 1001] {
            let x = r.array(rows * inFeatures), w = r.array(outFeatures * inFeatures), y0 = r.array(rows * outFeatures)
            for beta: Float in [0, 1] {
                var plain = y0
                BLAS.linearForward(x: x, weight: w, y: &plain, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, beta: beta)
                for workers in [1, 2, 3] {
                    var split = y0
                    BLASThreads.lend { _ in
                        XCTAssertEqual(BLASThreads.current, 1)
                        BLAS.linearForward(x: x, weight: w, y: &split, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                           beta: beta, workers: workers)
                    }
                    for i in 0..<plain.count { XCTAssertEqual(split[i], plain[i], accuracy: 1e-4, "out \(outFeatures) workers \(workers) beta \(beta)") }
                }
            }
        }
        XCTAssertEqual(BLASThreads.current, saved, "the budget is restored")
    }

    func testScaledExpShiftedMatchesLibm() {
        var r = Rand(5)
        for n in [1, 8, 13, 100] {
            let x = r.array(n, scale: 4)
            var out = [Float](repeating: 0, count: n)
            let m = x.max()!
            let total = VectorOps.expShifted(x, n, shift: m, scale: 1 / 0.7, out: &out)
            var expected = 0.0
            for j in 0..<n {
                let e = exp((Double(x[j]) - Double(m)) / 0.7)
                expected += e
                XCTAssertEqual(Double(out[j]), e, accuracy: 1e-6 * max(1, e))
            }
            XCTAssertEqual(Double(total), expected, accuracy: 1e-5 * expected)
        }
    }

    /// The block-skipping scan returns the token of a sequential scan (Double cumulative sums) for
    /// targets away from a boundary, skips zero weights, and falls back to the last positive weight
    /// when the target is at or beyond the total.
    func testInverseCDFMatchesSequentialScan() {
        var rng = SeededRandom(seed: 9)
        for n in [1, 7, 8, 63, 64, 65, 1000, 4099] {
            var w = (0..<n).map { _ in rng.nextUnitFloat() < 0.3 ? 0 : rng.nextUnitFloat() }
            w[n - 1] = 0
            if n > 1 { w[0] = 0.5 }
            let total = w.reduce(0.0) { $0 + Double($1) }
            guard total > 0 else { continue }
            for _ in 0..<200 {
                let target = Double(rng.nextUnitFloat()) * total
                var cum = 0.0, expected = -1
                for j in 0..<n { cum += Double(w[j]); if cum > target { expected = j; break } }
                if expected < 0 { continue }
                // Skip targets within rounding of a boundary.
                let before = w[..<expected].reduce(0.0) { $0 + Double($1) }
                if abs(target - before) < 1e-4 * total || abs(target - cum) < 1e-4 * total { continue }
                let got = VectorOps.inverseCDF(w, n, target: Float(target))
                XCTAssertEqual(got, expected, "n \(n) target \(target)")
                XCTAssertGreaterThan(w[got], 0)
            }
            let last = w.lastIndex { $0 > 0 }!
            XCTAssertEqual(VectorOps.inverseCDF(w, n, target: Float(total) * 1.001), last, "n \(n): beyond the total")
        }
    }
}
