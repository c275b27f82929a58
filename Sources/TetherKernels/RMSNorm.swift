import Foundation

/// RMSNorm (Zhang & Sennrich 2019), as in Llama: `y = x / sqrt(mean(x²) + ε) ⊙ w`.
public enum RMSNorm {
    /// Normalises `rows` rows of `dim`; stores each row's `rstd = 1/sqrt(mean(x²)+ε)` for the backward.
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int, eps: Float,
        out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, yr = out + r * dim
            let ms = VectorOps.dot(xr, xr, dim) / Float(dim)
            let s = 1 / (ms + eps).squareRoot()
            rstd?[r] = s
            let vs = SIMD8<Float>(repeating: s)
            var i = 0
            while i + 8 <= dim {
                VectorOps.store(VectorOps.load(xr + i) * vs * VectorOps.load(weight + i), yr + i); i += 8
            }
            while i < dim { yr[i] = xr[i] * s * weight[i]; i += 1 }
        }
    }

    /// With `g = dy ⊙ w` and `s = rstd`: `dx = s·g − x·s³·(g·x)/dim`, `dw += Σ_rows dy ⊙ x·s`.
    /// `dx` is added to (the input of a norm is always a residual stream).
    public static func backward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        dOut: UnsafePointer<Float>, rows: Int, dim: Int,
        dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, dyr = dOut + r * dim, dxr = dx + r * dim
            let s = rstd[r]
            var gx = SIMD8<Float>()
            var i = 0
            while i + 8 <= dim {
                let xv = VectorOps.load(xr + i), dy = VectorOps.load(dyr + i)
                gx = gx.addingProduct(dy * VectorOps.load(weight + i), xv)
                VectorOps.store(VectorOps.load(dWeight + i).addingProduct(dy, xv * s), dWeight + i)
                i += 8
            }
            var gxs = gx.sum()
            while i < dim {
                gxs += dyr[i] * weight[i] * xr[i]
                dWeight[i] += dyr[i] * xr[i] * s
                i += 1
            }
            let c = s * s * s * gxs / Float(dim)
            let vs = SIMD8<Float>(repeating: s), vc = SIMD8<Float>(repeating: c)
            i = 0
            while i + 8 <= dim {
                let g = VectorOps.load(dyr + i) * VectorOps.load(weight + i)
                let d = g * vs - VectorOps.load(xr + i) * vc
                VectorOps.store(VectorOps.load(dxr + i) + d, dxr + i)
                i += 8
            }
            while i < dim { dxr[i] += dyr[i] * weight[i] * s - xr[i] * c; i += 1 }
        }
    }
}
