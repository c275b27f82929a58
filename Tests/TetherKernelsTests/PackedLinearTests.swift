import TetherKernels
import XCTest

/// The panel-packed linear layer of decoding steps equals `cblas_sgemm` (`BLAS.sgemm`) on the unpacked weight.
final class PackedLinearTests: XCTestCase {
    /// Every row count from 1 to 70 (full row blocks, 4 or 8 rows, and each remainder), output widths
    /// that are and are not a multiple of the panel (24 or 48 wide), odd input widths, overwrite and accumulate, one
    /// to three workers. The tolerance is relative to Σ_k |x_k·w_k|, the scale of the rounding of a
    /// dot product in any summation order (an entry near zero by cancellation has no relative
    /// accuracy to test).
    func testPackedLinearEqualsSgemm() {
        var r = Rand(11)
        for (outFeatures, inFeatures) in [(24, 8), (50, 13), (97, 40), (192, 33), (7, 3), (960, 57), (144, 1)] {
            let w = r.array(outFeatures * inFeatures)
            var packed = [Float](repeating: .nan, count: PackedLinear.packedCount(outFeatures: outFeatures, inFeatures: inFeatures))
            PackedLinear.pack(weight: w, outFeatures: outFeatures, inFeatures: inFeatures, into: &packed, workers: 2)
            XCTAssertFalse(packed.contains { $0.isNaN }, "every packed float is written, padding included")
            for rows in 1...70 where outFeatures < 500 || rows % 23 == 1 {
                let x = r.array(rows * inFeatures), y0 = r.array(rows * outFeatures)
                for accumulate in [false, true] {
                    var expected = y0
                    BLAS.sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, b: w, ldb: inFeatures,
                               beta: accumulate ? 1 : 0, c: &expected, ldc: outFeatures)
                    for workers in [1, 2, 3] {
                        var y = y0
                        PackedLinear.forward(x: x, packed: packed, y: &y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                             accumulate: accumulate, workers: workers)
                        var worst: Float = 0
                        for i in 0..<rows {
                            for j in 0..<outFeatures {
                                var scale: Float = accumulate ? abs(y0[i * outFeatures + j]) : 0
                                for k in 0..<inFeatures { scale += abs(x[i * inFeatures + k] * w[j * inFeatures + k]) }
                                worst = max(worst, abs(y[i * outFeatures + j] - expected[i * outFeatures + j]) / max(scale, .leastNormalMagnitude))
                            }
                        }
                        XCTAssertLessThanOrEqual(worst, 1e-5, "\(rows)×\(inFeatures) · [\(outFeatures), \(inFeatures)]ᵀ, accumulate \(accumulate), \(workers) workers")
                    }
                }
            }
        }
    }

    /// Rows and columns outside the product are left alone (no write past a partial tile).
    func testPackedLinearWritesOnlyItsOutput() {
        var r = Rand(12)
        let rows = 5, inFeatures = 9, outFeatures = 30
        let w = r.array(outFeatures * inFeatures), x = r.array(rows * inFeatures)
        var packed = [Float](repeating: 0, count: PackedLinear.packedCount(outFeatures: outFeatures, inFeatures: inFeatures))
        PackedLinear.pack(weight: w, outFeatures: outFeatures, inFeatures: inFeatures, into: &packed)
        var y = [Float](repeating: 7, count: rows * outFeatures + 64)
        PackedLinear.forward(x: x, packed: packed, y: &y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        XCTAssertEqual(Array(y[(rows * outFeatures)...]), [Float](repeating: 7, count: 64))
        XCTAssertNotEqual(y[rows * outFeatures - 1], 7)
    }
}
