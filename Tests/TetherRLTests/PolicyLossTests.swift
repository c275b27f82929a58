import Foundation
import TetherRL
import XCTest

final class PolicyLossTests: XCTestCase {
    // Five tokens in sequences of 2 and 3, behaviour log-prob −1 everywhere, ρ = π_θ/π_behav:
    //   t0: ρ = 1.5, Â = +1 → min(1.5, 1.28)  = 1.28 (clip high)   ℓ = −1.28, dℓ/dlogp = 0
    //   t1: ρ = 0.5, Â = +1 → min(0.5, 0.8)   = 0.5               ℓ = −0.5,  dℓ/dlogp = −0.5
    //   t2: ρ = 0.5, Â = −1 → min(−0.5, −0.8) = −0.8 (clip low)   ℓ = 0.8,   dℓ/dlogp = 0
    //   t3: ρ = 1.5, Â = −1 → min(−1.5, −1.28) = −1.5             ℓ = 1.5,   dℓ/dlogp = 1.5
    //   t4: ρ = 1.0, Â = +2 → 2                                     ℓ = −2,    dℓ/dlogp = −2
    // with ε_low = 0.2, ε_high = 0.28 (DAPO).
    func clipExample() throws -> PolicyLossInput {
        let ratios: [Float] = [1.5, 0.5, 0.5, 1.5, 1.0]
        return PolicyLossInput(
            layout: try SequenceLayout(lengths: [2, 3]),
            logProbs: ratios.map { -1 + log($0) }, behaviourLogProbs: [Float](repeating: -1, count: 5),
            advantages: [1, 1, -1, -1, 2])
    }

    func assertClose(_ a: [Float], _ b: [Float], _ tol: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tol, file: file, line: line) }
    }

    func testPPOClipHigherTokenMean() throws {
        let r = try PolicyLoss.compute(clipExample(), config: .init(objective: .dapo, aggregation: .tokenMean))
        // (−1.28 − 0.5 + 0.8 + 1.5 − 2)/5 = −1.48/5 = −0.296; gradients /5.
        XCTAssertEqual(r.loss, -0.296, accuracy: 1e-5)
        assertClose(r.dLogProbs, [0, -0.1, 0, 0.3, -0.4])
        XCTAssertEqual(r.diagnostics.clipFraction, 0.4, accuracy: 1e-12)
        XCTAssertEqual(r.diagnostics.clipLowFraction, 0.2, accuracy: 1e-12)
        XCTAssertEqual(r.diagnostics.clipHighFraction, 0.2, accuracy: 1e-12)
        // Weights [1.5, .5, .5, 1.5, 1]: Σw = 5, Σw² = 2.25+.25+.25+2.25+1 = 6 → ESS = 25/6.
        XCTAssertEqual(r.diagnostics.effectiveSampleSize, 25.0 / 6.0, accuracy: 1e-5)
        XCTAssertEqual(r.diagnostics.importanceWeightMean, 1, accuracy: 1e-6)
        XCTAssertEqual(r.diagnostics.importanceWeightMax, 1.5, accuracy: 1e-6)
        XCTAssertEqual(r.diagnostics.importanceWeightMin, 0.5, accuracy: 1e-6)
        // k3 per token ρ − 1 − ln ρ: 1.5 → 0.0945349, 0.5 → 0.1931472, 1 → 0;
        // mean = 2·(0.0945349 + 0.1931472)/5 = 0.1150728.
        XCTAssertEqual(r.diagnostics.approxKL, 0.1150728, accuracy: 1e-6)
        XCTAssertNil(r.dEntropy)
    }

    func testPPOClipAggregationModes() throws {
        let x = try clipExample()
        // Sequence sums: s0 = −1.28 − 0.5 = −1.78, s1 = 0.8 + 1.5 − 2 = 0.3.
        // seq-mean-token-mean: (−1.78/2 + 0.3/3)/2 = (−0.89 + 0.1)/2 = −0.395; a = 1/4 then 1/6.
        let m = try PolicyLoss.compute(x, config: .init(objective: .dapo, aggregation: .seqMeanTokenMean))
        XCTAssertEqual(m.loss, -0.395, accuracy: 1e-5)
        assertClose(m.dLogProbs, [0, -0.125, 0, 0.25, -2.0 / 6.0])
        // seq-mean-token-sum: (−1.78 + 0.3)/2 = −0.74; a = 1/2.
        let s = try PolicyLoss.compute(x, config: .init(objective: .dapo, aggregation: .seqMeanTokenSum))
        XCTAssertEqual(s.loss, -0.74, accuracy: 1e-5)
        assertClose(s.dLogProbs, [0, -0.25, 0, 0.75, -1])
        // seq-mean-token-sum-norm, 4 tokens: (−1.78 + 0.3)/(2·4) = −0.185; a = 1/8.
        let d = try PolicyLoss.compute(x, config: .init(objective: .dapo, aggregation: .seqMeanTokenSumNorm(maxTokens: 4)))
        XCTAssertEqual(d.loss, -0.185, accuracy: 1e-5)
        assertClose(d.dLogProbs, [0, -0.0625, 0, 0.1875, -0.25])
    }

    func testEmptySequenceIsNotCounted() throws {
        // One token, ρ = 1, Â = 1 plus an empty completion: seq-mean over the 1 non-empty sequence.
        let x = PolicyLossInput(layout: try SequenceLayout(lengths: [0, 1]), logProbs: [-1], behaviourLogProbs: [-1], advantages: [1])
        let r = try PolicyLoss.compute(x, config: .init(aggregation: .seqMeanTokenMean))
        XCTAssertEqual(r.loss, -1, accuracy: 1e-6)
    }

    func testKLInLossAndEntropyBonus() throws {
        // Two tokens, Â = 0 (no surrogate), ρ = 1. KL k3 with β = 0.1:
        //   t0: log r = −1.5 − (−1) = −0.5 → k3 = 0.10653066, d/dlogp = 0.39346934
        //   t1: log r = 0 → k3 = 0, d = 0
        // token-mean: KL loss = 0.1·0.10653066/2 = 0.005326533; dlogp = [0.1·0.39346934/2, 0] = [0.019673467, 0]
        // Entropy bonus c = 0.01, H = [1, 2]: −0.01·(1+2)/2 = −0.015; dL/dH = −0.01/2 = −0.005 each.
        let x = PolicyLossInput(
            layout: try SequenceLayout(lengths: [2]), logProbs: [-1, -2], behaviourLogProbs: [-1, -2],
            advantages: [0, 0], refLogProbs: [-1.5, -2], entropy: [1, 2])
        let r = try PolicyLoss.compute(x, config: .init(kl: KLPenalty(beta: 0.1, estimator: .k3), entropyCoefficient: 0.01))
        XCTAssertEqual(r.diagnostics.klLoss, 0.005326533, accuracy: 1e-8)
        XCTAssertEqual(r.diagnostics.entropyLoss, -0.015, accuracy: 1e-9)
        XCTAssertEqual(r.loss, 0.005326533 - 0.015, accuracy: 1e-7)
        assertClose(r.dLogProbs, [0.019673467, 0], 1e-7)
        assertClose(r.dEntropy ?? [], [-0.005, -0.005], 1e-8)
        XCTAssertEqual(r.diagnostics.entropyMean ?? 0, 1.5, accuracy: 1e-12)
        XCTAssertEqual(r.diagnostics.refKL ?? 0, 0.10653066 / 2, accuracy: 1e-8)

        // k1: value 0.5 on t0, gradient 1 → loss 0.1·0.5/2 = 0.025 and dlogp = [0.05, 0.05].
        let k1 = try PolicyLoss.compute(x, config: .init(kl: KLPenalty(beta: 0.1, estimator: .k1)))
        XCTAssertEqual(k1.loss, 0.025, accuracy: 1e-7)
        assertClose(k1.dLogProbs, [0.05, 0.05], 1e-7)

        // Placed in the reward: the loss ignores it but still reports it.
        let folded = try PolicyLoss.compute(x, config: .init(kl: KLPenalty(beta: 0.1, placement: .reward)))
        XCTAssertEqual(folded.loss, 0)
        XCTAssertEqual(folded.dLogProbs, [0, 0])
        XCTAssertNotNil(folded.diagnostics.refKL)
    }

    func testDecoupledPPOByHand() throws {
        // t0: behav −2, prox −1.5, θ −1.2, Â = 1: w = e^{0.5} = 1.6487213, r = e^{0.3} = 1.3498588 > 1.2
        //     → clipped: ℓ = −1.6487213·1.2 = −1.9784655, gradient 0.
        // t1: behav −1, prox −1.1, θ −1.0, Â = −0.5: w = e^{−0.1}, r = e^{0.1} inside the clip
        //     → ℓ = −w·r·Â = −1·(−0.5) = 0.5 (w·r = π_θ/π_behav = 1), dℓ/dlogp = 0.5.
        // token-mean: (−1.9784655 + 0.5)/2 = −0.73923275; gradient [0, 0.25].
        func input() throws -> PolicyLossInput {
            PolicyLossInput(
                layout: try SequenceLayout(lengths: [2]), logProbs: [-1.2, -1.0], behaviourLogProbs: [-2, -1],
                advantages: [1, -0.5], proximalLogProbs: [-1.5, -1.1])
        }
        let plain = try PolicyLoss.compute(input(), config: .init(objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: nil, capMode: .mask)))
        XCTAssertEqual(plain.loss, -0.73923275, accuracy: 1e-5)
        assertClose(plain.dLogProbs, [0, 0.25])
        XCTAssertEqual(plain.diagnostics.clipHighFraction, 0.5)
        XCTAssertEqual(plain.diagnostics.importanceWeightMax, 1.6487213, accuracy: 1e-5)
        // Cap 1.5, AReaL masking: t0 dropped → (0 + 0.5)/2 = 0.25.
        let masked = try PolicyLoss.compute(input(), config: .init(objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 1.5, capMode: .mask)))
        XCTAssertEqual(masked.loss, 0.25, accuracy: 1e-5)
        XCTAssertEqual(masked.diagnostics.maskedFraction, 0.5)
        // Cap 1.5, truncation: t0 weight 1.5 → ℓ = −1.5·1.2 = −1.8; (−1.8 + 0.5)/2 = −0.65.
        let truncated = try PolicyLoss.compute(input(), config: .init(objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 1.5, capMode: .truncate)))
        XCTAssertEqual(truncated.loss, -0.65, accuracy: 1e-5)
        // Missing proximal log-probs is an error that names them.
        var bad = try input(); bad.proximalLogProbs = nil
        XCTAssertThrowsError(try PolicyLoss.compute(bad, config: .init(objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: nil, capMode: .mask)))) {
            XCTAssertEqual($0 as? RLError, .missingInput(name: "proximalLogProbs", neededBy: "decoupled PPO"))
        }
    }

    func testTruncatedISByHand() throws {
        // t0: ρ = e^{1} = 2.718 > C = 2, Â = 1 → ℓ = −C(1 + ln ρ − ln C) = −2(1 + 1 − 0.6931472)
        //     = −2.6137056, dℓ/dlogp = −C·Â = −2 (capped, still a gradient).
        // t1: ρ = e^{ln 0.5} = 0.5, Â = 3 → ℓ = −1.5, dℓ/dlogp = −1.5.
        // token-mean: (−2.6137056 − 1.5)/2 = −2.0568528; gradient [−1, −0.75].
        let x = PolicyLossInput(
            layout: try SequenceLayout(lengths: [1, 1]), logProbs: [0, -1 + log(0.5)], behaviourLogProbs: [-1, -1], advantages: [1, 3])
        let r = try PolicyLoss.compute(x, config: .init(objective: .truncatedIS(cap: 2)))
        XCTAssertEqual(r.loss, -2.0568528, accuracy: 1e-5)
        assertClose(r.dLogProbs, [-1, -0.75])
        XCTAssertEqual(r.diagnostics.truncatedFraction, 0.5)
    }

    func testMaskedISByHand() throws {
        // π_θ = π_prox (r = 1, inside the clip), behaviour −1, c = 2, so w = π_prox/π_behav:
        //   t0: w = 3    > 2    → masked: no loss, no gradient, whatever Â (= 1)
        //   t1: w = 1.2         → kept: ℓ = −1.2·1 = −1.2, dℓ/dlogp = −1.2
        //   t2: w = 0.25 < 1/2  → masked (Â = −1)
        //   t3: w = 1           → kept: ℓ = −2, dℓ/dlogp = −2
        // token-mean: (−1.2 − 2)/4 = −0.8; gradient [0, −0.3, 0, −0.5]; half the tokens masked.
        let weights: [Float] = [3, 1.2, 0.25, 1]
        let logProbs = weights.map { -1 + log($0) }
        let x = PolicyLossInput(layout: try SequenceLayout(lengths: [1, 3]), logProbs: logProbs, behaviourLogProbs: [-1, -1, -1, -1],
                                advantages: [1, 1, -1, 2], proximalLogProbs: logProbs)
        let mis = PolicyObjective.decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .maskOutside)
        let r = try PolicyLoss.compute(x, config: .init(objective: mis))
        XCTAssertEqual(r.loss, -0.8, accuracy: 1e-5)
        assertClose(r.dLogProbs, [0, -0.3, 0, -0.5])
        XCTAssertEqual(r.dLogProbs[0], 0, "a token above c contributes no gradient")
        XCTAssertEqual(r.dLogProbs[2], 0, "a token below 1/c contributes no gradient")
        // Metrics on the same tokens: masked 2 of 4, nothing truncated or clipped;
        // ESS of w = (5.45)²/11.5025 = 2.5822647 (fraction 0.6455662);
        // mismatch KL = mean(w − 1 − ln w) = (0.9013877 + 0.0176784 + 0.6362944 + 0)/4 = 0.3888401
        // (π_θ = π_prox here, so ρ = w); approx KL against π_prox = 0.
        let d = r.diagnostics
        XCTAssertEqual(d.maskedFraction, 0.5)
        XCTAssertEqual(d.truncatedFraction, 0)
        XCTAssertEqual(d.clipFraction, 0)
        XCTAssertEqual(d.effectiveSampleSize, 2.5822647, accuracy: 1e-5)
        XCTAssertEqual(d.effectiveSampleFraction, 0.6455662, accuracy: 1e-6)
        XCTAssertEqual(d.mismatchKL, 0.3888401, accuracy: 1e-6)
        XCTAssertEqual(d.approxKL, 0, accuracy: 1e-12)
        // AReaL's one-sided cap keeps t2 (w = 0.25 ≤ 2): −0.25·(−1) = 0.25 joins the sum.
        let areal = try PolicyLoss.compute(x, config: .init(objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .mask)))
        XCTAssertEqual(areal.loss, (-1.2 + 0.25 - 2) / 4, accuracy: 1e-5)
        XCTAssertEqual(areal.diagnostics.maskedFraction, 0.25)
        // The rule alone: both bounds, inclusive.
        XCTAssertEqual(BehaviourWeight.maskedOutside(2, bound: 2), CorrectedWeight(weight: 2))
        XCTAssertEqual(BehaviourWeight.maskedOutside(0.5, bound: 2), CorrectedWeight(weight: 0.5))
        XCTAssertEqual(BehaviourWeight.maskedOutside(0.49, bound: 2), CorrectedWeight(weight: 0, masked: true))
    }

    func testSequenceTruncatedISByHand() throws {
        // π_θ = π_prox, behaviour −1. Sequence 0: log-ratios 0.5, 0.6 → w = e^{1.1} = 3.004 > C = 2,
        // both tokens weigh 2 (token-level truncation at 2 would have kept e^{0.5}, e^{0.6});
        // sequence 1: log-ratio −0.3 → w = e^{−0.3} = 0.7408182, kept.
        //   ℓ = −2·1, −2·(−1), −0.7408182·2 → token-mean (−2 + 2 − 1.4816364)/3 = −0.4938788
        //   gradient [−2/3, 2/3, −0.4938788]; 2 of 3 tokens truncated.
        let logRatios: [Float] = [0.5, 0.6, -0.3]
        let logProbs = logRatios.map { -1 + $0 }
        let x = PolicyLossInput(layout: try SequenceLayout(lengths: [2, 1]), logProbs: logProbs, behaviourLogProbs: [-1, -1, -1],
                                advantages: [1, -1, 2], proximalLogProbs: logProbs)
        let seq = PolicyObjective.decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .truncateSequence)
        let r = try PolicyLoss.compute(x, config: .init(objective: seq))
        XCTAssertEqual(r.loss, -0.4938788, accuracy: 1e-5)
        assertClose(r.dLogProbs, [-2.0 / 3.0, 2.0 / 3.0, -0.4938788])
        let d = r.diagnostics
        XCTAssertEqual(d.truncatedFraction, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(d.maskedFraction, 0)
        // ESS over the tokens' raw sequence weights [e^{1.1}, e^{1.1}, e^{−0.3}] = 2.4491330;
        // mismatch KL = mean over tokens of ρ − 1 − ln ρ with ρ = e^{0.5}, e^{0.6}, e^{−0.3} = 0.1372194.
        XCTAssertEqual(d.effectiveSampleSize, 2.4491330, accuracy: 1e-5)
        XCTAssertEqual(d.importanceWeightMax, exp(1.1), accuracy: 1e-5)
        XCTAssertEqual(d.mismatchKL, 0.1372194, accuracy: 1e-6)
        let token = try PolicyLoss.compute(x, config: .init(objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .truncate)))
        XCTAssertEqual(token.diagnostics.truncatedFraction, 0, "no single token's ratio exceeds 2")
        // A product far beyond Float's and Double's range is still the cap, not ∞ or NaN.
        let long = BehaviourWeight.sequenceTruncated(logRatios: ArraySlice(repeating: 50, count: 40), cap: 2)
        XCTAssertEqual(long, CorrectedWeight(weight: 2, truncated: true))
    }

    func testLogLinearProximalApproximationByHand() throws {
        // α = (v_p − v_b)/(v_θ − v_b), clamped: v_b 5, v_p 7, v_θ 7.5 → 2/2.5 = 0.8.
        XCTAssertEqual(ProximalApproximation.interpolationWeight(behaviourVersion: 5, proximalVersion: 7, currentVersion: 7.5), 0.8, accuracy: 1e-12)
        // A fresh sample (v_b = v_p) is the proximal policy: α = 0, π_prox = π_behav.
        XCTAssertEqual(ProximalApproximation.interpolationWeight(behaviourVersion: 7, proximalVersion: 7, currentVersion: 7.5), 0)
        // v_θ = v_b (first step, fresh sample): no span to interpolate over, α = 0.
        XCTAssertEqual(ProximalApproximation.interpolationWeight(behaviourVersion: 7, proximalVersion: 7, currentVersion: 7), 0)
        // First optimizer step of the update (v_θ = v_p) on a stale sample: α = 1, π_prox = π_θ, exact.
        XCTAssertEqual(ProximalApproximation.interpolationWeight(behaviourVersion: 3, proximalVersion: 7, currentVersion: 7), 1)
        // A sample newer than the proximal version cannot pull α below 0.
        XCTAssertEqual(ProximalApproximation.interpolationWeight(behaviourVersion: 8, proximalVersion: 7, currentVersion: 9), 0)
        XCTAssertEqual(ProximalVersions(learnerVersion: 7, step: 1, steps: 4), ProximalVersions(proximal: 7, current: 7.25))
        // log π_prox = −2 + 0.8·(−1 − (−2)) = −1.2 for the first sequence (v_b 5); the second (v_b 7) keeps π_behav.
        let prox = try ProximalApproximation.loglinear(
            behaviour: [-2, -3, -0.5], current: [-1, -1, -1], layout: try SequenceLayout(lengths: [2, 1]),
            behaviourVersions: [5, 7], versions: ProximalVersions(proximal: 7, current: 7.5))
        assertClose(prox, [-1.2, -1.4, -0.5])
        XCTAssertThrowsError(try ProximalApproximation.loglinear(
            behaviour: [-2], current: [-1], layout: try SequenceLayout(lengths: [1]), behaviourVersions: [], versions: ProximalVersions(proximal: 1, current: 2))) {
            XCTAssertEqual($0 as? RLError, .countMismatch(name: "behaviour versions", expected: 1, found: 0))
        }
    }

    func testValueLossByHand() throws {
        // ε = 0.2.
        //   t0: V 1.0, old 0.5, R 0: clip(V) = 0.7, u = 1, c = 0.49 → ½·1 = 0.5, dV = 1
        //   t1: V 2.0, old 1.9, R 3: inside, u = c = 1 → 0.5, dV = −1
        //   t2: V 1.0, old 0.1, R 2: clip(V) = 0.3, u = 1, c = 2.89 → ½·2.89 = 1.445, dV = 0
        // token-mean: (0.5 + 0.5 + 1.445)/3 = 0.815; dV = [1/3, −1/3, 0]; clip frac 1/3.
        let r = try ValueLoss.clipped(
            values: [1, 2, 1], oldValues: [0.5, 1.9, 0.1], returns: [0, 3, 2], layout: try SequenceLayout(lengths: [3]), epsilon: 0.2)
        XCTAssertEqual(r.loss, 0.815, accuracy: 1e-5)
        assertClose(r.dValues, [1.0 / 3.0, -1.0 / 3.0, 0])
        XCTAssertEqual(r.clipFraction, 1.0 / 3.0, accuracy: 1e-12)
    }

    func testBadInputsAreNamed() throws {
        let layout = try SequenceLayout(lengths: [2])
        let x = PolicyLossInput(layout: layout, logProbs: [-1], behaviourLogProbs: [-1, -1], advantages: [0, 0])
        XCTAssertThrowsError(try PolicyLoss.compute(x, config: .init())) {
            XCTAssertEqual($0 as? RLError, .countMismatch(name: "logProbs", expected: 2, found: 1))
        }
        let y = PolicyLossInput(layout: layout, logProbs: [-1, .infinity], behaviourLogProbs: [-1, -1], advantages: [0, 0])
        XCTAssertThrowsError(try PolicyLoss.compute(y, config: .init()))
        let z = PolicyLossInput(layout: layout, logProbs: [-1, -1], behaviourLogProbs: [-1, -1], advantages: [0, 0])
        XCTAssertThrowsError(try PolicyLoss.compute(z, config: .init(entropyCoefficient: 0.1))) {
            XCTAssertEqual($0 as? RLError, .missingInput(name: "entropy", neededBy: "the entropy bonus"))
        }
        XCTAssertThrowsError(try LossAggregation(name: "token-sum"))
        XCTAssertEqual(try LossAggregation(name: "seq-mean-token-sum-norm", maxTokens: 64), .seqMeanTokenSumNorm(maxTokens: 64))
    }
}
