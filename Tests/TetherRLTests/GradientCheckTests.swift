import Foundation
import TetherRL
import XCTest

/// Central finite differences of every loss against its analytic gradient, for every objective,
/// KL estimator and aggregation mode. Inputs are drawn away from the loss's kinks (the clip edges,
/// the truncation cap) so the difference quotient is meaningful.
final class GradientCheckTests: XCTestCase {
    struct LCG {
        var state: UInt64
        mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return lo + (hi - lo) * Float(state >> 40) / Float(1 << 24)
        }
    }

    static let h: Float = 1.0 / 128.0
    static let aggregations: [LossAggregation] = [.tokenMean, .seqMeanTokenSum, .seqMeanTokenMean, .seqMeanTokenSumNorm(maxTokens: 7)]
    static let objectives: [PolicyObjective] = [
        .ppoClip(epsilonLow: 0.2, epsilonHigh: 0.28),
        .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 1.3, capMode: .mask),
        .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 1.3, capMode: .truncate),
        .truncatedIS(cap: 1.4),
        .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 1.3, capMode: .maskOutside),
        .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 1.1, capMode: .truncateSequence),
    ]

    /// Log-ratio offsets that stay ≥ 2h (in log space) from every kink: ρ ∈ {0.8, 1.2, 1.28, 1.4}.
    static func awayFromKinks(_ delta: Float) -> Bool {
        [Float(0.8), 1.2, 1.28, 1.4].allSatisfy { abs(delta - log($0)) > 3 * h }
    }

    func makeInput(seed: UInt64) throws -> PolicyLossInput {
        var rng = LCG(state: seed)
        let layout = try SequenceLayout(lengths: [3, 1, 5, 0, 4])
        let n = layout.tokenCount
        var lp = [Float](), behav = [Float](), prox = [Float](), ref = [Float](), adv = [Float](), ent = [Float]()
        for _ in 0 ..< n {
            let b = rng.uniform(-3, -0.2)
            let p = b + rng.uniform(-0.4, 0.4)
            var d: Float
            repeat { d = rng.uniform(-0.6, 0.6) } while !Self.awayFromKinks(d) || !Self.awayFromKinks(p - b + d)
            behav.append(b); prox.append(p); lp.append(p + d)
            ref.append(p + d + rng.uniform(-0.8, 0.8))
            adv.append(rng.uniform(-2, 2))
            ent.append(rng.uniform(0.1, 3))
        }
        return PolicyLossInput(layout: layout, logProbs: lp, behaviourLogProbs: behav, advantages: adv,
                               proximalLogProbs: prox, refLogProbs: ref, entropy: ent)
    }

    static func total(_ r: PolicyLossResult) -> Double {
        r.diagnostics.policyLoss + r.diagnostics.klLoss + r.diagnostics.entropyLoss
    }

    func testPolicyLossGradientsMatchFiniteDifferences() throws {
        var checked = 0
        for (oi, objective) in Self.objectives.enumerated() {
            for aggregation in Self.aggregations {
                for estimator in KLEstimator.allCases {
                    let x = try makeInput(seed: UInt64(17 + oi))
                    let config = PolicyLossConfig(objective: objective, aggregation: aggregation,
                                                  kl: KLPenalty(beta: 0.3, estimator: estimator), entropyCoefficient: 0.05)
                    let r = try PolicyLoss.compute(x, config: config)
                    XCTAssertEqual(Double(r.loss), Self.total(r), accuracy: 1e-5)
                    let dH = try XCTUnwrap(r.dEntropy)
                    for t in 0 ..< x.layout.tokenCount {
                        var up = x, down = x
                        up.logProbs[t] += Self.h; down.logProbs[t] -= Self.h
                        let fd = (Self.total(try PolicyLoss.compute(up, config: config)) - Self.total(try PolicyLoss.compute(down, config: config)))
                            / Double(up.logProbs[t] - down.logProbs[t])
                        XCTAssertEqual(Double(r.dLogProbs[t]), fd, accuracy: 1e-5 + 1e-3 * abs(fd),
                                       "dlogp[\(t)] \(objective) \(aggregation) \(estimator)")
                        var eu = x, ed = x
                        eu.entropy![t] += Self.h; ed.entropy![t] -= Self.h
                        let fdH = (Self.total(try PolicyLoss.compute(eu, config: config)) - Self.total(try PolicyLoss.compute(ed, config: config)))
                            / Double(eu.entropy![t] - ed.entropy![t])
                        XCTAssertEqual(Double(dH[t]), fdH, accuracy: 1e-6 + 1e-3 * abs(fdH), "dH[\(t)] \(aggregation)")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, Self.objectives.count * Self.aggregations.count * 3 * 13)
    }

    func testGradientIsNotTriviallyZero() throws {
        // Guards the finite-difference test against passing on an all-zero gradient.
        let x = try makeInput(seed: 17)
        let r = try PolicyLoss.compute(x, config: .init(objective: .ppo))
        XCTAssertGreaterThan(r.dLogProbs.filter { $0 != 0 }.count, 5)
        XCTAssertGreaterThan(r.diagnostics.clipFraction, 0, "the sample should exercise the clip")
        // ... and the rules of the decoupled objectives drop or truncate some of its tokens.
        for (objective, what) in [(Self.objectives[4], \PolicyLossDiagnostics.maskedFraction), (Self.objectives[5], \.truncatedFraction)] {
            let d = try PolicyLoss.compute(x, config: .init(objective: objective)).diagnostics
            XCTAssertGreaterThan(d[keyPath: what], 0, "\(objective)")
            XCTAssertLessThan(d[keyPath: what], 1, "\(objective)")
        }
    }

    func testValueLossGradientMatchesFiniteDifferences() throws {
        var rng = LCG(state: 99)
        let layout = try SequenceLayout(lengths: [4, 2, 3])
        let eps: Float = 0.2
        var v = [Float](), old = [Float](), ret = [Float]()
        for _ in 0 ..< layout.tokenCount {
            let o = rng.uniform(-1, 1), rt = rng.uniform(-1.5, 1.5)
            var val: Float
            // Away from the clip edges o ± ε and from the switch point where both squares are equal.
            repeat { val = o + rng.uniform(-0.6, 0.6) } while
                abs(val - (o - eps)) < 3 * Self.h || abs(val - (o + eps)) < 3 * Self.h
                || abs(abs(val - rt) - abs(min(max(val, o - eps), o + eps) - rt)) < 3 * Self.h && abs(val - o) > eps
            v.append(val); old.append(o); ret.append(rt)
        }
        var clippedSeen = false
        for agg in Self.aggregations {
            let r = try ValueLoss.clipped(values: v, oldValues: old, returns: ret, layout: layout, epsilon: eps, aggregation: agg)
            clippedSeen = clippedSeen || r.clipFraction > 0
            for t in v.indices {
                var up = v, down = v
                up[t] += Self.h; down[t] -= Self.h
                // Loss in Float is enough here: it is quadratic, the quotient is exact up to rounding.
                let fu = try ValueLoss.clipped(values: up, oldValues: old, returns: ret, layout: layout, epsilon: eps, aggregation: agg).loss
                let fdn = try ValueLoss.clipped(values: down, oldValues: old, returns: ret, layout: layout, epsilon: eps, aggregation: agg).loss
                let fd = (fu - fdn) / (up[t] - down[t])
                XCTAssertEqual(r.dValues[t], fd, accuracy: 2e-4 + 1e-3 * abs(fd), "dV[\(t)] \(agg)")
            }
        }
        XCTAssertTrue(clippedSeen, "the sample should exercise the value clip")
    }
}
