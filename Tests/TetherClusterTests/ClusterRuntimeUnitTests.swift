import Foundation
import TetherCluster
import TetherModel
import TetherRewards
import XCTest

/// The runtime's pure pieces, without processes.
final class ClusterRuntimeUnitTests: XCTestCase {
    func testWireTicketIDCarriesTheIncarnation() {
        let id = WireTicketID(incarnation: 0xDEAD_BEEF, ticket: 123_456)
        XCTAssertEqual(WireTicketID(raw: id.raw), id)
        XCTAssertNotEqual(WireTicketID(incarnation: 1, ticket: 7).raw, WireTicketID(incarnation: 2, ticket: 7).raw)
    }

    func testThreadBudgetSplitsCoresAndReportsOversubscription() {
        XCTAssertEqual(ClusterLauncher.threadBudget(cores: 2, processes: 3).threads, 1)
        XCTAssertTrue(ClusterLauncher.threadBudget(cores: 2, processes: 3).oversubscribed)
        XCTAssertEqual(ClusterLauncher.threadBudget(cores: 8, processes: 3).threads, 2)
        XCTAssertFalse(ClusterLauncher.threadBudget(cores: 8, processes: 3).oversubscribed)
    }

    /// `tether train` and the cluster resolve task names in one place: a level after a colon (or a
    /// dash, the older spelling) selects the same generator; unknown names and levels are errors
    /// naming `task.name`.
    func testTaskNamesResolveOneWayWithClearErrors() throws {
        var config = RunConfig()
        config.task.name = "arithmetic:1"
        let colon = try RunTask(config: config, trainPromptCount: 40)
        config.task.name = "arithmetic-1"
        let dash = try RunTask(config: config, trainPromptCount: 40)
        XCTAssertEqual(colon.trainPrompts.map(\.prompt), dash.trainPrompts.map(\.prompt))
        // Level 1 is one-digit addition: every prompt is "a+b=" with single digits.
        XCTAssertTrue(colon.trainPrompts.allSatisfy { $0.prompt.count == 4 && $0.prompt.contains("+") }, "\(colon.trainPrompts.prefix(3))")
        config.task.name = "arithmetic:3"
        XCTAssertNotEqual(try RunTask(config: config, trainPromptCount: 40).trainPrompts.map(\.prompt), colon.trainPrompts.map(\.prompt))
        XCTAssertNil(try RunTask.generator(named: "jsonl"))
        for bad in ["arithmetc", "arithmetic:x", "sequence:"] {
            XCTAssertThrowsError(try RunTask.generator(named: bad), bad) { error in
                guard case .invalidValue(let path, let reason)? = error as? ConfigError else { return XCTFail("\(bad): \(error)") }
                XCTAssertEqual(path, "task.name")
                XCTAssertTrue(reason.contains(bad), reason)
            }
        }
    }

    /// Learner and actors map a ticket's draw indices to the same prompts; each epoch visits
    /// every training prompt exactly once, in a different order.
    func testPromptDrawsAreSharedDeterministicAndCoverEachEpoch() throws {
        var config = RunConfig()
        config.task.name = "addition"
        config.run.seed = 3
        let learnerSide = try RunTask(config: config, trainPromptCount: 50)
        let actorSide = try RunTask(config: config, trainPromptCount: 50)
        let n = learnerSide.trainPrompts.count
        let epoch0 = (0..<n).map { learnerSide.prompt(for: $0).id }
        let epoch1 = (n..<2 * n).map { learnerSide.prompt(for: $0).id }
        XCTAssertEqual(epoch0, (0..<n).map { actorSide.prompt(for: $0).id })
        XCTAssertEqual(Set(epoch0).count, n)
        XCTAssertEqual(Set(epoch0), Set(epoch1))
        XCTAssertNotEqual(epoch0, epoch1)
        // The verifier scores the reference answer as correct and anything else as wrong.
        let p = learnerSide.prompt(for: 0)
        let tok = learnerSide.tokenizer
        XCTAssertEqual(try learnerSide.score(completionTokens: try tok.completionIds(p.answer), for: p).reward, 1)
        XCTAssertEqual(try learnerSide.score(completionTokens: try tok.encode(p.answer + "9", addSpecialTokens: false), for: p).reward, 0)
        // Held-out prompts are never training prompts.
        let heldOut = Set(try learnerSide.heldOutPrompts(count: 20).map(\.prompt))
        XCTAssertTrue(heldOut.isDisjoint(with: Set(learnerSide.trainPrompts.map(\.prompt))))
    }

    /// `tether train`, the learner, the actors and `tether eval --config` build one `RunTask` from a
    /// config: the held-out split is the distinct problems of the held-out hash bucket, each once
    /// however many are asked for, never a training prompt; for a JSONL task the file is split by
    /// the same hash, so no held-out line is trained on.
    func testHeldOutSplitIsDistinctDisjointAndTheSameForEveryDriver() throws {
        var config = RunConfig()
        config.task.name = "arithmetic:1"
        let task = try RunTask(config: config)
        let heldOut = try task.heldOutPrompts(count: 200)
        XCTAssertEqual(heldOut.count, Set(heldOut.map(\.prompt)).count, "each problem once")
        XCTAssertEqual(heldOut.count, 23, "one-digit addition has 23 held-out sums")
        XCTAssertTrue(heldOut.allSatisfy { DatasetSplit.of(task: $0.task, prompt: $0.prompt) == .heldout })
        XCTAssertTrue(Set(heldOut.map(\.prompt)).isDisjoint(with: task.trainPrompts.map(\.prompt)))
        XCTAssertEqual(try RunTask(config: config).heldOutPrompts(count: 200), heldOut, "deterministic from the config")
        XCTAssertEqual(try task.heldOutPrompts(count: 5), Array(heldOut.prefix(5)))

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tether-task-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        let lines = (0..<60).map { #"{"q":"\#($0)+1=","a":\#($0 + 1)}"# } + [#"{"q":"0+1=","a":1}"#]
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        config.task.name = "jsonl"
        config.task.datasetPath = file.path
        config.task.promptField = "q"
        config.task.answerField = "a"
        let jsonl = try RunTask(config: config)
        let jsonlHeldOut = try jsonl.heldOutPrompts(count: 100)
        XCTAssertFalse(jsonlHeldOut.isEmpty)
        XCTAssertTrue(Set(jsonlHeldOut.map(\.prompt)).isDisjoint(with: jsonl.trainPrompts.map(\.prompt)))
        XCTAssertEqual(Set(jsonlHeldOut.map(\.prompt)).union(jsonl.trainPrompts.map(\.prompt)).count, 60, "every line in one split")
        XCTAssertEqual(jsonlHeldOut.count, Set(jsonlHeldOut.map(\.prompt)).count)
    }

    /// `task.rl_prompts: train_and_sft` adds SFT-split problems to RL's prompts and still never a
    /// held-out one; `train` keeps RL on the train split alone.
    func testRLPromptSourceWidensToTheSFTSplitButNeverHeldOut() throws {
        var config = RunConfig()
        config.task.name = "arithmetic:1"
        config.task.rlPrompts = .train
        let trainOnly = try RunTask(config: config, trainPromptCount: 200)
        config.task.rlPrompts = .trainAndSFT
        let widened = try RunTask(config: config, trainPromptCount: 200)
        func splits(_ t: RunTask) -> Set<DatasetSplit> { Set(t.trainPrompts.map { DatasetSplit.of(task: $0.task, prompt: $0.prompt) }) }
        XCTAssertEqual(splits(trainOnly), [.train])
        XCTAssertEqual(splits(widened), [.train, .sft])
        XCTAssertGreaterThan(Set(widened.trainPrompts.map(\.prompt)).count, Set(trainOnly.trainPrompts.map(\.prompt)).count)
    }

    /// One learner update moves probability toward the rewarded completion of a group and away
    /// from the others (GRPO's sign, the completion-token positions and the backward all agree).
    func testLearnerUpdateFavoursTheRewardedCompletion() throws {
        var config = RunConfig()
        config.learner.learningRate = 3e-3
        config.algorithm.klBeta = 0
        let model = try LlamaModel(config: LlamaConfig(vocabSize: 16, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                                                       intermediateSize: 32, maxPositionEmbeddings: 32), seed: 7)
        let update = LearnerPolicyUpdate(model: model, reference: nil, config: config)
        let prompt = [1, 5, 9]
        let completions = [[3, 4, 2], [7, 7, 2], [11, 2], [6, 8, 9, 2]]
        var samples = completions.enumerated().map { i, c in
            LearnerPolicyUpdate.Sample(prompt: prompt, completion: c, behaviourLogProbs: [], reward: i == 0 ? 1 : 0, group: 0, version: 0)
        }
        let before = try update.completionLogProbs(samples)
        for i in samples.indices { samples[i].behaviourLogProbs = before[i] }
        for _ in 0..<3 { _ = try update.train(samples) }
        let after = try update.completionLogProbs(samples)
        let gain = zip(before, after).map { b, a in Double(a.reduce(0, +) - b.reduce(0, +)) }
        XCTAssertGreaterThan(gain[0], 0.05, "the rewarded completion did not become more likely: \(gain)")
        for i in 1..<gain.count { XCTAssertLessThan(gain[i], 0, "unrewarded completion \(i) became more likely: \(gain)") }
    }

    /// A step size the model cannot take (validation caps learner.learning_rate at 1; a diverging
    /// model can still get there) ends in a typed error naming the key, not in the objective's
    /// `logProbs[0] is -nan` one update later, and never in non-finite weights handed on.
    func testNonFiniteUpdateIsATypedErrorNamingTheLearningRate() throws {
        var config = RunConfig()
        config.learner.learningRate = 1e30
        config.algorithm.klBeta = 0
        let model = try LlamaModel(config: LlamaConfig(vocabSize: 16, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                                                       intermediateSize: 32, maxPositionEmbeddings: 32), seed: 7)
        let update = LearnerPolicyUpdate(model: model, reference: nil, config: config)
        var samples = [[3, 4, 2], [7, 7, 2], [11, 2], [6, 8, 9, 2]].enumerated().map { i, c in
            LearnerPolicyUpdate.Sample(prompt: [1, 5, 9], completion: c, behaviourLogProbs: [], reward: i == 0 ? 1 : 0, group: 0, version: 0)
        }
        let before = try update.completionLogProbs(samples)
        for i in samples.indices { samples[i].behaviourLogProbs = before[i] }
        var failure: NonFiniteUpdate?
        for _ in 0..<5 where failure == nil {
            do { _ = try update.train(samples) } catch let e as NonFiniteUpdate { failure = e }
        }
        var error = try XCTUnwrap(failure, "five updates at learning rate 1e30 stayed finite")
        error.version = 2
        XCTAssertTrue(error.description.hasPrefix("the update to version 2 produced a non-finite "), error.description)
        XCTAssertTrue(error.description.contains("learner.learning_rate 1e+30 too large"), error.description)
        XCTAssertTrue(error.description.contains("the last checkpoint is kept"), error.description)
    }

    /// The reference log-probs the scorer computes while groups wait are exactly the ones the step
    /// would compute itself, so a step fed them trains identically (same loss, KL, gradient norm and
    /// weights); a group the scorer has not reached is not waited for.
    func testPrecomputedReferenceLogProbsTrainExactlyLikeTheStepsOwn() throws {
        var config = RunConfig()
        config.learner.learningRate = 1e-3
        config.algorithm.klBeta = 0.1
        let shape = LlamaConfig(vocabSize: 16, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32, maxPositionEmbeddings: 32)
        let reference = try LlamaModel(config: shape, seed: 3)
        func policy() throws -> LlamaModel { try LlamaModel(config: shape, seed: 7) }
        let groups: [[LearnerPolicyUpdate.Sample]] = (0..<5).map { g in
            (0..<4).map { i in
                LearnerPolicyUpdate.Sample(prompt: [1, 2 + g, 9], completion: [(3 + i + g) % 16, (i * 5) % 16, 2],
                                           behaviourLogProbs: [-1.1, -0.7, -2.0], reward: i == g % 4 ? 1 : 0, group: g, version: 0)
            }
        }
        let scorer = try ReferenceScorer<Int>(reference: reference, groupsPerForward: 2)
        defer { scorer.stop() }
        for (g, samples) in groups.enumerated() { scorer.submit(g, samples: samples) }
        let deadline = Date().addingTimeInterval(30)
        while scorer.backlog > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(scorer.backlog, 0)

        var precomputed: [LearnerPolicyUpdate.Sample] = []
        for (g, samples) in groups.enumerated() {
            let ref = try XCTUnwrap(scorer.take(g), "group \(g) not scored")
            XCTAssertNil(scorer.take(g), "a group is handed out once")
            // Batched with another group here, alone there: equal up to GEMM blocking order.
            for (x, y) in zip(ref.flatMap { $0 }, try LearnerPolicyUpdate.completionLogProbs(samples, model: reference).flatMap { $0 }) {
                XCTAssertEqual(x, y, accuracy: 1e-5)
            }
            precomputed += samples.enumerated().map { i, s in var s = s; s.referenceLogProbs = ref[i]; return s }
        }
        XCTAssertNil(scorer.take(99))

        let a = try policy(), b = try policy()
        let own = try LearnerPolicyUpdate(model: a, reference: reference, config: config).train(groups.flatMap { $0 })
        let fed = try LearnerPolicyUpdate(model: b, reference: reference, config: config).train(precomputed)
        XCTAssertEqual(own.precomputedReferenceSamples, 0)
        XCTAssertEqual(fed.precomputedReferenceSamples, precomputed.count)
        XCTAssertEqual(own.loss, fed.loss, accuracy: 1e-6)
        XCTAssertEqual(own.kl, fed.kl, accuracy: 1e-6)
        XCTAssertGreaterThan(own.kl, 0)
        XCTAssertEqual(own.gradNorm, fed.gradNorm, accuracy: 1e-5)
        XCTAssertGreaterThan(zip(a.parameters.buffer, try policy().parameters.buffer).map { abs($0 - $1) }.max()!, 1e-5, "the step moved nothing")
        XCTAssertLessThan(zip(a.parameters.buffer, b.parameters.buffer).map { abs($0 - $1) }.max()!, 1e-6)
    }
}
