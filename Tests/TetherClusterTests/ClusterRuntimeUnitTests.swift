import Foundation
import TetherCluster
import TetherModel
import TetherRL
import TetherRewards
import TetherWire
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
        for bad in ["arithmetc", "arithmetic:x", "sequence:", "sequence:word"] {
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
        config.task.name = "arithmetic:2"
        let task = try RunTask(config: config)
        let heldOut = try task.heldOutPrompts(count: 200)
        XCTAssertEqual(heldOut.count, Set(heldOut.map(\.prompt)).count, "each problem once")
        XCTAssertEqual(heldOut.count, 200)
        XCTAssertTrue(heldOut.allSatisfy { DatasetSplit.of(task: $0.task, prompt: $0.prompt) == .heldout })
        XCTAssertTrue(Set(heldOut.map(\.prompt)).isDisjoint(with: task.trainPrompts.map(\.prompt)))
        XCTAssertEqual(try RunTask(config: config).heldOutPrompts(count: 200), heldOut, "deterministic from the config")
        XCTAssertEqual(try task.heldOutPrompts(count: 5), Array(heldOut.prefix(5)))
        // One-digit addition: its held-out sums, each once (fewer than asked), none of them trained on.
        config.task.name = "arithmetic:1"
        let small = try RunTask(config: config)
        let smallHeldOut = try small.heldOutPrompts(count: 200)
        XCTAssertEqual(Set(smallHeldOut.map(\.prompt)).count, smallHeldOut.count, "each held-out sum once")
        XCTAssertGreaterThan(smallHeldOut.count, 5)
        XCTAssertLessThan(smallHeldOut.count, 100)
        XCTAssertTrue(Set(smallHeldOut.map(\.prompt)).isDisjoint(with: small.trainPrompts.map(\.prompt)))

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
        config.task.name = "arithmetic:3"
        config.task.rlPrompts = .train
        let trainOnly = try RunTask(config: config, trainPromptCount: 200)
        config.task.rlPrompts = .trainAndSFT
        let widened = try RunTask(config: config, trainPromptCount: 200)
        func splits(_ t: RunTask) -> Set<DatasetSplit> { Set(t.trainPrompts.map { DatasetSplit.of(task: $0.task, prompt: $0.prompt) }) }
        XCTAssertEqual(splits(trainOnly), [.train])
        XCTAssertEqual(splits(widened), [.train, .sft])
        XCTAssertGreaterThan(Set(widened.trainPrompts.map(\.prompt)).count, Set(trainOnly.trainPrompts.map(\.prompt)).count)
    }

    static let tinyModel = LlamaConfig(vocabSize: 16, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32,
                                       maxPositionEmbeddings: 32)

    /// One group of the wire format, as an actor sends it.
    /// `correctComponents`: each sample also carries a `correct` component equal to its reward (an
    /// exact-answer verifier's breakdown); without it the samples have no notion of correct.
    static func trajectories(prompt: [Int], completions: [[Int]], behaviour: [[Float]], rewards: [Double], version: UInt64 = 0,
                             correctComponents: Bool = false) -> TrajectoryGroup {
        TrajectoryGroup(ticketId: 1, actorId: "a", promptId: "p", promptTokens: prompt.map { UInt32($0) }, samples: zip(completions, zip(behaviour, rewards)).map { c, br in
            TrajectorySample(completionTokens: c.map { UInt32($0) }, behaviourLogProbs: br.0, tokenVersions: c.map { _ in version }, reward: br.1,
                             rewardComponents: correctComponents ? [TetherWire.RewardComponent(name: "correct", value: br.1)] : [])
        })
    }

    /// Per-sequence sums of a flat per-token array.
    static func sums(_ flat: [Float], _ layout: SequenceLayout) -> [Double] {
        (0..<layout.sequenceCount).map { s in layout.range(of: s).reduce(0.0) { $0 + Double(flat[$1]) } }
    }

    /// One learner update moves probability toward the rewarded completion of a group and away
    /// from the others (GRPO's sign, the completion-token positions and the backward all agree).
    func testLearnerUpdateFavoursTheRewardedCompletion() throws {
        var config = RunConfig()
        config.learner.learningRate = 3e-3
        config.algorithm.klBeta = 0
        let model = try LlamaModel(config: Self.tinyModel, seed: 7)
        let update = try PolicyUpdate(policy: model, reference: nil, options: config.rlOptions(eosTokenId: nil, synchronous: false))
        let completions = [[3, 4, 2], [7, 7, 2], [11, 2], [6, 8, 9, 2]]
        var batch = try RolloutBatch(trajectories: Self.trajectories(prompt: [1, 5, 9], completions: completions, behaviour: completions.map { $0.map { _ in 0 } },
                                                                     rewards: [1, 0, 0, 0], correctComponents: true), group: 0)
        let before = try update.completionLogProbs(of: model, batch)
        batch.behaviourLogProbs = before
        for _ in 0..<3 { _ = try update.step(batch) }
        let after = try update.completionLogProbs(of: model, batch)
        let gain = zip(Self.sums(before, batch.layout), Self.sums(after, batch.layout)).map { $1 - $0 }
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
        let model = try LlamaModel(config: Self.tinyModel, seed: 7)
        let update = try PolicyUpdate(policy: model, reference: nil, options: config.rlOptions(eosTokenId: nil, synchronous: false))
        let completions = [[3, 4, 2], [7, 7, 2], [11, 2], [6, 8, 9, 2]]
        var batch = try RolloutBatch(trajectories: Self.trajectories(prompt: [1, 5, 9], completions: completions, behaviour: completions.map { $0.map { _ in 0 } },
                                                                     rewards: [1, 0, 0, 0], correctComponents: true), group: 0)
        batch.behaviourLogProbs = try update.completionLogProbs(of: model, batch)
        var failure: NonFiniteUpdate?
        for _ in 0..<5 where failure == nil {
            do { _ = try update.step(batch) } catch let e as NonFiniteUpdate { failure = e }
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
        let reference = try LlamaModel(config: Self.tinyModel, seed: 3)
        func policy() throws -> LlamaModel { try LlamaModel(config: Self.tinyModel, seed: 7) }
        let groups: [RolloutBatch] = try (0..<5).map { g in
            let completions = (0..<4).map { i in [(3 + i + g) % 16, (i * 5) % 16, 2] }
            return try RolloutBatch(trajectories: Self.trajectories(prompt: [1, 2 + g, 9], completions: completions,
                                                                    behaviour: completions.map { _ in [-1.1, -0.7, -2.0] },
                                                                    rewards: (0..<4).map { $0 == g % 4 ? 1 : 0 }, correctComponents: true), group: g)
        }
        let scorer = try ReferenceScorer<Int>(reference: reference, groupsPerForward: 2, microBatchTokens: 12)
        defer { scorer.stop() }
        for (g, batch) in groups.enumerated() { scorer.submit(g, group: batch) }
        let deadline = Date().addingTimeInterval(30)
        while scorer.backlog > 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(scorer.backlog, 0)

        var precomputed: [RolloutBatch] = []
        for (g, batch) in groups.enumerated() {
            let ref = try XCTUnwrap(scorer.take(g), "group \(g) not scored")
            XCTAssertNil(scorer.take(g), "a group is handed out once")
            // Batched with another group here, alone there: equal up to GEMM blocking order.
            for (x, y) in zip(ref.flatMap { $0 }, try PolicyUpdate.completionLogProbs(of: reference, batch, microBatchTokens: 1000)) {
                XCTAssertEqual(x, y, accuracy: 1e-5)
            }
            var fed = batch
            fed.referenceLogProbs = ref
            precomputed.append(fed)
        }
        XCTAssertNil(scorer.take(99))

        let a = try policy(), b = try policy()
        let options = config.rlOptions(eosTokenId: nil, synchronous: false)
        let own = try PolicyUpdate(policy: a, reference: reference, options: options).step(try RolloutBatch(concatenating: groups))
        let fed = try PolicyUpdate(policy: b, reference: reference, options: options).step(try RolloutBatch(concatenating: precomputed))
        XCTAssertEqual(own.precomputedReferenceSamples, 0)
        XCTAssertEqual(fed.precomputedReferenceSamples, 20)
        XCTAssertEqual(own.loss, fed.loss, accuracy: 1e-6)
        XCTAssertEqual(own.kl!, fed.kl!, accuracy: 1e-6)
        XCTAssertGreaterThan(own.kl!, 0)
        XCTAssertEqual(own.gradientNorm, fed.gradientNorm, accuracy: 1e-5)
        XCTAssertEqual(own.accuracy!, 5.0 / 20.0, accuracy: 1e-12, "one rewarded sample per group counts as correct")
        XCTAssertGreaterThan(zip(a.parameters.buffer, try policy().parameters.buffer).map { abs($0 - $1) }.max()!, 1e-5, "the step moved nothing")
        XCTAssertLessThan(zip(a.parameters.buffer, b.parameters.buffer).map { abs($0 - $1) }.max()!, 1e-6)
    }

    /// The same rollout trained by `tether train`'s path (RLTrainer's sample → score → update) and
    /// by the cluster's (trajectory groups off the wire → the learner's conversion → the update, with
    /// the options the learner maps from the same config) gives bit-identical weights.
    func testSingleProcessAndClusterPathsTrainIdentically() throws {
        var config = RunConfig()
        config.learner.learningRate = 1e-2
        config.algorithm.klBeta = 0.05
        config.algorithm.minibatches = 2
        config.algorithm.epochsPerBatch = 2
        config.rollout.groupSize = 4
        config.rollout.maxNewTokens = 4
        config.staleness.offPolicyCorrection = .none
        config.learner.microBatchTokens = 20
        let start = try LlamaModel(config: Self.tinyModel, seed: 11, std: 0.2)
        func copy() throws -> LlamaModel { let m = try LlamaModel(config: Self.tinyModel); m.copyParameters(from: start); return m }

        let trainer = try RLTrainer(policy: try copy(), reference: start, options: config.rlOptions(eosTokenId: 2, synchronous: true))
        let prompts = [[1, 5], [1, 7, 3], [1, 9]].map { RLPrompt(tokens: $0) }
        let scorer: RLScorer = { i, c in RLScore(reward: Float(c.filter { $0 == 6 + i }.count), correct: c.first == 6 + i) }
        let batch = try trainer.rollout(prompts: prompts, scorer: scorer)
        let single = try trainer.update.step(batch)

        // The actor's view of the same samples: one wire group per prompt.
        let groups = try (0..<prompts.count).map { g -> RolloutBatch in
            let members = batch.groupIDs.indices.filter { batch.groupIDs[$0] == g }
            let wire = Self.trajectories(prompt: prompts[g].tokens, completions: members.map { batch.completionTokens[$0] },
                                         behaviour: members.map { Array(batch.behaviourLogProbs[batch.layout.range(of: $0)]) },
                                         rewards: members.map { Double(batch.rewards[$0]) })
            return try RolloutBatch(trajectories: wire, group: g)
        }
        let learner = try copy()
        let cluster = try PolicyUpdate(policy: learner, reference: start, options: config.rlOptions(eosTokenId: nil, synchronous: false))
            .step(try RolloutBatch(concatenating: groups))

        XCTAssertEqual(single.optimizerSteps, 4)
        XCTAssertEqual(cluster.optimizerSteps, 4)
        XCTAssertEqual(single.loss, cluster.loss)
        XCTAssertEqual(single.gradientNorm, cluster.gradientNorm)
        XCTAssertGreaterThan(zip(trainer.policy.parameters.buffer, start.parameters.buffer).map { abs($0 - $1) }.max()!, 1e-4, "the step moved nothing")
        XCTAssertEqual(trainer.policy.parameters.toArray(), learner.parameters.toArray(), "the two paths trained different weights")
    }

    /// The cluster learner trains no value model: `algorithm.name: ppo` is a validation error
    /// naming the key, not a silent switch to another estimator.
    func testClusterRejectsPPOByValidation() throws {
        var config = RunConfig()
        config.algorithm.name = .ppo
        XCTAssertNoThrow(try config.validate(), "tether train runs ppo")
        XCTAssertThrowsError(try config.validateForCluster()) { error in
            guard case ConfigError.invalidValue(let path, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "algorithm.name")
            XCTAssertTrue(reason.contains("value model"), reason)
        }
    }
}
