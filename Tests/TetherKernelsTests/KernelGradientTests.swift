import Foundation
import TetherKernels
import TetherTestSupport
import XCTest

final class KernelGradientTests: XCTestCase {
    func testRMSNormBackward() {
        var r = Rand(1)
        let rows = 3, dim = 19
        var x = r.array(rows * dim), w = r.array(dim), dy = r.array(rows * dim)
        func run(_ x: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: rows * dim), rstd = [Float](repeating: 0, count: rows)
            RMSNorm.forward(x: x, weight: w, rows: rows, dim: dim, eps: 1e-5, out: &out, rstd: &rstd)
            return out
        }
        var rstd = [Float](repeating: 0, count: rows), out = [Float](repeating: 0, count: rows * dim)
        RMSNorm.forward(x: x, weight: w, rows: rows, dim: dim, eps: 1e-5, out: &out, rstd: &rstd)
        var dx = [Float](repeating: 0.5, count: rows * dim), dw = [Float](repeating: 0, count: dim)
        RMSNorm.backward(x: x, weight: w, rstd: rstd, dOut: dy, rows: rows, dim: dim, dx: &dx, dWeight: &dw)
        let wc = w
        checkGradient("RMSNorm dx", x: &x, analytic: dx.map { $0 - 0.5 }) { weightedSum(run($0, wc), dy) }
        let xc = x
        checkGradient("RMSNorm dw", x: &w, analytic: dw) { weightedSum(run(xc, $0), dy) }
        // Forward value: unit weights give a unit root-mean-square row.
        let ones = [Float](repeating: 1, count: dim)
        let y = run(x, ones)
        let ms = (0..<dim).map { Double(y[$0] * y[$0]) }.reduce(0, +) / Double(dim)
        XCTAssertEqual(ms, 1, accuracy: 1e-4)
    }

    /// A linear layer's bias: added to every row, its gradient the row sum of dy (checked by
    /// finite differences, with dBias accumulating onto what it held).
    func testBiasBackward() {
        var r = Rand(12)
        let rows = 5, dim = 11
        let y0 = r.array(rows * dim), dy = r.array(rows * dim)
        var b = r.array(dim)
        func run(_ b: [Float]) -> [Float] {
            var y = y0
            Bias.forward(&y, bias: b, rows: rows, dim: dim)
            return y
        }
        XCTAssertEqual(run(b)[3 * dim + 4], y0[3 * dim + 4] + b[4])
        var db = [Float](repeating: 0.25, count: dim)
        Bias.backward(dy: dy, rows: rows, dim: dim, dBias: &db)
        checkGradient("bias db", x: &b, analytic: db.map { $0 - 0.25 }) { weightedSum(run($0), dy) }
    }

    /// A table built from explicit inverse frequencies is the default one when given the default
    /// frequencies, and rotates by exactly p·θ_i otherwise.
    func testRoPEFromInverseFrequencies() {
        let D = 8, base: Float = 10_000
        let inv = (0..<(D / 2)).map { i in 1 / Float(pow(Double(base), Double(2 * i) / Double(D))) }
        let standard = RoPETable(headDim: D, base: base, maxPositions: 12)
        let explicit = RoPETable(inverseFrequencies: inv, maxPositions: 12)
        XCTAssertEqual(explicit.cos, standard.cos)
        XCTAssertEqual(explicit.sin, standard.sin)
        let scaled = RoPETable(inverseFrequencies: [0.5, 0.25], maxPositions: 8)
        XCTAssertEqual(scaled.headDim, 4)
        XCTAssertEqual(scaled.cos[5 * 2 + 1], cos(Float(5) * 0.25), accuracy: 1e-6)
        XCTAssertEqual(scaled.sin[3 * 2 + 0], sin(Float(3) * 0.5), accuracy: 1e-6)
    }

    func testLinearBackward() {
        var r = Rand(2)
        let rows = 5, inF = 7, outF = 4
        var x = r.array(rows * inF), w = r.array(outF * inF)
        let dy = r.array(rows * outF)
        func run(_ x: [Float], _ w: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: rows * outF)
            BLAS.linearForward(x: x, weight: w, y: &y, rows: rows, inFeatures: inF, outFeatures: outF)
            return y
        }
        // y = x Wᵀ by hand.
        let y = run(x, w)
        var manual = 0.0
        for k in 0..<inF { manual += Double(x[1 * inF + k] * w[2 * inF + k]) }
        XCTAssertEqual(Double(y[1 * outF + 2]), manual, accuracy: 1e-5)
        var dx = [Float](repeating: 0, count: rows * inF), dw = [Float](repeating: 0, count: outF * inF)
        BLAS.linearBackward(x: x, weight: w, dy: dy, dx: &dx, dWeight: &dw, rows: rows, inFeatures: inF, outFeatures: outF)
        let wc = w
        checkGradient("linear dx", x: &x, analytic: dx) { weightedSum(run($0, wc), dy) }
        let xc = x
        checkGradient("linear dW", x: &w, analytic: dw) { weightedSum(run(xc, $0), dy) }
    }

    func testEmbeddingBackward() {
        var r = Rand(3)
        let dim = 5, vocab = 4
        let tokens: [Int32] = [1, 3, 1, 0]
        var table = r.array(vocab * dim)
        let dy = r.array(tokens.count * dim)
        func run(_ t: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: tokens.count * dim)
            Embedding.forward(tokens: tokens, rows: tokens.count, table: t, dim: dim, out: &out)
            return out
        }
        XCTAssertEqual(Array(run(table)[dim..<(2 * dim)]), Array(table[(3 * dim)..<(4 * dim)]))
        var dt = [Float](repeating: 0, count: vocab * dim)
        Embedding.backward(tokens: tokens, rows: tokens.count, dOut: dy, dim: dim, dTable: &dt)
        checkGradient("embedding", x: &table, analytic: dt) { weightedSum(run($0), dy) }
    }

    func testSwiGLUBackward() {
        var r = Rand(4)
        let rows = 3, dim = 11
        var gu = r.array(rows * 2 * dim, scale: 2)
        let dy = r.array(rows * dim)
        func run(_ g: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: rows * dim)
            SwiGLU.forward(gateUp: g, rows: rows, dim: dim, out: &out)
            return out
        }
        let x = gu[0], u = gu[dim]
        XCTAssertEqual(run(gu)[0], x / (1 + exp(-x)) * u, accuracy: 1e-5)
        var dg = [Float](repeating: 0, count: rows * 2 * dim)
        SwiGLU.backward(gateUp: gu, dOut: dy, rows: rows, dim: dim, dGateUp: &dg)
        checkGradient("swiglu", x: &gu, analytic: dg) { weightedSum(run($0), dy) }
    }

    func testSoftmaxAndLogSoftmaxBackward() {
        var r = Rand(5)
        let rows = 2, cols = 13
        var x = r.array(rows * cols, scale: 2)
        let dy = r.array(rows * cols)
        func sm(_ x: [Float]) -> [Float] { var o = [Float](repeating: 0, count: x.count); Softmax.forward(x, rows: rows, cols: cols, out: &o); return o }
        func lsm(_ x: [Float]) -> [Float] { var o = [Float](repeating: 0, count: x.count); LogSoftmax.forward(x, rows: rows, cols: cols, out: &o); return o }
        let y = sm(x)
        XCTAssertEqual(y[0..<cols].reduce(0, +), 1, accuracy: 1e-5)
        let ly = lsm(x)
        for i in 0..<x.count { XCTAssertEqual(exp(ly[i]), y[i], accuracy: 1e-5) }
        var dx = [Float](repeating: 0, count: x.count)
        Softmax.backward(y: y, dOut: dy, rows: rows, cols: cols, dx: &dx)
        checkGradient("softmax", x: &x, analytic: dx) { weightedSum(sm($0), dy) }
        var dl = [Float](repeating: 0, count: x.count)
        LogSoftmax.backward(y: ly, dOut: dy, rows: rows, cols: cols, dx: &dl)
        checkGradient("log-softmax", x: &x, analytic: dl) { weightedSum(lsm($0), dy) }
    }

    func testCrossEntropyBackward() {
        var r = Rand(6)
        let rows = 3, vocab = 9
        var z = r.array(rows * vocab, scale: 2)
        let targets: [Int32] = [4, -1, 0]
        let dl = r.array(rows)
        func run(_ z: [Float]) -> [Float] { var l = [Float](repeating: 0, count: rows); CrossEntropy.forward(logits: z, targets: targets, rows: rows, vocab: vocab, losses: &l); return l }
        let l = run(z)
        let lse = log((0..<vocab).map { exp(Double(z[$0])) }.reduce(0, +))
        XCTAssertEqual(Double(l[0]), lse - Double(z[4]), accuracy: 1e-5)
        XCTAssertEqual(l[1], 0)
        var dz = [Float](repeating: 0, count: z.count)
        CrossEntropy.backward(logits: z, targets: targets, dLoss: dl, rows: rows, vocab: vocab, dLogits: &dz)
        checkGradient("cross-entropy", x: &z, analytic: dz) { weightedSum(run($0), dl) }
    }

    func testTokenLogProbAndEntropyBackward() {
        var r = Rand(7)
        let rows = 4, vocab = 10
        var z = r.array(rows * vocab, scale: 2)
        let targets: [Int32] = [3, 9, -1, 0]
        let dlp = r.array(rows), dh = r.array(rows)
        func run(_ z: [Float]) -> ([Float], [Float]) {
            var lp = [Float](repeating: 0, count: rows), h = lp, lse = lp
            TokenLogProb.forward(logits: z, targets: targets, rows: rows, vocab: vocab, logProbs: &lp, entropy: &h, logSumExp: &lse)
            return (lp, h)
        }
        let (lp, h) = run(z)
        var logp = [Float](repeating: 0, count: rows * vocab)
        LogSoftmax.forward(z, rows: rows, cols: vocab, out: &logp)
        XCTAssertEqual(lp[1], logp[1 * vocab + 9], accuracy: 1e-5)
        let manualH = -(0..<vocab).map { exp(logp[$0]) * logp[$0] }.reduce(0, +)
        XCTAssertEqual(h[0], manualH, accuracy: 1e-5)
        var lse = [Float](repeating: 0, count: rows), lp2 = lse, h2 = lse
        TokenLogProb.forward(logits: z, targets: targets, rows: rows, vocab: vocab, logProbs: &lp2, entropy: &h2, logSumExp: &lse)
        var dz = [Float](repeating: 0, count: z.count)
        TokenLogProb.backward(logits: z, targets: targets, logSumExp: lse, entropy: h2, dLogProbs: dlp, dEntropy: dh,
                              rows: rows, vocab: vocab, dLogits: &dz)
        checkGradient("logprob+entropy", x: &z, analytic: dz) { let (a, b) = run($0); return weightedSum(a, dlp) + weightedSum(b, dh) }
    }

    func testRoPEMatchesRotateHalfAndBackwardIsTranspose() {
        var r = Rand(8)
        let D = 8, heads = 2, rows = 3, stride = heads * D + 3
        let table = RoPETable(headDim: D, base: 10_000, maxPositions: 16)
        let positions: [Int32] = [0, 5, 11]
        var x = r.array(rows * stride)
        let original = x
        table.apply(&x, rows: rows, rowStride: stride, heads: heads, positions: positions)
        // Row 2, head 1, pair i=1 by the rotate-half formula.
        let p = 11.0, i = 1, base = 2 * stride / 2 + D
        let theta = p / pow(10_000, Double(2 * i) / Double(D))
        let a = Double(original[2 * stride + D + i]), b = Double(original[2 * stride + D + i + D / 2])
        XCTAssertEqual(Double(x[2 * stride + D + i]), a * cos(theta) - b * sin(theta), accuracy: 1e-5)
        XCTAssertEqual(Double(x[2 * stride + D + i + D / 2]), b * cos(theta) + a * sin(theta), accuracy: 1e-5)
        _ = base
        // Position 0 is the identity and columns past the heads are untouched.
        XCTAssertEqual(Array(x[0..<(heads * D)]), Array(original[0..<(heads * D)]))
        XCTAssertEqual(x[stride - 1], original[stride - 1])
        // Backward: ⟨R x, y⟩ = ⟨x, Rᵀ y⟩, and Rᵀ R = I.
        var y = r.array(rows * stride)
        let yOriginal = y
        table.apply(&y, rows: rows, rowStride: stride, heads: heads, positions: positions, inverse: true)
        XCTAssertEqual(weightedSum(x, yOriginal), weightedSum(original, y), accuracy: 1e-4)
        table.apply(&x, rows: rows, rowStride: stride, heads: heads, positions: positions, inverse: true)
        for k in 0..<x.count { XCTAssertEqual(x[k], original[k], accuracy: 1e-5) }
    }
}
