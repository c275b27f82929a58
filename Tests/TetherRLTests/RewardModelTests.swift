import Foundation
import TetherKernels
import TetherModel
import TetherRL
import TetherRewards
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
        let g = model.backbone.gradients.toArray(), gh = model.headGradient.toArray()
        let eps: Float = 1e-2
        func check(_ p: UnsafeMutablePointer<Float>, _ analytic: Float, _ what: String, scale: Float) throws {
            let saved = p.pointee
            p.pointee = saved + eps; let lp = try trainer.loss(data, backward: false).loss
            p.pointee = saved - eps; let lm = try trainer.loss(data, backward: false).loss
            p.pointee = saved
            let fd = (lp - lm) / Double(2 * eps)
            XCTAssertLessThan(abs(fd - Double(analytic)), 0.03 * Double(scale) + 0.03 * abs(fd), "\(what): fd \(fd) vs backward \(analytic)")
        }
        for e in model.backbone.layout.entries where e.name != "lm_head.weight" {
            let scale = max((0..<e.count).map { abs(g[e.offset + $0]) }.max()!, 1e-4)
            let top = (0..<e.count).max { abs(g[e.offset + $0]) < abs(g[e.offset + $1]) }!
            for i in [top, (7919 + 13) % e.count] {
                try check(model.backbone.parameters.pointer + e.offset + i, g[e.offset + i], "\(e.name)[\(i)]", scale: scale)
            }
        }
        let hs = gh.map(abs).max()!
        for i in [0, 5, 11] { try check(model.head.pointer + i, gh[i], "score.weight[\(i)]", scale: hs) }
        XCTAssertTrue(model.backbone.gradient("lm_head.weight")!.allSatisfy { $0 == 0 })
    }

    /// The bar: ≥ 90 % held-out pair accuracy on the synthetic arithmetic preferences
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
        // task's train split), whose hidden states already carry what the answer should be.
        let backbone = try LlamaModel(config: config, seed: 0)
        let sft = try (TaskDataset.sft(task, split: .sft, count: 1200, seed: 0) + TaskDataset.sft(task, split: .train, count: 800, seed: 0)).map {
            try SFTSequence(TetherRL.SFTExample(prompt: $0.prompt, completion: $0.completion), tokenizer: .standard)
        }
        _ = try SFTTrainer(model: backbone, options: SFTOptions(steps: 300, batchSize: 32, learningRate: 3e-3, seed: 0)).train(sft)
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
        let dir = NSTemporaryDirectory() + "tether-rm-\(getpid())-\(UUID().uuidString.prefix(8))"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
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
