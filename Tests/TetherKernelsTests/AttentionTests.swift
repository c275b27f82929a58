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

    /// Rows whose slot reads its first positions from another slot (`SharedPrefix`) give what they
    /// give with those positions copied into their own slot, including rows still inside the prefix
    /// length and a source slot's own rows.
    func testCachedAttentionWithSharedPrefixEqualsCopiedPrefix() {
        let heads = 9, kvHeads = 3, D = 64, capacity = 11, slotsCount = 4, kvDim = kvHeads * D, qd = heads * D
        var r = Rand(17)
        var keys = r.array(slotsCount * capacity * kvDim), values = r.array(slotsCount * capacity * kvDim)
        // Slots 1 and 3 share slot 0's first 6 positions, slot 2 holds its own.
        let source: [Int32] = [0, 0, 2, 0], length: [Int32] = [0, 6, 0, 6]
        var copiedKeys = keys, copiedValues = values
        for s in [1, 3] {
            for i in 0..<(6 * kvDim) {
                copiedKeys[s * capacity * kvDim + i] = keys[i]; copiedValues[s * capacity * kvDim + i] = values[i]
                // What the shared slots hold there is never read.
                keys[s * capacity * kvDim + i] = .nan; values[s * capacity * kvDim + i] = .nan
            }
        }
        let slots: [Int32] = [1, 1, 3, 0, 2, 1, 3], positions: [Int32] = [10, 6, 7, 9, 4, 2, 5]
        let rows = slots.count
        let q = r.array(rows * qd)
        for workers in [1, 2] {
            var expected = [Float](repeating: 0, count: rows * qd), out = expected, scratch = [Float](repeating: 0, count: workers * capacity)
            CachedAttention.forward(q: q, ldq: qd, rows: rows, slots: slots, positions: positions, keys: copiedKeys, values: copiedValues,
                                    capacity: capacity, heads: heads, kvHeads: kvHeads, headDim: D, out: &expected, ldo: qd,
                                    scratch: &scratch, workers: workers)
            source.withUnsafeBufferPointer { s in
                length.withUnsafeBufferPointer { l in
                    CachedAttention.forward(q: q, ldq: qd, rows: rows, slots: slots, positions: positions, keys: keys, values: values,
                                            capacity: capacity, heads: heads, kvHeads: kvHeads, headDim: D, out: &out, ldo: qd,
                                            scratch: &scratch, workers: workers,
                                            sharedPrefix: CachedAttention.SharedPrefix(source: s.baseAddress!, length: l.baseAddress!))
                }
            }
            for i in 0..<out.count { XCTAssertEqual(out[i], expected[i], accuracy: 1e-6, "workers \(workers) row \(i / qd)") }
        }
    }

    /// SmolLM2's head layout (9 query heads over 3 KV heads, D = 64, where the weighted sum runs
    /// in 64-float register blocks) and D = 72 (one block plus the axpy tail), rows of one slot at
    /// several positions and of other slots, against a Double reference, on 1 and 2 workers.
    func testCachedAttentionAtSmolLM2HeadLayoutMatchesReference() {
        for D in [64, 72] {
            let heads = 9, kvHeads = 3, capacity = 13, slotsCount = 3, kvDim = kvHeads * D, qd = heads * D
            var r = Rand(UInt64(D))
            let keys = r.array(slotsCount * capacity * kvDim), values = r.array(slotsCount * capacity * kvDim)
            let slots: [Int32] = [2, 0, 1, 2, 2, 0, 1, 1, 0, 2]
            let positions: [Int32] = [12, 0, 5, 3, 1, 7, 12, 4, 11, 6]
            let rows = slots.count, ldq = qd + 5
            let q = r.array(rows * ldq)
            for workers in [1, 2] {
                var out = [Float](repeating: .nan, count: rows * qd), scratch = [Float](repeating: 0, count: workers * capacity)
                CachedAttention.forward(q: q, ldq: ldq, rows: rows, slots: slots, positions: positions, keys: keys, values: values,
                                        capacity: capacity, heads: heads, kvHeads: kvHeads, headDim: D,
                                        out: &out, ldo: qd, scratch: &scratch, workers: workers)
                for row in 0..<rows {
                    let base = Int(slots[row]) * capacity * kvDim, n = Int(positions[row]) + 1
                    for head in 0..<heads {
                        let g = head / (heads / kvHeads)
                        var scores = (0..<n).map { j in
                            (0..<D).reduce(0.0) { $0 + Double(q[row * ldq + head * D + $1]) * Double(keys[base + j * kvDim + g * D + $1]) } / Double(D).squareRoot()
                        }
                        let m = scores.max()!
                        scores = scores.map { exp($0 - m) }
                        let z = scores.reduce(0, +)
                        for d in 0..<D {
                            let expected = (0..<n).reduce(0.0) { $0 + scores[$1] / z * Double(values[base + $1 * kvDim + g * D + d]) }
                            XCTAssertEqual(Double(out[row * qd + head * D + d]), expected, accuracy: 1e-5, "D \(D) workers \(workers) row \(row) head \(head)")
                        }
                    }
                }
            }
        }
    }
}
