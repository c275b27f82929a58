import Foundation

/// Row-wise softmax and log-softmax (max-shifted for stability), each beside its backward.
public enum Softmax {
    /// log Σ_j exp(x_j) of one row.
    @inline(__always)
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = VectorOps.max(x, n)
        return m + logf(VectorOps.sumExpShifted(x, n, shift: m))
    }

    public static func forward(_ x: UnsafePointer<Float>, rows: Int, cols: Int, out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * cols, o = out + r * cols
            let m = VectorOps.max(xr, cols)
            o.update(from: xr, count: cols)
            let s = VectorOps.expShifted(o, cols, shift: m)
            VectorOps.scale(o, 1 / s, cols)
        }
    }

    /// `dx = y ⊙ (dy − Σ y⊙dy)` for `y = softmax(x)`.
    public static func backward(y: UnsafePointer<Float>, dOut: UnsafePointer<Float>, rows: Int, cols: Int, dx: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let yr = y + r * cols, d = dOut + r * cols, o = dx + r * cols
            let c = VectorOps.dot(yr, d, cols)
            for j in 0..<cols { o[j] = yr[j] * (d[j] - c) }
        }
    }
}

public enum LogSoftmax {
    public static func forward(_ x: UnsafePointer<Float>, rows: Int, cols: Int, out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * cols, o = out + r * cols
            let lse = Softmax.logSumExp(xr, cols)
            for j in 0..<cols { o[j] = xr[j] - lse }
        }
    }

    /// `dx = dy − softmax(x)·Σ dy` for `y = log_softmax(x)`.
    public static func backward(y: UnsafePointer<Float>, dOut: UnsafePointer<Float>, rows: Int, cols: Int, dx: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let yr = y + r * cols, d = dOut + r * cols, o = dx + r * cols
            var s: Float = 0
            for j in 0..<cols { s += d[j] }
            for j in 0..<cols { o[j] = d[j] - expf(yr[j]) * s }
        }
    }
}
