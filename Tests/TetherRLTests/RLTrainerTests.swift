import TetherKernels
import TetherModel
import TetherRL
import XCTest

/// The trainer's loop on a task a tiny model can learn in a few seconds, and its refusal to train
/// on rewards that cannot be trusted.
final class RLTrainerTests: XCTestCase {
    static let config = LlamaConfig(vocabSize: 12, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                    intermediateSize: 64, maxPositionEmbeddings: 16)
    static let target = 7

    /// Reward: the fraction of the (up to 4) completion tokens equal to `target`. A random policy
    /// scores about 1/12; the policy has to move probability mass onto one token.
    static func reward(_ tokens: [Int]) -> RLScore {
        let hits = tokens.filter { $0 == target }.count
        return RLScore(reward: Float(hits) / 4, correct: hits == 4)
    }

    func makeTrainer(_ algorithm: RLAlgorithmConfig, critic: Bool = false) throws -> RLTrainer {
        let policy = try LlamaModel(config: Self.config, seed: 21)
        let reference = try LlamaModel(config: Self.config)
        reference.copyParameters(from: policy)
        let criticModel = critic ? ScalarHeadModel(backbone: try LlamaModel(config: Self.config, seed: 22), std: 0) : nil
        let options = RLTrainerOptions(algorithm: algorithm, groupSize: 8, maxNewTokens: 4, epochsPerBatch: 1, minibatches: 2,
                                       learningRate: 3e-3, seed: 1)
        return try RLTrainer(policy: policy, reference: reference, critic: criticModel, options: options)
    }

    func runAndMeasure(_ trainer: RLTrainer, steps: Int) throws -> (first: Double, last: Double, metrics: [PolicyUpdateMetrics]) {
        let prompts = (0..<4).map { RLPrompt(tokens: [1, 3 + $0]) }
        var history: [PolicyUpdateMetrics] = []
        for _ in 0..<steps {
            history.append(try trainer.step(prompts: prompts) { _, c in Self.reward(c) })
        }
        let first = history.prefix(3).map(\.rewardMean).reduce(0, +) / 3
        let last = history.suffix(3).map(\.rewardMean).reduce(0, +) / 3
        return (first, last, history)
    }

    func testGRPORaisesRewardOnAnEasyTask() throws {
        let trainer = try makeTrainer(.referenceGRPO)
        let (first, last, history) = try runAndMeasure(trainer, steps: 30)
        XCTAssertLessThan(first, 0.3, "a random policy rarely emits the target")
        XCTAssertGreaterThan(last, first + 0.4, "GRPO should learn to emit token \(Self.target): rewards \(history.map(\.rewardMean))")
        XCTAssertEqual(trainer.step, 30)
        XCTAssertEqual(trainer.optimizer.step, 60, "two minibatches per step")
        for m in history {
            XCTAssertTrue(m.kl! >= 0 && m.kl! < 5, "KL to the reference stays sane: \(m.kl!)")
            XCTAssertTrue(m.entropy.isFinite && m.entropy >= 0)
            XCTAssertGreaterThan(m.effectiveSampleFraction, 0.5)
        }
        XCTAssertGreaterThan(history.last!.accuracy!, history.first!.accuracy!)
    }

    func testPPORaisesRewardOnAnEasyTask() throws {
        let ppo = RLAlgorithmConfig(algorithm: .ppo, kl: KLPenalty(beta: 0.01, estimator: .k1, placement: .reward))
        let trainer = try makeTrainer(ppo, critic: true)
        let (first, last, history) = try runAndMeasure(trainer, steps: 30)
        XCTAssertGreaterThan(last, first + 0.3, "PPO should learn to emit token \(Self.target): rewards \(history.map(\.rewardMean))")
        XCTAssertNotNil(history.last!.valueLoss)
    }

    func testNaNRewardIsRejectedAndNotTrainedOn() throws {
        let trainer = try makeTrainer(.referenceGRPO)
        let before = trainer.policy.parameters.toArray()
        let prompts = [RLPrompt(tokens: [1, 3]), RLPrompt(tokens: [1, 4])]
        XCTAssertThrowsError(try trainer.step(prompts: prompts) { i, c in
            i == 1 ? RLScore(reward: .nan) : Self.reward(c)
        }) { error in
            guard case RLError.nonFinite(let name, let index, let value) = error else { return XCTFail("unexpected error \(error)") }
            XCTAssertEqual(name, "rewards")
            XCTAssertEqual(index, 8, "the first completion of the second prompt")
            XCTAssertTrue(value.isNaN)
            XCTAssertTrue("\(error)".contains("must be finite"), "\(error)")
        }
        XCTAssertEqual(trainer.policy.parameters.toArray(), before, "no update from a batch with a NaN reward")
        XCTAssertEqual(trainer.step, 0)
        XCTAssertEqual(trainer.optimizer.step, 0)
        // An infinite reward too.
        XCTAssertThrowsError(try trainer.step(prompts: prompts) { _, _ in RLScore(reward: .infinity) })
    }
}
