import Foundation

/// The gated MLP activation of Llama (Shazeer 2020, "GLU variants"): `h = silu(gate) ⊙ up` with
/// `silu(x) = x·σ(x)`. Input rows are `[gate | up]` side by side (one fused projection, row stride
/// `2·dim`), output rows `dim` wide.
public enum SwiGLU {
    public static func forward(gateUp: UnsafePointer<Float>, rows: Int, dim: Int, out: UnsafeMutablePointer<Float>) {
        let one = SIMD8<Float>(repeating: 1)
        for r in 0..<rows {
            let g = gateUp + r * 2 * dim, u = g + dim, o = out + r * dim
            var i = 0
            while i + 8 <= dim {
                let x = VectorOps.load(g + i)
                VectorOps.store(x / (one + VectorOps.exp(-x)) * VectorOps.load(u + i), o + i)
                i += 8
            }
            while i < dim { let x = g[i]; o[i] = x / (1 + expf(-x)) * u[i]; i += 1 }
        }
    }

    /// `dgate = dh ⊙ up ⊙ σ(g)(1 + g(1 − σ(g)))`, `dup = dh ⊙ silu(g)`, written (not added) into
    /// `dGateUp` with the same `[gate | up]` layout.
    public static func backward(
        gateUp: UnsafePointer<Float>, dOut: UnsafePointer<Float>, rows: Int, dim: Int,
        dGateUp: UnsafeMutablePointer<Float>
    ) {
        let one = SIMD8<Float>(repeating: 1)
        for r in 0..<rows {
            let g = gateUp + r * 2 * dim, u = g + dim, d = dOut + r * dim
            let dg = dGateUp + r * 2 * dim, du = dg + dim
            var i = 0
            while i + 8 <= dim {
                let x = VectorOps.load(g + i), dv = VectorOps.load(d + i)
                let sig = one / (one + VectorOps.exp(-x))
                VectorOps.store(dv * x * sig, du + i)
                VectorOps.store(dv * VectorOps.load(u + i) * sig * (one + x * (one - sig)), dg + i)
                i += 8
            }
            while i < dim {
                let x = g[i]
                let sig = 1 / (1 + expf(-x))
                du[i] = d[i] * x * sig
                dg[i] = d[i] * u[i] * sig * (1 + x * (1 - sig))
                i += 1
            }
        }
    }
}
