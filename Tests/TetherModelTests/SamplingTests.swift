import Foundation
import TetherKernels
import TetherModel
import XCTest

final class SamplingTests: XCTestCase {
    let logits: [Float] = [1.0, 3.0, -2.0, 2.5, 0.0, 2.9, -1.0, 0.5]

    func draw(_ p: SamplingParameters, seed: UInt64, count: Int) -> [SampledToken] {
        var sampler = TokenSampler(vocabSize: logits.count)
        var rng = SeededRandom(seed: seed)
        return (0..<count).map { _ in logits.withUnsafeBufferPointer { sampler.sample(logits: $0.baseAddress!, parameters: p, rng: &rng) } }
    }

    func logSoftmax(_ z: [Float]) -> [Double] {
        let m = Double(z.max()!)
        let lse = m + log(z.map { exp(Double($0) - m) }.reduce(0, +))
        return z.map { Double($0) - lse }
    }

    func testSameSeedSameTokensAndTemperatureZeroIsArgmax() {
        let p = SamplingParameters(temperature: 0.8, topK: 5, topP: 0.9)
        XCTAssertEqual(draw(p, seed: 3, count: 50), draw(p, seed: 3, count: 50))
        XCTAssertNotEqual(draw(p, seed: 3, count: 50).map(\.token), draw(p, seed: 4, count: 50).map(\.token))
        let greedy = draw(.greedy, seed: 1, count: 5)
        XCTAssertTrue(greedy.allSatisfy { $0.token == 1 && $0.logProb == 0 })
        XCTAssertEqual(Double(greedy[0].rawLogProb), logSoftmax(logits)[1], accuracy: 1e-5)
    }

    func testUntruncatedLogProbsAreTemperatureScaledLogSoftmax() {
        let p = SamplingParameters(temperature: 0.7)
        let scaled = logSoftmax(logits.map { $0 / 0.7 }), raw = logSoftmax(logits)
        let draws = draw(p, seed: 5, count: 4000)
        for d in draws {
            XCTAssertEqual(Double(d.logProb), scaled[d.token], accuracy: 1e-5)
            XCTAssertEqual(Double(d.rawLogProb), raw[d.token], accuracy: 1e-5)
        }
        // Frequencies follow the distribution (4000 draws: ±3 standard errors).
        for j in logits.indices {
            let f = Double(draws.filter { $0.token == j }.count) / 4000, q = exp(scaled[j])
            XCTAssertEqual(f, q, accuracy: 3 * (q * (1 - q) / 4000).squareRoot() + 1e-3, "token \(j)")
        }
    }

    func testTopKAndTopPStayInTheAllowedSetWithRenormalisedLogProbs() {
        // Sorted by logit: 1 (3.0), 5 (2.9), 3 (2.5), 0 (1.0), 7 (0.5), 4, 6, 2.
        let topK = draw(SamplingParameters(temperature: 1, topK: 3), seed: 2, count: 2000)
        let kSet: Set = [1, 5, 3]
        let kLogp = logSoftmax([3.0, 2.9, 2.5])
        for d in topK {
            XCTAssertTrue(kSet.contains(d.token), "top-k picked \(d.token)")
            let idx = [1, 5, 3].firstIndex(of: d.token)!
            XCTAssertEqual(Double(d.logProb), kLogp[idx], accuracy: 1e-5)
        }
        XCTAssertEqual(Set(topK.map(\.token)), kSet)
        // Top-p: probabilities of the full softmax in order are ≈ .38, .34, .23, ...; p = 0.7 keeps {1, 5, 3}
        // (0.38 + 0.34 < 0.7 needs the third); p = 0.3 keeps only {1}.
        let full = logSoftmax(logits).map(exp)
        XCTAssertLessThan(full[1] + full[5], 0.7)
        let topP = draw(SamplingParameters(temperature: 1, topP: 0.7), seed: 3, count: 2000)
        for d in topP {
            XCTAssertTrue(kSet.contains(d.token), "top-p picked \(d.token)")
            let idx = [1, 5, 3].firstIndex(of: d.token)!
            XCTAssertEqual(Double(d.logProb), kLogp[idx], accuracy: 1e-5)
        }
        let single = draw(SamplingParameters(temperature: 1, topP: 0.3), seed: 4, count: 100)
        XCTAssertTrue(single.allSatisfy { $0.token == 1 && abs($0.logProb) < 1e-6 })
        // Top-k then top-p on the renormalised top-2 {1, 5}: p(1) = σ(0.1) ≈ 0.525 < 0.6 keeps both.
        let both = draw(SamplingParameters(temperature: 1, topK: 2, topP: 0.6), seed: 5, count: 500)
        XCTAssertEqual(Set(both.map(\.token)), [1, 5])
    }

    /// At vocabulary sizes with 64- and 8-wide blocks and a scalar tail, every untruncated draw is
    /// the inverse CDF of the exact (Double) softmax at the sampler's uniform: the drawn token's
    /// cumulative interval contains u (to rounding), and its log-probs are the exact temperature-scaled
    /// and raw log-softmax. Peaked and flat rows, temperatures 1 and 0.6.
    func testUntruncatedDrawIsTheInverseCDFOfTheExactSoftmax() {
        var gen = SeededRandom(seed: 21)
        for V in [8, 1003, 49152] {
            var sampler = TokenSampler(vocabSize: V)
            for (rowIndex, spread) in [Float(0.5), 3, 8].enumerated() {
                let z = (0..<V).map { _ in Float(gen.nextNormal()) * spread }
                for temperature: Float in [1, 0.6] {
                    let scaled = logSoftmax(z.map { $0 / temperature }), raw = logSoftmax(z)
                    var cdf = [Double](repeating: 0, count: V + 1)
                    for j in 0..<V { cdf[j + 1] = cdf[j] + exp(scaled[j]) }
                    var rng = SeededRandom(seed: UInt64(V * 10 + rowIndex))
                    for _ in 0..<(V > 2000 ? 60 : 300) {
                        var probe = rng
                        let u = Double(probe.nextUnitFloat())
                        let d = z.withUnsafeBufferPointer { sampler.sample(logits: $0.baseAddress!, parameters: SamplingParameters(temperature: temperature), rng: &rng) }
                        XCTAssertLessThanOrEqual(cdf[d.token] - 1e-5, u, "V \(V) T \(temperature): token \(d.token) starts after u")
                        XCTAssertLessThan(u, cdf[d.token + 1] + 1e-5, "V \(V) T \(temperature): token \(d.token) ends before u")
                        XCTAssertEqual(Double(d.logProb), scaled[d.token], accuracy: 1e-4)
                        XCTAssertEqual(Double(d.rawLogProb), raw[d.token], accuracy: 1e-4)
                    }
                }
            }
        }
    }
}
