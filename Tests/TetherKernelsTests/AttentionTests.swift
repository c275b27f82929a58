import Foundation
import TetherKernels
import TetherTestSupport
import XCTest

final class AttentionTests: XCTestCase {
    // Two sequences of padded length 5 (lengths 5 and 3), 4 query heads over 2 KV heads, D = 4,
    // with q|k|v side by side in one row as the fused projection lays them out.
    let shape = CausalAttention.Shape(batch: 2, seqLen: 5, heads: 4, kvHeads: 2, headDim: 4)
    let lengths: [Int32] = [5, 3]
    var h: Int { shape.heads * shape.headDim }
    var kv: Int { shape.kvHeads * shape.headDim }
    var ld: Int { h + 2 * kv }
    var rows: Int { shape.batch * shape.seqLen }

    func run(_ qkv: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: rows * h), probs = [Float](repeating: 0, count: shape.probsCount)
        qkv.withUnsafeBufferPointer { p in
            CausalAttention.forward(q: p.baseAddress!, ldq: ld, k: p.baseAddress! + h, v: p.baseAddress! + h + kv, ldkv: ld,
                                    out: &out, ldo: h, probs: &probs, shape: shape, lengths: lengths)
        }
        return out
    }

    func testForwardMatchesNaiveAttention() {
        var r = Rand(11)
        let qkv = r.array(rows * ld)
        let out = run(qkv)
        let D = shape.headDim, T = shape.seqLen
        for b in 0..<shape.batch {
            for t in 0..<T {
                for head in 0..<shape.heads {
                    let g = head / 2
                    var expected = [Double](repeating: 0, count: D)
                    if t < Int(lengths[b]) {
                        var scores: [Double] = []
                        for j in 0...t {
                            var s = 0.0
                            for d in 0..<D { s += Double(qkv[(b * T + t) * ld + head * D + d] * qkv[(b * T + j) * ld + h + g * D + d]) }
                            scores.append(s / sqrt(Double(D)))
                        }
                        let m = scores.max()!
                        let e = scores.map { exp($0 - m) }, z = e.reduce(0, +)
                        for j in 0...t { for d in 0..<D { expected[d] += e[j] / z * Double(qkv[(b * T + j) * ld + h + kv + g * D + d]) } }
                    }
                    for d in 0..<D { XCTAssertEqual(Double(out[(b * T + t) * h + head * D + d]), expected[d], accuracy: 1e-5) }
                }
            }
        }
    }

    func testBackwardMatchesFiniteDifferences() {
        var r = Rand(12)
        var qkv = r.array(rows * ld)
        let dy = r.array(rows * h)
        var out = [Float](repeating: 0, count: rows * h), probs = [Float](repeating: 0, count: shape.probsCount)
        var scratch = [Float](repeating: 0, count: shape.seqLen * shape.seqLen)
        var dqkv = [Float](repeating: 7, count: rows * ld)  // garbage: the backward must overwrite it
        qkv.withUnsafeBufferPointer { p in
            let base = p.baseAddress!
            CausalAttention.forward(q: base, ldq: ld, k: base + h, v: base + h + kv, ldkv: ld,
                                    out: &out, ldo: h, probs: &probs, shape: shape, lengths: lengths)
            dqkv.withUnsafeMutableBufferPointer { d in
                CausalAttention.backward(q: base, ldq: ld, k: base + h, v: base + h + kv, ldkv: ld, probs: probs,
                                         dOut: dy, ldo: h, dq: d.baseAddress!, dk: d.baseAddress! + h, dv: d.baseAddress! + h + kv,
                                         scratch: &scratch, shape: shape, lengths: lengths)
            }
        }
        checkGradient("attention dqkv", x: &qkv, analytic: dqkv) { weightedSum(run($0), dy) }
        // The same with the sequences split over two threads.
        BLASThreads.set(2)
        var out2 = [Float](repeating: 0, count: rows * h), probs2 = [Float](repeating: 0, count: shape.probsCount)
        var scratch2 = [Float](repeating: 0, count: 2 * shape.seqLen * shape.seqLen)
        var dqkv2 = [Float](repeating: 7, count: rows * ld)
        qkv.withUnsafeBufferPointer { p in
            let base = p.baseAddress!
            CausalAttention.forward(q: base, ldq: ld, k: base + h, v: base + h + kv, ldkv: ld,
                                    out: &out2, ldo: h, probs: &probs2, shape: shape, lengths: lengths, workers: 2)
            dqkv2.withUnsafeMutableBufferPointer { d in
                CausalAttention.backward(q: base, ldq: ld, k: base + h, v: base + h + kv, ldkv: ld, probs: probs2,
                                         dOut: dy, ldo: h, dq: d.baseAddress!, dk: d.baseAddress! + h, dv: d.baseAddress! + h + kv,
                                         scratch: &scratch2, shape: shape, lengths: lengths, workers: 2)
            }
        }
        XCTAssertEqual(BLASThreads.current, 2, "the BLAS budget is restored after the parallel section")
        for i in 0..<out.count { XCTAssertEqual(out2[i], out[i], accuracy: 1e-6) }
        for i in 0..<dqkv.count { XCTAssertEqual(dqkv2[i], dqkv[i], accuracy: 1e-6) }
    }

    func testCachedAttentionMatchesFullAttention() {
        var r = Rand(13)
        let qkv = r.array(rows * ld)
        let full = run(qkv)
        // Cache of 3 slots (sequence b lives in slot 2−b), capacity 6.
        let capacity = 6, T = shape.seqLen
        var keys = [Float](repeating: 0, count: 3 * capacity * kv), values = keys
        for b in 0..<shape.batch {
            for t in 0..<T {
                for d in 0..<kv {
                    keys[((2 - b) * capacity + t) * kv + d] = qkv[(b * T + t) * ld + h + d]
                    values[((2 - b) * capacity + t) * kv + d] = qkv[(b * T + t) * ld + h + kv + d]
                }
            }
        }
        var slots: [Int32] = [], positions: [Int32] = [], rowsUsed: [Int] = []
        for b in 0..<shape.batch { for t in 0..<Int(lengths[b]) { slots.append(Int32(2 - b)); positions.append(Int32(t)); rowsUsed.append(b * T + t) } }
        var q = [Float](repeating: 0, count: rowsUsed.count * ld)
        for (i, row) in rowsUsed.enumerated() { for c in 0..<ld { q[i * ld + c] = qkv[row * ld + c] } }
        for workers in [1, 2, 3] {
            var out = [Float](repeating: 0, count: rowsUsed.count * h), scratch = [Float](repeating: 0, count: workers * capacity)
            CachedAttention.forward(q: q, ldq: ld, rows: rowsUsed.count, slots: slots, positions: positions, keys: keys, values: values,
                                    capacity: capacity, heads: shape.heads, kvHeads: shape.kvHeads, headDim: shape.headDim,
                                    out: &out, ldo: h, scratch: &scratch, workers: workers)
            for (i, row) in rowsUsed.enumerated() { for c in 0..<h { XCTAssertEqual(out[i * h + c], full[row * h + c], accuracy: 1e-5, "workers \(workers)") } }
        }
    }
}
