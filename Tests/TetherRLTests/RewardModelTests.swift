import Foundation
import TetherKernels
import TetherModel
import TetherRL
import TetherRewards
import TetherTestSupport
import XCTest

/// The Bradley–Terry reward model: its gradient through the scalar head and the backbone, its
/// held-out pair accuracy on the built-in synthetic preference set, and its use as a verifier.
final class RewardModelTests: XCTestCase {
    func pairs(_ examples: [PreferenceExample], _ tok: CharTokenizer) throws -> [PreferencePair] {
        try examples.map { e in
            let p = [tok.bosId] + (try tok.encode(e.prompt))
            return PreferencePair(chosen: p + (try tok.encode(e.chosen)) + [tok.eosId], rejected: p + (try tok.encode(e.rejected)) + [tok.eosId])
        }
    }

    func testBradleyTerryGradientAgainstFiniteDifferences() throws {
        let config = LlamaConfig(vocabSize: 64, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 24, maxPositionEmbeddings: 16)
        let model = ScalarHeadModel(backbone: try LlamaModel(config: config, seed: 1, std: 0.3), seed: 2, std: 0.5)
        let tok = CharTokenizer.standard
        let data = try pairs([PreferenceExample(prompt: "3+4=", chosen: "7", rejected: "12"),
                              PreferenceExample(prompt: "9+9=", chosen: "18", rejected: "1")], tok)
        let trainer = RewardModelTrainer(model: model, options: RewardModelOptions(), padToken: tok.padId)
        model.zeroGradients()
        _ = try trainer.loss(data, backward: true)
        let loss = { try trainer.loss(data, backward: false).loss }
        let backbone = model.backbone.layout.entries.filter { $0.name != "lm_head.weight" }.map { ($0.name, $0.offset, $0.count) }
        _ = try checkParameterGradients("reward model", parameters: model.backbone.parameters.pointer,
                                        gradients: model.backbone.gradients.toArray(), tensors: backbone, spread: 1,
                                        scaleFloor: 1e-4, relativeTolerance: 0.03, loss: loss)
        let head = model.headGradient.toArray()
        _ = try checkParameterGradients("reward model", parameters: model.head.pointer, gradients: head,
                                        tensors: [("score.weight", 0, head.count)], spread: 2, scaleFloor: 1e-4,
                                        relativeTolerance: 0.03, loss: loss)
        XCTAssertTrue(model.backbone.gradient("lm_head.weight")!.allSatisfy { $0 == 0 })
    }

    /// The bar the reward model must clear: ≥ 90 % held-out pair accuracy on the synthetic arithmetic preferences
    /// (one-digit addition; held-out problems are never seen in training), from a tiny SFT policy.
    func testRewardModelReachesNinetyPercentHeldOutPairAccuracy() throws {
        BLASThreads.set(1)
        let tok = CharTokenizer.standard
        let task = try ArithmeticTask.level(1)
        // Every problem outside the held-out split: the SFT and the RL-prompt parts.
        let trainExamples = try PreferenceDataset.synthetic(task, split: .sft, count: 1500, seed: 0)
            + PreferenceDataset.synthetic(task, split: .train, count: 900, seed: 0)
        let train = try pairs(trainExamples, tok)
        let heldOutExamples = try PreferenceDataset.synthetic(task, split: .heldout, count: 400, seed: 0)
        let heldOut = try pairs(heldOutExamples, tok)
        let trainPrompts = Set(trainExamples.map(\.prompt))
        XCTAssertTrue(heldOutExamples.allSatisfy { !trainPrompts.contains($0.prompt) }, "held-out problems are unseen")

        var config = LlamaConfig.tiny
        config.bosTokenId = tok.bosId; config.eosTokenId = tok.eosId
        // InstructGPT's recipe: the reward model starts from the SFT policy (a short SFT on the
        // task's train split), whose hidden states already carry what the answer should be. At 300 SFT
        // steps the held-out accuracy sat at the bar and fell to 0.8775 when the GEMM's rounding changed;
        // 500 steps make a backbone that clears it.
        let backbone = try LlamaModel(config: config, seed: 0)
        let sft = try (TaskDataset.sft(task, split: .sft, count: 1200, seed: 0) + TaskDataset.sft(task, split: .train, count: 800, seed: 0)).map {
            try SFTSequence(SFTExample(prompt: $0.prompt, completion: $0.completion), tokenizer: .standard)
        }
        _ = try SFTTrainer(model: backbone, options: SFTOptions(steps: 500, batchSize: 32, learningRate: 3e-3, seed: 0)).train(sft)
        let model = ScalarHeadModel(backbone: backbone, seed: 0)
        let trainer = RewardModelTrainer(model: model, options: RewardModelOptions(steps: 600, batchSize: 32, learningRate: 1e-3, seed: 0),
                                         padToken: tok.padId)
        let before = try trainer.evaluate(heldOut)
        try trainer.train(train)
        let after = try trainer.evaluate(heldOut)
        XCTAssertLessThan(before.accuracy, 0.7)
        XCTAssertGreaterThanOrEqual(after.accuracy, 0.9, "held-out pair accuracy \(after.accuracy) (before training \(before.accuracy))")

        // Saved beside a checkpoint and loaded back as a scorer, it ranks like the trained model and
        // serves as a Verifier.
        let dir = try makeTemporaryDirectory(self, "tether-rm") + "/rm"
        try model.save(to: dir, tokenizer: .standard)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + ScalarHeadModel.headFile))
        let scorer = try RewardModelScorer(directory: dir)
        let e = heldOutExamples[0]
        let prompt = TaskPrompt(id: "h0", task: "arithmetic", prompt: e.prompt, answer: e.chosen)
        let direct = try model.sequenceScores(TokenBatch(sequences: [heldOut[0].chosen, heldOut[0].rejected]))
        let chosen = try scorer.checkedScore(completion: e.chosen, for: prompt).reward
        let rejected = try scorer.checkedScore(completion: e.rejected, for: prompt).reward
        XCTAssertEqual(chosen, direct[0], accuracy: 1e-5)
        XCTAssertEqual(rejected, direct[1], accuracy: 1e-5)
        let verifier: any Verifier = scorer
        XCTAssertEqual(verifier.name, "reward_model")
    }
}
