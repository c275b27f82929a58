import CBLAS
import Dispatch

/// Row-major single-precision GEMM through OpenBLAS: `C = alpha · op(A) · op(B) + beta · C`.
/// On AVX-512 builds (`TETHER_AVX512`) every product runs on `WideGEMM` instead, which uses the
/// 512-bit units OpenBLAS's pinned AVX2 kernels leave idle. All of them, small ones included: it is
/// as fast or faster from the per-head attention GEMMs up (a few hundred nanoseconds slower only
/// below ~24³), and one summation order for every shape keeps blocked and unsplit passes equal.
///
/// Every projection of the decoder is one call over all B·T rows at once (llm.c's matmul), which is
/// where almost all of the FLOPs go.
public enum BLAS {
    /// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, row-major, leading dimensions explicit.
    @inline(__always)
    public static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        #if TETHER_AVX512
        WideGEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c, ldc: ldc, threads: BLASThreads.current)
        #else
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        #endif
    }

    /// `sgemm` through OpenBLAS whatever the size and build: the reference the kernel tests compare with.
    public static func openBLASSgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `sgemm` through the AVX-512 `WideGEMM` on `threads` threads whatever the size, for its tests;
    /// false, with nothing computed, on builds without it.
    @discardableResult
    public static func wideSgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
    ) -> Bool {
        #if TETHER_AVX512
        WideGEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c, ldc: ldc, threads: threads)
        return true
        #else
        return false
        #endif
    }

    /// `y[rows×out] = x[rows×in] · Wᵀ` (plus `beta·y`) for a linear weight stored `[out, in]` as in
    /// Hugging Face checkpoints.
    public static func linearForward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, beta: Float = 0
    ) {
        sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
              b: weight, ldb: inFeatures, beta: beta, c: y, ldc: outFeatures)
    }

    /// `linearForward` with the output features split into `workers` contiguous column blocks,
    /// one single-threaded sgemm each, side by side. For the few rows of a decoding step this
    /// replaces OpenBLAS's own threading, whose idle worker spins (sched_yield) through every
    /// non-GEMM stretch of the step. Call it inside `BLASThreads.lend`, so that each call runs on
    /// one thread.
    public static func linearForward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, beta: Float = 0, workers: Int
    ) {
        // Blocks of at least 64 columns, 16-aligned so each block's packing starts on a kernel tile.
        let w = Swift.max(1, Swift.min(workers, outFeatures / 64))
        if w == 1 {
            linearForward(x: x, weight: weight, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, beta: beta)
            return
        }
        // Each worker reads the shared input and weights and writes its own columns of y.
        nonisolated(unsafe) let (x, weight, y) = (x, weight, y)
        DispatchQueue.concurrentPerform(iterations: w) { t in
            let lo = outFeatures * t / w / 16 * 16, hi = t == w - 1 ? outFeatures : outFeatures * (t + 1) / w / 16 * 16
            sgemm(transB: true, m: rows, n: hi - lo, k: inFeatures, a: x, lda: inFeatures,
                  b: weight + lo * inFeatures, ldb: inFeatures, beta: beta, c: y + lo, ldc: outFeatures)
        }
    }

    /// Backward of `linearForward`: `dW += dyᵀ · x` and `dx (+)= dy · W` (`accumulateInput` picks
    /// whether `dx` is overwritten or added to, for residual branches).
    public static func linearBackward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, dy: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, accumulateInput: Bool = false
    ) {
        sgemm(transA: true, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures,
              b: x, ldb: inFeatures, beta: 1, c: dWeight, ldc: inFeatures)
        if let dx {
            sgemm(m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures,
                  b: weight, ldb: inFeatures, beta: accumulateInput ? 1 : 0, c: dx, ldc: inFeatures)
        }
    }
}

/// The per-process BLAS thread budget (DESIGN.md: the sum over a machine's processes ≤ its cores).
public enum BLASThreads {
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var current: Int { Int(openblas_get_num_threads()) }

    /// Runs `body` with the budget lent out: BLAS set to one thread (restored after) and `body`
    /// given the budget, to run that many single-threaded BLAS calls or kernels side by side.
    public static func lend<R>(_ body: (Int) throws -> R) rethrows -> R {
        let budget = current
        if budget <= 1 { return try body(1) }
        set(1)
        defer { set(budget) }
        return try body(budget)
    }
}
