import Foundation

/// Rotary position embedding (Su et al. 2021) in Hugging Face Llama's rotate-half convention:
/// for a head vector x of size D and position p, with `θ_i = base^(−2i/D)` (i < D/2),
/// `x'[i] = x[i]·cos(pθ_i) − x[i+D/2]·sin(pθ_i)`, `x'[i+D/2] = x[i+D/2]·cos(pθ_i) + x[i]·sin(pθ_i)`.
/// The backward applies the transposed rotation (angle −pθ_i).
public struct RoPETable: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    /// `[maxPositions, headDim/2]` tables.
    public let cos: [Float]
    public let sin: [Float]

    /// The default table, `θ_i = base^(−2i/D)`.
    public init(headDim: Int, base: Float, maxPositions: Int) {
        precondition(headDim % 2 == 0, "rotary head_dim must be even")
        // Same float32 inverse frequencies as transformers' LlamaRotaryEmbedding.
        let inv: [Float] = (0..<(headDim / 2)).map { i in 1 / Float(pow(Double(base), Double(2 * i) / Double(headDim))) }
        self.init(inverseFrequencies: inv, maxPositions: maxPositions)
    }

    /// A table for given inverse frequencies θ_i (one per pair, head_dim/2 of them), e.g. Llama 3's
    /// rescaled ones; angles are `p·θ_i` in float32 as in transformers.
    public init(inverseFrequencies inv: [Float], maxPositions: Int) {
        precondition(!inv.isEmpty, "rotary embeddings need at least one frequency")
        self.headDim = 2 * inv.count
        self.maxPositions = maxPositions
        let half = inv.count
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for p in 0..<maxPositions {
            for i in 0..<half {
                let angle = Float(p) * inv[i]
                c[p * half + i] = Foundation.cos(angle)
                s[p * half + i] = Foundation.sin(angle)
            }
        }
        cos = c
        sin = s
    }

    /// Rotates, in place, `heads` head vectors per row for `rows` rows (row stride `rowStride`,
    /// head vectors contiguous from the row start); `positions[r]` is row r's position.
    /// `inverse` applies the transposed rotation (the backward).
    public func apply(
        _ x: UnsafeMutablePointer<Float>, rows: Int, rowStride: Int, heads: Int,
        positions: UnsafePointer<Int32>, inverse: Bool = false
    ) {
        let half = headDim / 2
        cos.withUnsafeBufferPointer { cp in
            sin.withUnsafeBufferPointer { sp in
                let cb = cp.baseAddress!, sb = sp.baseAddress!
                for r in 0..<rows {
                    let p = Int(positions[r])
                    precondition(p < maxPositions, "position \(p) beyond the rotary table (\(maxPositions))")
                    let cr = cb + p * half, sr = sb + p * half
                    for h in 0..<heads {
                        let v = x + r * rowStride + h * headDim
                        Self.rotate(v, cr, sr, half, inverse)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func rotate(_ v: UnsafeMutablePointer<Float>, _ c: UnsafePointer<Float>, _ s: UnsafePointer<Float>, _ half: Int, _ inverse: Bool) {
        let sign: Float = inverse ? -1 : 1
        var i = 0
        let vsign = SIMD8<Float>(repeating: sign)
        while i + 8 <= half {
            let a = VectorOps.load(v + i), b = VectorOps.load(v + half + i)
            let cv = VectorOps.load(c + i), sv = VectorOps.load(s + i) * vsign
            VectorOps.store(a * cv - b * sv, v + i)
            VectorOps.store(b * cv + a * sv, v + half + i)
            i += 8
        }
        while i < half {
            let a = v[i], b = v[half + i], cv = c[i], sv = s[i] * sign
            v[i] = a * cv - b * sv
            v[half + i] = b * cv + a * sv
            i += 1
        }
    }
}
