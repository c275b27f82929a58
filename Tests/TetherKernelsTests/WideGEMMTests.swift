import TetherKernels
import XCTest

/// The AVX-512 GEMM (`BLAS.wideSgemm`, and `BLAS.sgemm` where it dispatches there) equals OpenBLAS's
/// `cblas_sgemm`. The tolerance is relative to |alpha|·Σ_k |a_ik·b_kj| + |beta·c_ij|, the scale of
/// the rounding in any summation order (an entry near zero by cancellation has no relative accuracy
/// to test); the scale is itself a GEMM, of the absolute values.
final class WideGEMMTests: XCTestCase {
    /// All four transpose combinations; sides of 1, odd sizes, sizes straddling the 8 × 48 tile, the
    /// kc = 384 depth, the 480-column B block and the 1024-row A block; alpha/beta including beta 0
    /// over a NaN-filled C; leading dimensions wider than the matrices; one and two threads.
    func testWideGEMMEqualsOpenBLAS() throws {
        var r = Rand(21)
        let shapes: [(Int, Int, Int)] = [
            (1, 1, 1), (7, 33, 97), (33, 7, 1), (97, 577, 33), (577, 97, 7), (8, 48, 384), (9, 49, 385),
            (200, 1000, 800), (1030, 100, 50), (64, 577, 1),
        ]
        for (m, n, k) in shapes {
            for transA in [false, true] {
                for transB in [false, true] {
                    for (alpha, beta): (Float, Float) in [(1, 0), (1, 1), (0.5, -2), (-2, 0)] {
                        for threads in [1, 2] {
                            try check(&r, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta, threads: threads, wide: true)
                        }
                    }
                }
            }
        }
    }

    /// `BLAS.sgemm` as the model calls it (on `WideGEMM` in AVX-512 builds, for every size) at the
    /// shapes of per-head attention and of tiny test models, with the learner's three transpose
    /// combinations.
    func testSgemmEqualsOpenBLASAtSmallShapes() throws {
        var r = Rand(22)
        for (m, n, k) in [(1, 16, 16), (7, 301, 32), (16, 16, 16), (24, 24, 64), (67, 67, 64), (67, 64, 67), (130, 576, 64)] {
            for (transA, transB) in [(false, true), (true, false), (false, false)] {
                try check(&r, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, beta: 1, threads: 2, wide: false)
                try check(&r, transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, beta: 0, threads: 2, wide: false)
            }
        }
    }

    /// Each entry is the same sequential sum over k whatever the batch it is computed in: rows of a
    /// 97-row product equal, bit for bit, the same rows computed alone or in a block of 7, and one
    /// thread equals two. (This is what keeps micro-batched and blocked passes equal to unsplit ones.)
    func testRowsDoNotDependOnTheBatch() throws {
        var r = Rand(23)
        for (transA, transB) in [(false, true), (true, false), (false, false)] {
            let m = 97, n = 577, k = 800
            let (aRows, aCols) = transA ? (k, m) : (m, k), (bRows, bCols) = transB ? (n, k) : (k, n)
            let a = r.array(aRows * aCols), b = r.array(bRows * bCols)
            var whole = [Float](repeating: 0, count: m * n), single = whole
            guard BLAS.wideSgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: aCols, b: b, ldb: bCols,
                                 c: &whole, ldc: n, threads: 2)
            else { throw XCTSkip("no AVX-512 GEMM in this build") }
            BLAS.wideSgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: aCols, b: b, ldb: bCols, c: &single, ldc: n, threads: 1)
            XCTAssertEqual(whole, single, "one thread against two, transA \(transA) transB \(transB)")
            for (start, count) in [(0, 1), (40, 7), (90, 7)] {
                var part = [Float](repeating: 0, count: count * n)
                a.withUnsafeBufferPointer { a in
                    let rowsOfA = transA ? a.baseAddress! + start : a.baseAddress! + start * aCols
                    BLAS.wideSgemm(transA: transA, transB: transB, m: count, n: n, k: k, a: rowsOfA, lda: aCols, b: b, ldb: bCols,
                                   c: &part, ldc: n, threads: 1)
                }
                XCTAssertEqual(part, Array(whole[(start * n)..<((start + count) * n)]),
                               "rows \(start)..<\(start + count) alone, transA \(transA) transB \(transB)")
            }
        }
    }

    /// An empty product (k = 0) scales C by beta, and beta 0 clears it, NaN included.
    func testEmptyProductScalesC() throws {
        let a: [Float] = [1], b: [Float] = [1]
        var c = [Float](repeating: .nan, count: 6)
        guard BLAS.wideSgemm(m: 2, n: 3, k: 0, a: a, lda: 1, b: b, ldb: 3, beta: 0, c: &c, ldc: 3, threads: 1) else {
            throw XCTSkip("no AVX-512 GEMM in this build")
        }
        XCTAssertEqual(c, [0, 0, 0, 0, 0, 0])
        c = [1, 2, 3, 4, 5, 6]
        BLAS.wideSgemm(m: 2, n: 3, k: 0, a: a, lda: 1, b: b, ldb: 3, beta: 2, c: &c, ldc: 3, threads: 1)
        XCTAssertEqual(c, [2, 4, 6, 8, 10, 12])
    }

    /// One product against OpenBLAS, with lda, ldb and ldc three wider than needed; the padding
    /// columns of C must come back untouched.
    func check(
        _ r: inout Rand, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float, threads: Int, wide: Bool,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let (aRows, aCols) = transA ? (k, m) : (m, k), (bRows, bCols) = transB ? (n, k) : (k, n)
        let lda = aCols + 3, ldb = bCols + 3, ldc = n + 3
        let a = r.array(aRows * lda), b = r.array(bRows * ldb)
        var c0 = r.array(m * ldc)
        if beta == 0 { for i in 0..<m { for j in 0..<n { c0[i * ldc + j] = .nan } } }
        var expected = c0, got = c0
        BLAS.openBLASSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                           beta: beta, c: &expected, ldc: ldc)
        if wide {
            guard BLAS.wideSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                                 beta: beta, c: &got, ldc: ldc, threads: threads)
            else { throw XCTSkip("no AVX-512 GEMM in this build") }
        } else {
            BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: &got, ldc: ldc)
        }
        var scale = beta == 0 ? [Float](repeating: 0, count: m * ldc) : c0.map { abs(beta * $0) }
        BLAS.openBLASSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: abs(alpha), a: a.map(abs), lda: lda,
                           b: b.map(abs), ldb: ldb, beta: 1, c: &scale, ldc: ldc)
        var worst: Float = 0, padding = true
        for i in 0..<m {
            for j in 0..<n {
                let e = expected[i * ldc + j], g = got[i * ldc + j]
                worst = max(worst, g.isNaN ? .infinity : abs(g - e) / max(scale[i * ldc + j], .leastNormalMagnitude))
            }
            for j in n..<ldc where got[i * ldc + j].bitPattern != c0[i * ldc + j].bitPattern { padding = false }
        }
        let what = "\(m)×\(n)×\(k) transA \(transA) transB \(transB) alpha \(alpha) beta \(beta), \(threads) threads"
        XCTAssertLessThanOrEqual(worst, 1e-5, what, file: file, line: line)
        XCTAssertTrue(padding, "columns past n untouched: " + what, file: file, line: line)
    }
}
