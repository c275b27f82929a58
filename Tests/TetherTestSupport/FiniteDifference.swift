import XCTest

/// Σ rᵢ·outᵢ in Double: a scalar loss whose gradient with respect to `out` is `r`, so a kernel's
/// backward fed `dOut = r` gives the analytic gradient that `checkGradient` compares.
public func weightedSum(_ out: [Float], _ r: [Float]) -> Double {
    var s = 0.0
    for i in 0 ..< out.count { s += Double(out[i]) * Double(r[i]) }
    return s
}

/// Checks `analytic` against central differences (f(x + ε) − f(x − ε)) / 2ε of `loss` with respect
/// to every entry of `x`, the error relative to the largest analytic entry.
public func checkGradient(
    _ name: String, x: inout [Float], analytic: [Float], eps: Float = 1e-2, tolerance: Double = 2e-2,
    file: StaticString = #filePath, line: UInt = #line, loss: ([Float]) -> Double
) {
    var worst = 0.0
    let scale = max(analytic.map { Double(abs($0)) }.max() ?? 0, 1e-3)
    for i in 0 ..< x.count {
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

/// A model-sized check: perturbing every parameter is too slow, so in each tensor the entry with the
/// largest analytic gradient and `spread` entries spread through it are checked by central
/// differences, within 3 % of the tensor's largest gradient plus `relativeTolerance` of the
/// difference quotient. Returns how many entries were checked.
public func checkParameterGradients(
    _ label: String, parameters: UnsafeMutablePointer<Float>, gradients: [Float],
    tensors: [(name: String, offset: Int, count: Int)], spread: Int, scaleFloor: Float = 1e-3,
    relativeTolerance: Double = 0.02, eps: Float = 1e-2,
    file: StaticString = #filePath, line: UInt = #line, loss: () throws -> Double
) rethrows -> Int {
    var checked = 0
    for e in tensors {
        let scale = max((0 ..< e.count).map { abs(gradients[e.offset + $0]) }.max()!, scaleFloor)
        var picks = [(0 ..< e.count).max { abs(gradients[e.offset + $0]) < abs(gradients[e.offset + $1]) }!]
        for k in stride(from: 1, through: spread, by: 1) { picks.append((k * 7919 + 13) % e.count) }
        for i in picks {
            let p = parameters + e.offset + i
            let saved = p.pointee
            p.pointee = saved + eps; let lp = try loss()
            p.pointee = saved - eps; let lm = try loss()
            p.pointee = saved
            let fd = (lp - lm) / Double(2 * eps)
            let an = Double(gradients[e.offset + i])
            XCTAssertLessThan(abs(fd - an), 0.03 * Double(scale) + relativeTolerance * abs(fd),
                              "\(label) \(e.name)[\(i)]: finite difference \(fd) vs backward \(an)", file: file, line: line)
            checked += 1
        }
    }
    return checked
}
