import Foundation

/// The gated MLP activation of Llama (Shazeer 2020, "GLU variants"): `h = silu(gate) ⊙ up` with
/// `silu(x) = x·σ(x)`. Input rows are `[gate | up]` side by side (one fused projection, row stride
/// `2·dim`), output rows `dim` wide.
public enum SwiGLU {
    public static func forward(gateUp: UnsafePointer<Float>, rows: Int, dim: Int, out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let g = gateUp + r * 2 * dim, u = g + dim, o = out + r * dim
            for i in 0..<dim {
                let x = g[i]
                o[i] = x / (1 + expf(-x)) * u[i]
            }
        }
    }

    /// `dgate = dh ⊙ up ⊙ σ(g)(1 + g(1 − σ(g)))`, `dup = dh ⊙ silu(g)`, written (not added) into
    /// `dGateUp` with the same `[gate | up]` layout.
    public static func backward(
        gateUp: UnsafePointer<Float>, dOut: UnsafePointer<Float>, rows: Int, dim: Int,
        dGateUp: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let g = gateUp + r * 2 * dim, u = g + dim, d = dOut + r * dim
            let dg = dGateUp + r * 2 * dim, du = dg + dim
            for i in 0..<dim {
                let x = g[i]
                let sig = 1 / (1 + expf(-x))
                du[i] = d[i] * x * sig
                dg[i] = d[i] * u[i] * sig * (1 + x * (1 - sig))
            }
        }
    }
}
