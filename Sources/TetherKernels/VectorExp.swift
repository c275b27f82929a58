import Foundation

extension VectorOps {
    /// e^x for eight lanes (Cephes `expf`: range reduction x = n·ln2 + r, degree-6 polynomial for e^r,
    /// exponent bits for 2^n); relative error ≈ 2e-7 over the clamped range [−87.3, 88.7].
    /// Scalar `expf` is a libm call per element, which made SwiGLU and the softmaxes a visible
    /// share of the learner's profile.
    @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -87.33654), hi = SIMD8<Float>(repeating: 88.72283)
        // Masked selects, not the generic pointwiseMin/Max, which did not inline.
        var xc = x.replacing(with: lo, where: x .< lo)
        xc = xc.replacing(with: hi, where: xc .> hi)
        // Round-to-nearest by the 1.5·2²³ trick: the integer lands in the low mantissa bits
        // (the generic SIMD rounding and Float→Int32 conversions are scalar loops).
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = xc * 1.442_695_04 + magic
        let n = t - magic
        let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
        var r = xc - n * 0.693_359_375
        r = r + n * 2.121_944_4e-4
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4) * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * (r * r) + r + 1
        // 2^n as 2^a · 2^(n−a), a = ⌊n/2⌋, so n = 128 (x near 88.7) and n = −126 stay normal.
        let a = ni &>> 1, b = ni &- a
        let sa = unsafeBitCast((a &+ 127) &<< 23, to: SIMD8<Float>.self)
        let sb = unsafeBitCast((b &+ 127) &<< 23, to: SIMD8<Float>.self)
        return y * sa * sb
    }

    /// x[j] ← e^(x[j] − shift) for j < n; returns Σ_j of the new values (a softmax numerator).
    @inline(__always)
    public static func expShifted(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
        let vs = SIMD8<Float>(repeating: shift)
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let e = exp(load(x + i) - vs)
            store(e, x + i)
            acc += e
            i += 8
        }
        var s = acc.sum()
        while i < n { let e = expf(x[i] - shift); x[i] = e; s += e; i += 1 }
        return s
    }

    /// out[j] ← e^((x[j] − shift)·scale) for j < n; returns Σ_j out[j]: the numerator of a
    /// temperature-scaled softmax (scale = 1/T, shift = max x) and its normaliser in one pass,
    /// leaving the logits untouched.
    @inline(__always)
    public static func expShifted(_ x: UnsafePointer<Float>, _ n: Int, shift: Float, scale: Float, out: UnsafeMutablePointer<Float>) -> Float {
        let vs = SIMD8<Float>(repeating: shift), vk = SIMD8<Float>(repeating: scale)
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let e = exp((load(x + i) - vs) * vk)
            store(e, out + i)
            acc += e
            i += 8
        }
        var s = acc.sum()
        while i < n { let e = expf((x[i] - shift) * scale); out[i] = e; s += e; i += 1 }
        return s
    }

    /// Σ_j e^(x[j] − shift) without writing (a log-sum-exp).
    @inline(__always)
    public static func sumExpShifted(_ x: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
        let vs = SIMD8<Float>(repeating: shift)
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n { acc += exp(load(x + i) - vs); i += 8 }
        var s = acc.sum()
        while i < n { s += expf(x[i] - shift); i += 1 }
        return s
    }
}

extension VectorOps {
    /// (Σ_j e_j, Σ_j e_j·(x[j] − shift)) with e_j = e^(x[j] − shift), in one pass: a softmax's
    /// normaliser and its unnormalised mean of the shifted logits (an entropy).
    @inline(__always)
    public static func sumExpShiftedWeighted(_ x: UnsafePointer<Float>, _ n: Int, shift: Float) -> (Float, Float) {
        let vs = SIMD8<Float>(repeating: shift)
        var acc = SIMD8<Float>(), accW = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let y = load(x + i) - vs, e = exp(y)
            acc += e
            accW += e * y
            i += 8
        }
        var s = acc.sum(), w = accW.sum()
        while i < n { let y = x[i] - shift, e = expf(y); s += e; w += e * y; i += 1 }
        return (s, w)
    }
}

extension VectorOps {
    /// The first j with Σ_{i ≤ j} w[i] > target, for non-negative weights: inverse-CDF sampling
    /// on an unnormalised distribution (target = u·Σw, u uniform in [0, 1)). Blocks of 64 and then
    /// 8 weights whose sum stays at or below what is left are skipped whole, so a draw costs one
    /// 8-wide read of the weights before the chosen one instead of a scalar add per token. If
    /// rounding leaves the running sum at or below target at the end, the last positive weight's
    /// index is returned (never a zero-probability token).
    public static func inverseCDF(_ w: UnsafePointer<Float>, _ n: Int, target: Float) -> Int {
        var cum: Float = 0
        var i = 0
        while i + 64 <= n {
            let a = (load(w + i) + load(w + i + 8)) + (load(w + i + 16) + load(w + i + 24))
            let b = (load(w + i + 32) + load(w + i + 40)) + (load(w + i + 48) + load(w + i + 56))
            let s = (a + b).sum()
            if cum + s > target { break }
            cum += s
            i += 64
        }
        while i + 8 <= n {
            let s = load(w + i).sum()
            if cum + s > target { break }
            cum += s
            i += 8
        }
        while i < n {
            cum += w[i]
            if cum > target { return i }
            i += 1
        }
        var j = n - 1
        while j > 0 && !(w[j] > 0) { j -= 1 }
        return j
    }
}
