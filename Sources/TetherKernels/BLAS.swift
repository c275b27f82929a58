import CBLAS

/// Row-major single-precision GEMM through OpenBLAS: `C = alpha · op(A) · op(B) + beta · C`.
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
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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
}
