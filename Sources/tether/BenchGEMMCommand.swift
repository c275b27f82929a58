import ArgumentParser
import Foundation
import TetherKernels

/// `tether bench gemm`: GFLOP/s of single-precision GEMM at the learner's shapes (SmolLM2-135M's
/// projections over a batch of rows, forward and both backward products), OpenBLAS against
/// `BLAS.sgemm` as the model calls it (the AVX-512 `WideGEMM` on builds that have it).
struct BenchGEMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GFLOP/s of sgemm at the learner's shapes: OpenBLAS against Tether's BLAS.sgemm.")

    @Option(help: "Rows of the batch (B·T).") var rows = 2048
    @Option(help: "Timed repetitions per shape (the best is reported).") var repetitions = 5
    @Option(help: "BLAS threads of this process.") var threads = 2
    @Flag(help: "Print one JSON line per shape.") var json = false

    struct Shape {
        let name: String, transA: Bool, transB: Bool, m: Int, n: Int, k: Int
    }

    func shapes() -> [Shape] {
        let r = rows, head = min(rows, 682)
        var s: [Shape] = []
        for (name, out, inF) in [("qkv", 960, 576), ("o", 576, 576), ("gate_up", 3072, 576), ("down", 576, 1536), ("kv", 192, 576)] {
            s.append(Shape(name: "\(name) forward", transA: false, transB: true, m: r, n: out, k: inF))
            s.append(Shape(name: "\(name) dW", transA: true, transB: false, m: out, n: inF, k: r))
            s.append(Shape(name: "\(name) dx", transA: false, transB: false, m: r, n: inF, k: out))
        }
        s.append(Shape(name: "lm_head forward", transA: false, transB: true, m: head, n: 49152, k: 576))
        s.append(Shape(name: "lm_head dW", transA: true, transB: false, m: 49152, n: 576, k: head))
        s.append(Shape(name: "lm_head dx", transA: false, transB: false, m: head, n: 576, k: 49152))
        return s
    }

    func run() throws {
        BLASThreads.set(threads)
        var totals = (openBLAS: 0.0, tether: 0.0)
        for s in shapes() {
            let (aRows, aCols) = s.transA ? (s.k, s.m) : (s.m, s.k), (bRows, bCols) = s.transB ? (s.n, s.k) : (s.k, s.n)
            var rng = SeededRandom(seed: 3)
            let a = (0..<(aRows * aCols)).map { _ in Float(rng.nextNormal()) }, b = (0..<(bRows * bCols)).map { _ in Float(rng.nextNormal()) }
            var c = [Float](repeating: 0, count: s.m * s.n)
            func time(_ body: () -> Void) -> Double {
                body()
                var best = Double.infinity
                for _ in 0..<repetitions {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    body()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                return best
            }
            let reference = time {
                BLAS.openBLASSgemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: a, lda: aCols, b: b, ldb: bCols, c: &c, ldc: s.n)
            }
            let tether = time {
                BLAS.sgemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: a, lda: aCols, b: b, ldb: bCols, c: &c, ldc: s.n)
            }
            totals.openBLAS += reference; totals.tether += tether
            let flops = 2 * Double(s.m) * Double(s.n) * Double(s.k)
            let (g0, g1) = (flops / reference / 1e9, flops / tether / 1e9)
            if json {
                print("{\"shape\": \"\(s.name)\", \"m\": \(s.m), \"n\": \(s.n), \"k\": \(s.k), \"trans_a\": \(s.transA), \"trans_b\": \(s.transB), "
                      + "\"openblas_gflops\": \(String(format: "%.1f", g0)), \"tether_gflops\": \(String(format: "%.1f", g1))}")
            } else {
                let name = s.name.padding(toLength: 16, withPad: " ", startingAt: 0), trans = (s.transA ? "T" : "N") + (s.transB ? "T" : "N")
                print(name + String(format: " %5d × %5d × %5d ", s.m, s.n, s.k) + trans
                      + String(format: "  OpenBLAS %6.1f  Tether %6.1f GFLOP/s  (%.2f×)", g0, g1, g1 / g0))
            }
        }
        if !json {
            print(String(format: "all shapes once: OpenBLAS %.1f ms, Tether %.1f ms (%.2f×)",
                         totals.openBLAS * 1e3, totals.tether * 1e3, totals.openBLAS / totals.tether))
        }
    }
}
