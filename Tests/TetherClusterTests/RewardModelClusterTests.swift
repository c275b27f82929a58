import Foundation
import TetherCluster
import TetherModel
import TetherRL
import TetherRewards
import TetherTestSupport
import XCTest

/// `task.reward: reward_model` in the cluster: actors score with a trained Bradley–Terry model
/// beside the format and length terms, and every sample carries the reward model's checksum as its
/// reward version.
final class RewardModelClusterTests: XCTestCase {
    /// The harness's toy policy shape over the character vocabulary: the reward model reads the same tokens.
    static func toyArchitecture() -> LlamaConfig {
        LlamaConfig(vocabSize: 64, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2,
                    intermediateSize: 64, maxPositionEmbeddings: 64,
                    bosTokenId: CharTokenizer.standard.bosId, eosTokenId: CharTokenizer.standard.eosId)
    }

    /// A reward model trained for `steps` Bradley–Terry steps to prefer the right sum over a wrong
    /// one on `task`'s training prompts, written to `directory`; returns its held-out-free pair accuracy.
    @discardableResult
    static func trainRewardModel(task: RunTask, directory: URL, steps: Int) throws -> Double {
        let tok = Tokenizer.standard
        let pairs = try task.trainPrompts.prefix(64).map { p in
            let prompt = try tok.taskPromptIds(p.prompt)
            return PreferencePair(chosen: prompt + (try tok.completionIds(p.answer)),
                                  rejected: prompt + (try tok.completionIds(String(Int(p.answer)! + 3))))
        }
        let model = ScalarHeadModel(backbone: try LlamaModel(config: toyArchitecture(), seed: 5), seed: 5)
        let trainer = RewardModelTrainer(model: model, options: RewardModelOptions(steps: steps, batchSize: 16, learningRate: 3e-3, seed: 5),
                                         padToken: tok.paddingId)
        try trainer.train(Array(pairs))
        try model.save(to: directory.path, tokenizer: tok)
        return try trainer.evaluate(Array(pairs)).accuracy
    }

    /// The actor's scorer: R = r_φ + w_format·format + w_length·length with the exact-answer check at
    /// weight 0 beside them (so `correct` still reaches the learner); the reward model's score is
    /// the one `RewardModelScorer` gives; the version names the checkpoint and the verifier terms
    /// and changes when either does; a NaN score is a typed error, never a reward.
    func testRewardModelScorerAddsFormatAndLengthAndVersionsTheCheckpoint() throws {
        let dir = URL(fileURLWithPath: try makeTemporaryDirectory(self, "tether-rm-scorer"))
        var config = RunConfig()
        config.task.name = "addition"
        config.task.maxPromptTokens = 16
        config.task.reward = .rewardModel
        config.task.formatWeight = 0.5
        config.task.lengthWeight = 0.25
        config.task.lengthMaxChars = 4
        config.task.lengthRampChars = 2
        let rmURL = dir.appendingPathComponent("rm")
        config.task.rewardModelPath = rmURL.path
        let task = try RunTask(config: config, trainPromptCount: 64)
        XCTAssertThrowsError(try RunScorer(task: task, config: config)) { e in
            guard case .invalidValue("task.reward_model_path", let why)? = e as? ConfigError else { return XCTFail("\(e)") }
            XCTAssertTrue(why.contains("does not exist"), why)
        }
        try Self.trainRewardModel(task: task, directory: rmURL, steps: 5)

        let scorer = try RunScorer(task: task, config: config)
        XCTAssertEqual(scorer.name, "reward_model")
        let p = task.prompt(for: 0)
        let texts = [p.answer, String(Int(p.answer)! + 1), "x" + p.answer + "yyy"]
        let completions = try texts.map { try task.tokenizer.completionIds($0) }
        let got = try scorer.score(completions: completions, for: p)
        let rm = try RewardModelScorer(directory: rmURL.path)
        let rmScores = try texts.map { try rm.score(completion: $0, for: p).reward }
        var spec = try config.task.rewardSpec()
        spec.correct = 0
        for (i, b) in got.enumerated() {
            XCTAssertEqual(b.components.map(\.name), ["reward_model", "correct", "format", "length"])
            XCTAssertEqual(b["reward_model"]!, rmScores[i], accuracy: 1e-5, "batched scoring differs from one at a time")
            XCTAssertEqual(b.components.map(\.weight), [1, 0, 0.5, 0.25])
            let verifier = try spec.makeVerifier().score(completion: texts[i], for: p)
            XCTAssertEqual(b.reward, rmScores[i] + verifier.reward, accuracy: 1e-5)
            XCTAssertEqual(b["correct"], i == 1 ? 0 : 1, "the last integer is the answer in all but the second")
        }
        XCTAssertLessThan(got[2]["length"]!, 0, "the overlong completion must carry its penalty")

        let version = scorer.version
        XCTAssertTrue(version.hasPrefix("reward_model-") && version.contains("+verifier-"), version)
        XCTAssertEqual(try RunScorer(task: task, config: config).version, version, "the same checkpoint and config give the same version")
        var otherWeight = config
        otherWeight.task.formatWeight = 1
        XCTAssertNotEqual(try RunScorer(task: task, config: otherWeight).version, version)
        let verifierOnly = try RunScorer(task: task, config: { var c = config; c.task.reward = .verifier; return c }())
        XCTAssertEqual(verifierOnly.version, task.rewardVersion)
        XCTAssertEqual(try verifierOnly.score(completions: completions, for: p), try completions.map { try task.score(completionTokens: $0, for: p) })

        // Retrained head: a new checksum, so a new version; a NaN head: an error naming the scorer.
        let (model, _) = try ScalarHeadModel.load(from: rmURL.path)
        model.head[0] += 0.5
        try model.writeHead(into: rmURL.path)
        let retrained = try RunScorer(task: task, config: config)
        XCTAssertNotEqual(retrained.version, version)
        XCTAssertEqual(retrained.version.split(separator: "+").last, version.split(separator: "+").last, "the verifier part is unchanged")
        for i in 0 ..< model.head.count { model.head[i] = .nan }
        try model.writeHead(into: rmURL.path)
        XCTAssertThrowsError(try RunScorer(task: task, config: config).score(completions: completions, for: p)) { e in
            guard case .nonFiniteReward(let v, _, _)? = e as? RewardError else { return XCTFail("\(e)") }
            XCTAssertEqual(v, "reward_model")
        }
    }

    /// Real processes: `tether launch` with `task.reward: reward_model` trains; each step's mean
    /// reward is the reward model's mean score (format and length at weight 0), and accuracy is
    /// still measured from the exact-answer component the actors send beside it.
    func testLaunchTrainsWithARewardModel() throws {
        let h = try ClusterHarness("launchrm")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 3)
        let rmURL = h.root.appendingPathComponent("rm")
        let task = try RunTask(config: try RunConfig.load(contentsOf: config), trainPromptCount: 64)
        let accuracy = try Self.trainRewardModel(task: task, directory: rmURL, steps: 30)
        XCTAssertGreaterThan(accuracy, 0.6, "the toy reward model did not learn to prefer right sums")
        let launch = try h.start("launch", executable: h.binary, ["launch", config.path, "--out", h.runDirectory.path, "--actors", "2",
                                                                  "--set", "task.reward=reward_model", "--set", "task.reward_model_path=\(rmURL.path)"])
        XCTAssertTrue(h.wait(launch, timeout: 180), h.allLogs())
        XCTAssertEqual(launch.terminationStatus, 0, h.log("launch"))
        let steps = h.metrics().filter { $0["reward/mean"] != nil }
        XCTAssertEqual(steps.count, 3, h.log("launch"))
        for s in steps {
            let reward = try XCTUnwrap(s.double("reward/mean"))
            let rm = try XCTUnwrap(s.double(MetricsRecord.Key.rewardModelScore), "no reward model score in \(s)")
            XCTAssertEqual(reward, rm, accuracy: 1e-4, "the reward is not the reward model's score")
            XCTAssertNotEqual(rm, 0, "an untouched zero head would score everything 0")
            let correct = try XCTUnwrap(s.double(MetricsRecord.Key.correctRate))
            XCTAssertTrue((0 ... 1).contains(correct))
        }

        // A missing reward model stops the launch before any process starts, naming the key.
        let missing = try h.start("launch-missing", executable: h.binary, ["launch", config.path, "--out", h.root.appendingPathComponent("run2").path,
                                                                           "--set", "task.reward=reward_model", "--set", "task.reward_model_path=\(h.root.path)/nope"])
        XCTAssertTrue(h.wait(missing, timeout: 60), h.allLogs())
        XCTAssertNotEqual(missing.terminationStatus, 0)
        XCTAssertTrue(h.log("launch-missing").contains("task.reward_model_path"), h.log("launch-missing"))
    }
}
