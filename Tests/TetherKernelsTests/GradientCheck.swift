import TetherKernels
import XCTest

/// Finite-difference helpers: the loss is `Σ r_i·out_i` for fixed random `r`, so the analytic
/// gradient is the kernel's backward fed `dOut = r`. Central differences, sums in Double.
struct Rand {
    var rng: SeededRandom
    init(_ seed: UInt64) { rng = SeededRandom(seed: seed) }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in Float(rng.nextNormal()) * scale } }
}

func weightedSum(_ out: [Float], _ r: [Float]) -> Double {
    var s = 0.0
    for i in 0..<out.count { s += Double(out[i]) * Double(r[i]) }
    return s
}

/// Checks `analytic` against central differences of `loss` w.r.t. every entry of `x` (or `sample` of them).
func checkGradient(
    _ name: String, x: inout [Float], analytic: [Float], eps: Float = 1e-2, tolerance: Double = 2e-2,
    file: StaticString = #filePath, line: UInt = #line, loss: ([Float]) -> Double
) {
    var worst = 0.0
    let scale = max(analytic.map { Double(abs($0)) }.max() ?? 0, 1e-3)
    for i in 0..<x.count {
        let saved = x[i]
        x[i] = saved + eps; let lp = loss(x)
        x[i] = saved - eps; let lm = loss(x)
        x[i] = saved
        let fd = (lp - lm) / Double(2 * eps)
        let err = abs(fd - Double(analytic[i])) / scale
        worst = max(worst, err)
        if err > tolerance {
            XCTFail("\(name)[\(i)]: finite difference \(fd) vs backward \(analytic[i]) (error \(err) of scale \(scale))", file: file, line: line)
            return
        }
    }
    XCTAssertLessThan(worst, tolerance, name, file: file, line: line)
}
