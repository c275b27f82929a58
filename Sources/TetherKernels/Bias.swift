/// The bias of a linear layer, `y = x·Wᵀ + b`, kept apart from the GEMM (BLAS has no bias term):
/// the forward adds `b` to every row, the backward sums `dy` over rows (`db = Σ_r dy[r]`).
public enum Bias {
    /// `y[r, 0..<dim] += bias` for `rows` rows of stride `dim`.
    public static func forward(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, dim: Int) {
        for r in 0..<rows { VectorOps.axpy(1, bias, y + r * dim, dim) }
    }

    /// `dBias += Σ_r dy[r, 0..<dim]`.
    public static func backward(dy: UnsafePointer<Float>, rows: Int, dim: Int, dBias: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { VectorOps.axpy(1, dy + r * dim, dBias, dim) }
    }
}
