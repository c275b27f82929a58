/// The handful of SIMD8 loops every kernel is made of: dot products, axpy, scaling, reductions.
/// Each works on raw pointers with an 8-wide body and a scalar tail.
public enum VectorOps {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always)
    static func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    /// Σ a[i]·b[i].
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            acc0 = acc0.addingProduct(load(a + i), load(b + i))
            acc1 = acc1.addingProduct(load(a + i + 8), load(b + i + 8))
            i += 16
        }
        if i + 8 <= n { acc0 = acc0.addingProduct(load(a + i), load(b + i)); i += 8 }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y[i] += alpha·x[i].
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store(load(y + i).addingProduct(va, load(x + i)), y + i); i += 8 }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// y[i] += x[i].
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n { store(load(y + i) + load(x + i), y + i); i += 8 }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// x[i] *= alpha.
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ alpha: Float, _ n: Int) {
        let va = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store(load(x + i) * va, x + i); i += 8 }
        while i < n { x[i] *= alpha; i += 1 }
    }

    /// Σ x[i]², accumulated in Double across 8-wide partial sums (for gradient norms of millions of floats).
    public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 4096)
            var acc = SIMD8<Float>()
            while i + 8 <= end { let v = load(x + i); acc = acc.addingProduct(v, v); i += 8 }
            var s = Double(acc.sum())
            while i < end { s += Double(x[i] * x[i]); i += 1 }
            total += s
        }
        return total
    }

    /// max x[i] (n ≥ 1).
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if n >= 8 {
            var vm = SIMD8<Float>(repeating: -.infinity)
            while i + 8 <= n { let v = load(x + i); vm = vm.replacing(with: v, where: v .> vm); i += 8 }
            m = vm.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }
}
