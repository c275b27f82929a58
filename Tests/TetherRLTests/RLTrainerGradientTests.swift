import TetherKernels
import TetherModel
import TetherRL
import TetherTestSupport
import XCTest

/// The full RL losses THROUGH THE MODEL against central finite differences: sampled rollouts,
/// advantages, the clipped surrogate, the k3 KL to a reference, the entropy bonus (GRPO) and the
/// critic's clipped value loss (PPO), all differentiated by the trainer's own
/// `lossAndGradients` → `backward(dLogProbs:dEntropy:)` / `backward(dHiddenStates:)`.
final class RLTrainerGradientTests: XCTestCase {
    static let config = LlamaConfig(vocabSize: 11, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                    intermediateSize: 24, maxPositionEmbeddings: 24)

    /// A rollout from the trainer itself (ragged: token 2 stops a completion), with behaviour
    /// log-probs nudged off the current policy so the importance ratios differ from 1 (but stay
    /// inside the clip range, away from its kinks).
    func makeBatch(_ trainer: RLTrainer) throws -> RolloutBatch {
        let prompts = [RLPrompt(tokens: [1, 4, 7]), RLPrompt(tokens: [1, 9]), RLPrompt(tokens: [1, 3, 3, 5])]
        let (sampled, _) = try trainer.rollout(prompts: prompts) { i, c in
            RLScore(reward: Float(c.count) * 0.25 + Float(c.first ?? 0) * 0.1 + Float(i))
        }
        var rng = SeededRandom(seed: 77)
        let nudged = sampled.behaviourLogProbs.map { $0 + Float(rng.nextNormal() * 0.04) }
        return try RolloutBatch(promptTokens: sampled.promptTokens, completionTokens: sampled.completionTokens,
                                behaviourLogProbs: nudged, rewards: sampled.rewards, groupIDs: sampled.groupIDs)
    }

    func checkGradients(of model: (name: String, parameters: FloatBuffer, gradients: [Float], layout: ParameterLayout?),
                        loss: () throws -> Double, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let tensors: [(name: String, offset: Int, count: Int)] = model.layout?.entries.map { ($0.name, $0.offset, $0.count) }
            ?? [(model.name, 0, model.parameters.count)]
        return try checkParameterGradients(model.name, parameters: model.parameters.pointer, gradients: model.gradients,
                                           tensors: tensors, spread: 2, scaleFloor: 1e-4, relativeTolerance: 0.03,
                                           file: file, line: line, loss: loss)
    }

    func testGRPOLossGradientThroughTheModel() throws {
        let policy = try LlamaModel(config: Self.config, seed: 3, std: 0.3)
        let reference = try LlamaModel(config: Self.config, seed: 4, std: 0.3)
        let algorithm = RLAlgorithmConfig(algorithm: .grpo, kl: KLPenalty(beta: 0.3, estimator: .k3), entropyCoefficient: 0.05)
        let options = RLTrainerOptions(algorithm: algorithm, groupSize: 4, maxNewTokens: 5,
                                       sampling: SamplingParameters(temperature: 1, eosTokenId: 2), seed: 5)
        let trainer = try RLTrainer(policy: policy, reference: reference, options: options)
        let batch = try makeBatch(trainer)
        XCTAssertGreaterThan(Set(batch.completionTokens.map(\.count)).count, 1, "want ragged completions")
        let ref = try trainer.completionLogProbs(of: reference, batch)
        let prepared = try RLObjective.prepare(batch, config: algorithm, refLogProbs: ref)
        XCTAssertTrue(prepared.advantages.contains { abs($0) > 0.1 })

        policy.zeroGradients()
        let out = try trainer.lossAndGradients(batch, prepared: prepared, refLogProbs: ref)
        XCTAssertGreaterThan(out.policy.diagnostics.refKL ?? 0, 0.01, "the reference differs: KL must be exercised")
        XCTAssertEqual(out.policy.diagnostics.clipFraction, 0, "stay away from the clip's kinks")
        XCTAssertNotNil(out.dEntropy)
        let analytic = policy.gradients.toArray()
        let n = try checkGradients(of: ("policy", policy.parameters, analytic, policy.layout)) {
            Double(try trainer.lossAndGradients(batch, prepared: prepared, refLogProbs: ref, backward: false).totalLoss)
        }
        XCTAssertEqual(n, 3 * policy.layout.entries.count)
    }

    func testPPOLossGradientThroughPolicyAndCritic() throws {
        let policy = try LlamaModel(config: Self.config, seed: 6, std: 0.3)
        let reference = try LlamaModel(config: Self.config, seed: 7, std: 0.3)
        let critic = ScalarHeadModel(backbone: try LlamaModel(config: Self.config, seed: 8, std: 0.3), seed: 9, std: 0.5)
        let algorithm = RLAlgorithmConfig(algorithm: .ppo, kl: KLPenalty(beta: 0.1, estimator: .k3, placement: .reward),
                                          entropyCoefficient: 0.02, lambda: 0.9, valueClip: 0.2)
        let coef: Float = 0.5
        let options = RLTrainerOptions(algorithm: algorithm, groupSize: 2, maxNewTokens: 5,
                                       sampling: SamplingParameters(temperature: 1, eosTokenId: 2), valueCoefficient: coef, seed: 10)
        let trainer = try RLTrainer(policy: policy, reference: reference, critic: critic, options: options)
        let batch = try makeBatch(trainer)
        let ref = try trainer.completionLogProbs(of: reference, batch)
        let values = try trainer.completionValues(of: critic, batch)
        // Values recorded at preparation sit off the current ones (as after an earlier minibatch),
        // by less than the value clip, so the loss is smooth where it is probed.
        var rng = SeededRandom(seed: 11)
        let old = values.map { $0 + Float(rng.nextNormal() * 0.03) }
        let prepared = try RLObjective.prepare(batch, config: algorithm, refLogProbs: ref, values: old)

        policy.zeroGradients()
        critic.zeroGradients()
        let out = try trainer.lossAndGradients(batch, prepared: prepared, refLogProbs: ref)
        XCTAssertNotNil(out.value)
        XCTAssertEqual(out.value!.clipFraction, 0)
        func total() throws -> Double {
            let o = try trainer.lossAndGradients(batch, prepared: prepared, refLogProbs: ref, backward: false)
            return Double(o.policy.loss) + Double(coef) * Double(o.value!.loss)
        }
        var n = try checkGradients(of: ("policy", policy.parameters, policy.gradients.toArray(), policy.layout), loss: total)
        n += try checkGradients(of: ("critic", critic.backbone.parameters, critic.backbone.gradients.toArray(), critic.backbone.layout), loss: total)
        n += try checkGradients(of: ("critic head", critic.head, critic.headGradient.toArray(), nil), loss: total)
        XCTAssertEqual(n, 3 * (2 * policy.layout.entries.count + 1))
        // The policy's lm_head feeds the loss; the critic's does not (its head replaces it).
        XCTAssertTrue(critic.backbone.gradient("lm_head.weight")!.allSatisfy { $0 == 0 })
    }
}
