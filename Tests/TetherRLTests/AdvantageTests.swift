import TetherRL
import XCTest

final class AdvantageTests: XCTestCase {
    // Three interleaved groups: id 7 = [1, 0, 0, 1], id 3 = [2, 2, 2] (all equal), id 5 = [3, 0].
    let rewards: [Float] = [1, 2, 0, 3, 0, 2, 1, 2, 0]
    let groups = [7, 3, 7, 5, 7, 3, 7, 3, 5]

    func testGRPOUnbiasedStdMatchesHandComputation() throws {
        let r = try GRPOAdvantage.compute(rewards: rewards, groupIDs: groups)
        // Group 7: mean 0.5, unbiased var = 4·0.25/3 = 1/3, std = 0.5773503;
        //   Â = ±0.5 / (0.5773503 + 0.0001) = ±0.5 / 0.5774503 = ±0.8658755.
        // Group 5: mean 1.5, unbiased var = 2·2.25/1 = 4.5, std = 2.1213203;
        //   Â = ±1.5 / 2.1214203 = ±0.7070734.
        // Group 3: all equal → 0, counted as zero-std.
        let a = 0.8658755 as Float, b = 0.7070734 as Float
        let expected: [Float] = [a, 0, -a, b, -a, 0, a, 0, -b]
        for (x, y) in zip(r.advantages, expected) { XCTAssertEqual(x, y, accuracy: 1e-6) }
        XCTAssertEqual(r.groupCount, 3)
        XCTAssertEqual(r.zeroStdGroupCount, 1)
        XCTAssertEqual(r.fracZeroStd, 1.0 / 3.0, accuracy: 1e-7)
    }

    func testGRPOBiasedStd() throws {
        let r = try GRPOAdvantage.compute(rewards: rewards, groupIDs: groups, epsilon: 0, std: .biased)
        // Group 7: population var = 0.25, std 0.5 → Â = ±1. Group 5: var 2.25, std 1.5 → ±1.
        XCTAssertEqual(r.advantages, [1, 0, -1, 1, -1, 0, 1, 0, -1])
    }

    func testDrGRPOSubtractsMeanOnly() throws {
        let r = try DrGRPOAdvantage.compute(rewards: rewards, groupIDs: groups)
        // Group 7: r − 0.5 = ±0.5; group 5: r − 1.5 = ±1.5; group 3: 0.
        XCTAssertEqual(r.advantages, [0.5, 0, -0.5, 1.5, -0.5, 0, 0.5, 0, -1.5])
        XCTAssertEqual(r.zeroStdGroupCount, 1)
    }

    func testRLOOLeaveOneOut() throws {
        let r = try RLOOAdvantage.compute(rewards: rewards, groupIDs: groups)
        // Group 7: 1 − (0+0+1)/3 = 2/3; 0 − (1+0+1)/3 = −2/3.  Group 5: 3 − 0 = 3; 0 − 3 = −3.
        let t: Float = 2.0 / 3.0
        let expected: [Float] = [t, 0, -t, 3, -t, 0, t, 0, -3]
        for (x, y) in zip(r.advantages, expected) { XCTAssertEqual(x, y, accuracy: 1e-6) }
    }

    func testSingletonGroupHasNoSignal() throws {
        let r = try GRPOAdvantage.compute(rewards: [5, 1, 2], groupIDs: [0, 1, 1])
        XCTAssertEqual(r.advantages[0], 0)
        XCTAssertEqual(r.zeroStdGroupCount, 1)
        XCTAssertEqual(try RLOOAdvantage.compute(rewards: [5], groupIDs: [0]).advantages, [0])
    }

    func testNonFiniteRewardIsRejected() {
        XCTAssertThrowsError(try GRPOAdvantage.compute(rewards: [1, .nan], groupIDs: [0, 0])) { e in
            guard case .nonFinite(let name, let index, _) = e as? RLError else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "rewards"); XCTAssertEqual(index, 1)
        }
        XCTAssertThrowsError(try DrGRPOAdvantage.compute(rewards: [1, 2], groupIDs: [0])) { e in
            XCTAssertEqual(e as? RLError, .countMismatch(name: "groupIDs", expected: 2, found: 1))
        }
    }

    func testGAEByHand() throws {
        let layout = try SequenceLayout(lengths: [3, 1])
        let r = try GAE.compute(tokenRewards: [0, 0, 1, 2], values: [0.5, 0.6, 0.7, 0.5], layout: layout, gamma: 0.9, lambda: 0.8)
        // Sequence 0, γλ = 0.72, V_3 = 0:
        //   t=2: δ = 1 + 0.9·0 − 0.7 = 0.3;     Â = 0.3;                     R = 1.0
        //   t=1: δ = 0 + 0.9·0.7 − 0.6 = 0.03;  Â = 0.03 + 0.72·0.3 = 0.246;  R = 0.846
        //   t=0: δ = 0 + 0.9·0.6 − 0.5 = 0.04;  Â = 0.04 + 0.72·0.246 = 0.21712; R = 0.71712
        // Sequence 1 (independent): δ = 2 − 0.5 = 1.5; Â = 1.5; R = 2.
        let adv: [Float] = [0.21712, 0.246, 0.3, 1.5], ret: [Float] = [0.71712, 0.846, 1.0, 2.0]
        for i in 0 ..< 4 {
            XCTAssertEqual(r.advantages[i], adv[i], accuracy: 1e-6)
            XCTAssertEqual(r.returns[i], ret[i], accuracy: 1e-6)
        }
    }

    func testGAEWithUnitGammaLambdaIsReturnMinusValue() throws {
        let layout = try SequenceLayout(lengths: [4])
        let rewards = try GAE.outcomeTokenRewards(scores: [3], layout: layout)
        XCTAssertEqual(rewards, [0, 0, 0, 3])
        let r = try GAE.compute(tokenRewards: rewards, values: [1, 2, 0.5, -1], layout: layout)
        // γ = λ = 1: Â_t = Σ_{s≥t} r_s − V_t = 3 − V_t.
        XCTAssertEqual(r.advantages, [2, 1, 2.5, 4])
        XCTAssertEqual(r.returns, [3, 3, 3, 3])
    }

    func testWhitening() {
        // mean 2, unbiased var = (1+0+1)/2 = 1 → (x − 2)/1.
        let w = AdvantageWhitening.whiten([1, 2, 3])
        for (x, y) in zip(w, [-1, 0, 1] as [Float]) { XCTAssertEqual(x, y, accuracy: 1e-6) }
        let kept = AdvantageWhitening.whiten([1, 2, 3], shiftMean: false)
        for (x, y) in zip(kept, [1, 2, 3] as [Float]) { XCTAssertEqual(x, y, accuracy: 1e-6) }
    }

    func testKLEstimatorsByHand() {
        // log r = ref − logp = −1.5 − (−1) = −0.5.
        // k1 = 0.5; k2 = ½·0.25 = 0.125; k3 = e^{−0.5} − 1 + 0.5 = 0.60653066 − 0.5 = 0.10653066.
        // d/dlogp: k1 → 1; k2 → −log r = 0.5; k3 → 1 − e^{−0.5} = 0.39346934.
        let k1 = KLEstimator.k1.valueAndGradient(logProb: -1, refLogProb: -1.5)
        let k2 = KLEstimator.k2.valueAndGradient(logProb: -1, refLogProb: -1.5)
        let k3 = KLEstimator.k3.valueAndGradient(logProb: -1, refLogProb: -1.5)
        XCTAssertEqual(k1.value, 0.5, accuracy: 1e-12); XCTAssertEqual(k1.dLogProb, 1)
        XCTAssertEqual(k2.value, 0.125, accuracy: 1e-12); XCTAssertEqual(k2.dLogProb, 0.5, accuracy: 1e-12)
        XCTAssertEqual(k3.value, 0.10653066, accuracy: 1e-8); XCTAssertEqual(k3.dLogProb, 0.39346934, accuracy: 1e-8)
    }

    func testKLFoldedIntoRewards() throws {
        let layout = try SequenceLayout(lengths: [2, 1])
        // Per-token k1 = logp − ref: [0.5, 0.25, −0.5]. β = 0.1.
        let lp: [Float] = [-1, -1, -2], ref: [Float] = [-1.5, -1.25, -1.5]
        let seq = try KLRewardShaping.penalizeSequences(scores: [1, 0], logProbs: lp, refLogProbs: ref, layout: layout, beta: 0.1, estimator: .k1)
        // 1 − 0.1·0.75 = 0.925;  0 − 0.1·(−0.5) = 0.05.
        XCTAssertEqual(seq[0], 0.925, accuracy: 1e-6); XCTAssertEqual(seq[1], 0.05, accuracy: 1e-6)
        let tok = try KLRewardShaping.penalizeTokens(tokenRewards: [0, 1, 0], logProbs: lp, refLogProbs: ref, beta: 0.1, estimator: .k1)
        for (x, y) in zip(tok, [-0.05, 0.975, 0.05] as [Float]) { XCTAssertEqual(x, y, accuracy: 1e-6) }
    }
}
