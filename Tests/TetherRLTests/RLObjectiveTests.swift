import TetherRL
import XCTest

final class RLObjectiveTests: XCTestCase {
    // One prompt, two completions of 1 and 2 tokens, rewards [1, 0], sampled by the current policy
    // (log π_θ = log π_behav, ρ = 1, no clip).
    func batch(rewards: [Float] = [1, 0]) throws -> RolloutBatch {
        try RolloutBatch(
            promptTokens: [[1, 5], [1, 5]], completionTokens: [[7], [8, 2]], behaviourLogProbs: [-0.5, -1, -2],
            rewards: rewards, groupIDs: [0, 0], policyVersions: [3, 3])
    }

    func assertClose(_ a: [Float], _ b: [Float], _ tol: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: tol, file: file, line: line) }
    }

    func testGRPOEndToEnd() throws {
        let b = try batch()
        let config = RLAlgorithmConfig(algorithm: .grpo)
        let prep = try RLObjective.prepare(b, config: config)
        // mean 0.5, unbiased std = √(0.5) = 0.7071068 → Â = ±0.5/0.7072068 = ±0.7070068.
        let a: Float = 0.7070068
        assertClose(prep.advantages, [a, -a, -a])
        let out = try RLObjective.evaluate(b, prepared: prep, outputs: PolicyOutputs(logProbs: b.behaviourLogProbs), config: config)
        // token-mean of −ρÂ: (−a + a + a)/3 = a/3 = 0.2356689; dℓ/dlogp = −ρÂ/3 = [−a/3, a/3, a/3].
        XCTAssertEqual(out.totalLoss, a / 3, accuracy: 1e-6)
        assertClose(out.dLogProbs, [-a / 3, a / 3, a / 3])
        XCTAssertNil(out.value)
    }

    func testDrGRPOAndRLOO() throws {
        let b = try batch()
        let dr = RLAlgorithmConfig.drGRPO(maxTokens: 4)
        let prep = try RLObjective.prepare(b, config: dr)
        assertClose(prep.advantages, [0.5, -0.5, -0.5])
        // a = 1/(B·L) = 1/8: gradients −Â/8.
        let out = try RLObjective.evaluate(b, prepared: prep, outputs: PolicyOutputs(logProbs: b.behaviourLogProbs), config: dr)
        assertClose(out.dLogProbs, [-0.0625, 0.0625, 0.0625])
        // RLOO with two samples: 1 − 0 = 1, 0 − 1 = −1.
        let rloo = try RLObjective.prepare(b, config: RLAlgorithmConfig(algorithm: .rloo))
        assertClose(rloo.advantages, [1, -1, -1])
    }

    func testAllEqualGroupGivesNoGradientButKLDoes() throws {
        let b = try batch(rewards: [1, 1])
        let config = RLAlgorithmConfig.referenceGRPO
        let prep = try RLObjective.prepare(b, config: config)
        XCTAssertEqual(prep.groups?.fracZeroStd, 1)
        let metrics = Dictionary(uniqueKeysWithValues: prep.metrics)
        XCTAssertEqual(metrics["frac_zero_std"], 1)
        XCTAssertEqual(metrics["reward/mean"], 1)
        XCTAssertEqual(metrics["reward/std"], 0)
        XCTAssertEqual(prep.advantages, [0, 0, 0])
        let ref: [Float] = [-0.5, -1, -2]
        let same = try RLObjective.evaluate(b, prepared: prep, outputs: PolicyOutputs(logProbs: b.behaviourLogProbs, refLogProbs: ref), config: config)
        XCTAssertEqual(same.dLogProbs, [0, 0, 0], "no advantage and π_θ = π_ref: nothing to learn")
        // Moving π_θ off the reference on token 0 (log r = −0.5): k3 gradient 1 − e^{−0.5} = 0.3934693, ·β/3.
        let moved = try RLObjective.evaluate(b, prepared: prep, outputs: PolicyOutputs(logProbs: [0, -1, -2], refLogProbs: ref), config: config)
        XCTAssertEqual(moved.dLogProbs[0], 0.04 * 0.3934693 / 3, accuracy: 1e-7)
    }

    func testKLFoldedIntoRewardChangesGroupAdvantages() throws {
        let b = try batch(rewards: [1, 1])
        let config = RLAlgorithmConfig(algorithm: .drGRPO, kl: KLPenalty(beta: 0.5, estimator: .k1, placement: .reward))
        XCTAssertThrowsError(try RLObjective.prepare(b, config: config)) {
            XCTAssertEqual($0 as? RLError, .missingInput(name: "refLogProbs", neededBy: "the KL penalty in the reward"))
        }
        // k1 = behav − ref per token: seq 0: −0.5 − (−1) = 0.5; seq 1: 0 + 0 = 0.
        // rewards 1 − 0.25 = 0.75 and 1; mean 0.875 → Â = [−0.125, 0.125].
        let prep = try RLObjective.prepare(b, config: config, refLogProbs: [-1, -1, -2])
        assertClose(prep.sequenceRewards, [0.75, 1])
        assertClose(prep.advantages, [-0.125, 0.125, 0.125])
        XCTAssertEqual(prep.groups?.zeroStdGroupCount, 0)
    }

    func testPPOWithValueModel() throws {
        let b = try batch()
        let config = RLAlgorithmConfig(algorithm: .ppo, gamma: 1, lambda: 1, valueClip: 0.2, whitenAdvantages: false)
        XCTAssertThrowsError(try RLObjective.prepare(b, config: config)) {
            XCTAssertEqual($0 as? RLError, .missingInput(name: "values", neededBy: "PPO's GAE"))
        }
        let values: [Float] = [0.25, 0.5, 0.25]
        let prep = try RLObjective.prepare(b, config: config, values: values)
        // γ = λ = 1: Â_t = (sum of later rewards) − V_t: seq 0: 1 − 0.25; seq 1: 0 − 0.5, 0 − 0.25.
        assertClose(prep.advantages, [0.75, -0.5, -0.25])
        assertClose(prep.returns ?? [], [1, 0, 0])
        let out = try RLObjective.evaluate(b, prepared: prep, outputs: PolicyOutputs(logProbs: b.behaviourLogProbs, values: [0.3, 0.5, 0.25]), config: config)
        // Value loss, token-mean: ½(0.3−1)² + ½(0.5)² + ½(0.25)² = 0.245 + 0.125 + 0.03125 = 0.40125, /3 = 0.13375;
        // dV = (V − R)/3 = [−0.2333333, 0.1666667, 0.0833333]. Policy: −(0.75 − 0.5 − 0.25)/3 = 0.
        let v = try XCTUnwrap(out.value)
        XCTAssertEqual(v.loss, 0.13375, accuracy: 1e-6)
        assertClose(v.dValues, [-0.7 / 3, 0.5 / 3, 0.25 / 3])
        XCTAssertEqual(out.totalLoss, 0.13375, accuracy: 1e-6)
        XCTAssertThrowsError(try RLObjective.evaluate(b, prepared: prep, outputs: PolicyOutputs(logProbs: b.behaviourLogProbs), config: config))
    }

    func testBatchValidation() {
        XCTAssertThrowsError(try RolloutBatch(promptTokens: [[1]], completionTokens: [[2, 3]], behaviourLogProbs: [-1], rewards: [1], groupIDs: [0])) {
            XCTAssertEqual($0 as? RLError, .countMismatch(name: "behaviourLogProbs", expected: 2, found: 1))
        }
        XCTAssertThrowsError(try RolloutBatch(promptTokens: [[1]], completionTokens: [[2]], behaviourLogProbs: [-1], rewards: [.nan], groupIDs: [0]))
    }
}
