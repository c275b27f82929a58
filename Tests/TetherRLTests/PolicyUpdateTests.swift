import TetherKernels
import TetherModel
import TetherRL
import TetherTestSupport
import XCTest

/// `PolicyUpdate.step` end to end: the weights it writes follow the finite-difference gradient of
/// its loss, and splitting minibatches into micro-batches changes nothing but memory.
final class PolicyUpdateTests: XCTestCase {
    static let config = LlamaConfig(vocabSize: 11, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                    intermediateSize: 24, maxPositionEmbeddings: 24)

    /// Three groups of four with ragged completions (one empty) of at most `longest` tokens and
    /// behaviour log-probs nudged off the policy (ratios ≠ 1, inside the clip range).
    func makeBatch(policy: LlamaModel, longest: Int = 5) throws -> RolloutBatch {
        let prompts = [[1, 4, 7], [1, 9], [1, 3, 3, 5]]
        var rng = SeededRandom(seed: 41)
        var promptTokens: [[Int]] = [], completions: [[Int]] = [], groups: [Int] = [], rewards: [Float] = []
        for (g, p) in prompts.enumerated() {
            for i in 0..<4 {
                let length = (g == 1 && i == 2) ? 0 : min(longest, 1 + (g + 2 * i) % 5)
                promptTokens.append(p)
                completions.append((0..<length).map { _ in Int(rng.next() % 11) })
                groups.append(g)
                rewards.append(Float(length) * 0.25 + Float(i % 2) + Float(g) * 0.1)
            }
        }
        let probe = try RolloutBatch(promptTokens: promptTokens, completionTokens: completions,
                                     behaviourLogProbs: [Float](repeating: 0, count: completions.reduce(0) { $0 + $1.count }),
                                     rewards: rewards, groupIDs: groups)
        let current = try PolicyUpdate.completionLogProbs(of: policy, probe, microBatchTokens: 1000)
        return try RolloutBatch(promptTokens: promptTokens, completionTokens: completions,
                                behaviourLogProbs: current.map { $0 + Float(rng.nextNormal() * 0.04) },
                                rewards: rewards, groupIDs: groups, correct: rewards.map { $0 >= 1 })
    }

    /// The batch of `makeBatch` with behaviour log-probs set off the policy by a fixed pattern of
    /// log-ratio offsets (±0.02, ±0.05 small, ±0.35 beyond every bound the corrections below use)
    /// and stale versions (groups 9, 7, 8 versions; the learner is at 10).
    func makeOffPolicyBatch(policy: LlamaModel) throws -> RolloutBatch {
        let b = try makeBatch(policy: policy)
        let current = try PolicyUpdate.completionLogProbs(of: policy, b, microBatchTokens: 1000)
        let offsets: [Float] = [0.02, -0.35, 0.05, -0.02, 0.35, -0.05]
        return try RolloutBatch(promptTokens: b.promptTokens, completionTokens: b.completionTokens,
                                behaviourLogProbs: current.indices.map { current[$0] + offsets[$0 % offsets.count] },
                                rewards: b.rewards, groupIDs: b.groupIDs, policyVersions: b.groupIDs.map { [9, 7, 8][$0] }, correct: b.correct)
    }

    /// With AdamW's ε large, its first step is Δθ = −lr·g/(|g| + ε), which inverts exactly to the
    /// gradient `step` applied: g = −sign(Δθ)·|Δθ|·ε/(lr − |Δθ|). That gradient must be the central
    /// finite difference of the loss of the batch through the model, with micro-batches of one or
    /// two sequences. π_prox (decoupled objectives, one optimizer step: π_θ's own log-probs) is a
    /// constant of the loss, so the difference quotient holds it at its value before the step.
    @discardableResult
    func assertStepFollowsFiniteDifferences(_ name: String, algorithm: RLAlgorithmConfig, batch make: (LlamaModel) throws -> RolloutBatch,
                                            file: StaticString = #filePath, line: UInt = #line) throws -> PolicyUpdateMetrics {
        let policy = try LlamaModel(config: Self.config, seed: 3, std: 0.3)
        let reference = try LlamaModel(config: Self.config, seed: 4, std: 0.3)
        let lr: Float = 1, epsilon: Float = 1000
        let options = RLTrainerOptions(algorithm: algorithm, learningRate: lr, adamW: AdamWHyperparameters(epsilon: epsilon, weightDecay: 0),
                                       maxGradientNorm: 1e9, microBatchTokens: 10)
        let update = try PolicyUpdate(policy: policy, reference: reference, options: options)
        let batch = try make(policy)
        XCTAssertGreaterThan(PolicyUpdate.microBatches(of: batch, tokens: 10, sharedPrompts: true).count, 4, "want several micro-batches",
                             file: file, line: line)

        let ref = update.needsReference ? try update.completionLogProbs(of: reference, batch) : nil
        var proximal: [Float]? = nil
        if case .decoupledPPO = algorithm.objective { proximal = try update.completionLogProbs(of: policy, batch) }
        let prepared = try RLObjective.prepare(batch, config: algorithm, refLogProbs: ref)
        func loss() throws -> Double {
            Double(try update.lossAndGradients(batch, prepared: prepared, refLogProbs: ref, proximalLogProbs: proximal, backward: false).totalLoss)
        }
        let before = policy.parameters.toArray()
        let metrics = try update.step(batch, learnerVersion: 10)
        XCTAssertEqual(metrics.optimizerSteps, 1, name, file: file, line: line)
        XCTAssertTrue(policy.holdsGradients, name, file: file, line: line)
        XCTAssertFalse(reference.holdsGradients, "\(name): the frozen reference needs no gradient buffer of its weights' size", file: file, line: line)
        let after = policy.parameters.toArray()
        _ = policy.parameters.buffer.update(from: before)

        let h: Float = 1e-2
        var checked = 0
        for e in policy.layout.entries {
            let applied = (0..<e.count).map { i -> Double in
                let d = Double(before[e.offset + i]) - Double(after[e.offset + i])
                return d.sign == .minus ? -abs(d) * Double(epsilon) / (Double(lr) - abs(d)) : abs(d) * Double(epsilon) / (Double(lr) - abs(d))
            }
            let scale = max(applied.map(abs).max()!, 1e-4)
            var picks = [(0..<e.count).max { abs(applied[$0]) < abs(applied[$1]) }!]
            for k in 1...2 { picks.append((k * 7919 + 13) % e.count) }
            for i in picks {
                let p = policy.parameters.pointer + e.offset + i
                let saved = p.pointee
                p.pointee = saved + h; let lp = try loss()
                p.pointee = saved - h; let lm = try loss()
                p.pointee = saved
                let fd = (lp - lm) / Double(2 * h)
                XCTAssertLessThan(abs(fd - applied[i]), 0.03 * scale + 0.03 * abs(fd),
                                  "\(name) \(e.name)[\(i)]: finite difference \(fd) vs step \(applied[i])", file: file, line: line)
                checked += 1
            }
        }
        XCTAssertEqual(checked, 3 * policy.layout.entries.count, file: file, line: line)
        return metrics
    }

    /// GRPO advantages, k3 KL to a different reference, entropy bonus, token mean.
    func testStepFollowsTheFiniteDifferenceGradientOfItsLoss() throws {
        let algorithm = RLAlgorithmConfig(algorithm: .grpo, kl: KLPenalty(beta: 0.3, estimator: .k3), entropyCoefficient: 0.05)
        let batch = { try self.makeBatch(policy: $0) }
        let metrics = try assertStepFollowsFiniteDifferences("grpo", algorithm: algorithm, batch: batch)
        XCTAssertGreaterThan(metrics.kl ?? 0, 0.01, "the reference differs: KL must be exercised")
        XCTAssertEqual(metrics.clipFraction, 0, "stay away from the clip's kinks")
        let b = try makeBatch(policy: try LlamaModel(config: Self.config, seed: 3, std: 0.3))
        let correct = b.correct.compactMap { $0 }
        XCTAssertEqual(metrics.accuracy!, Double(correct.filter { $0 }.count) / Double(correct.count), accuracy: 1e-12)
    }

    /// Every off-policy correction's step follows the finite difference of its loss, on a batch
    /// whose behaviour ratios fall on both sides of each rule's bound (away from every kink: the
    /// rules of the decoupled objectives act on the constant π_prox/π_behav, and the ±0.35 log-ratio
    /// offsets sit ≥ 0.12 from the clip edges and the truncation cap), and each rule's fraction
    /// reaches the step's metrics.
    func testEveryCorrectionsStepFollowsTheFiniteDifferenceGradient() throws {
        let kl = KLPenalty(beta: 0.1, estimator: .k3)
        func decoupled(_ cap: Float, _ mode: BehaviourWeightCapMode) -> PolicyObjective {
            .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: cap, capMode: mode)
        }
        let cases: [(String, PolicyObjective, masked: Bool, truncated: Bool)] = [
            ("none", .ppo, false, false),
            ("decoupled", decoupled(1.3, .mask), true, false),
            ("truncated_is", .truncatedIS(cap: 1.25), false, true),
            ("masked_is", decoupled(1.2, .maskOutside), true, false),
            ("sequence_truncated_is", decoupled(1.1, .truncateSequence), false, true),
        ]
        for (name, objective, masked, truncated) in cases {
            let algorithm = RLAlgorithmConfig(algorithm: .grpo, objective: objective, kl: kl)
            let m = try assertStepFollowsFiniteDifferences(name, algorithm: algorithm, batch: { try self.makeOffPolicyBatch(policy: $0) })
            XCTAssertEqual(m.maskedFraction > 0, masked, "\(name): masked \(m.maskedFraction)")
            XCTAssertEqual(m.truncatedFraction > 0, truncated, "\(name): truncated \(m.truncatedFraction)")
            XCTAssertLessThan(m.maskedFraction + m.truncatedFraction, 1, name)
            // KL(π_behav ‖ π_θ) of the offsets: each token's ρ − 1 − ln ρ is 2e-4 … 0.07.
            XCTAssertGreaterThan(m.mismatchKL, 0.005, name)
            XCTAssertLessThan(m.mismatchKL, 0.06, name)
        }
    }

    /// AReaL's log-linear π_prox (no forward) through the model: π_prox moves with π_θ, yet where
    /// no clip or cap acts the surrogate's gradient w·r·Â = (π_θ/π_behav)·Â is what treating π_prox
    /// as a constant gives, so the analytic gradient is the finite difference. The versions put
    /// π_θ half-way through the update (α = 2/3, 6/7, 4/5 for the three groups), where the
    /// approximation differs from both π_θ and π_behav.
    func testLogLinearProximalGradientThroughTheModel() throws {
        let policy = try LlamaModel(config: Self.config, seed: 3, std: 0.3)
        let algorithm = RLAlgorithmConfig(
            algorithm: .grpo, objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .mask), proximal: .loglinear)
        let update = try PolicyUpdate(policy: policy, reference: nil, options: RLTrainerOptions(algorithm: algorithm, microBatchTokens: 14))
        let batch = try makeOffPolicyBatch(policy: policy)
        let prepared = try RLObjective.prepare(batch, config: algorithm)
        let versions = ProximalVersions(proximal: 10, current: 10.5)
        policy.zeroGradients()
        let out = try update.lossAndGradients(batch, prepared: prepared, refLogProbs: nil, proximalVersions: versions)
        let d = out.policy.diagnostics
        XCTAssertEqual(d.clipFraction, 0, "stay away from the clip's kinks")
        XCTAssertEqual(d.maskedFraction, 0)
        XCTAssertGreaterThan(d.approxKL, 1e-4, "π_prox must differ from π_θ")
        XCTAssertLessThan(d.approxKL, d.mismatchKL, "π_prox lies between π_behav and π_θ")
        let analytic = policy.gradients.toArray()
        let n = try checkParameterGradients("loglinear", parameters: policy.parameters.pointer, gradients: analytic,
                                            tensors: policy.layout.entries.map { ($0.name, $0.offset, $0.count) }, spread: 2,
                                            scaleFloor: 1e-4, relativeTolerance: 0.03) {
            Double(try update.lossAndGradients(batch, prepared: prepared, refLogProbs: nil, proximalVersions: versions, backward: false).totalLoss)
        }
        XCTAssertEqual(n, 3 * policy.layout.entries.count)
    }

    /// The log-linear approximation replaces the proximal forward only when a batch takes several
    /// optimizer steps: with one step both runs are the same update (π_prox = π_θ), with three the
    /// later steps centre the clip on the interpolated π_prox and the updates differ, but point the
    /// same way. (Where no clip or cap acts, w·r = π_θ/π_behav whatever π_prox is, so the
    /// difference comes from the clip: AdamW's sign-like steps move π_θ into it.)
    func testLogLinearProximalReplacesTheForwardOnlyOverSeveralSteps() throws {
        func run(_ proximal: ProximalSource, minibatches: Int) throws -> [Float] {
            let policy = try LlamaModel(config: Self.config, seed: 5, std: 0.3)
            let algorithm = RLAlgorithmConfig(
                algorithm: .grpo, objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .mask), proximal: proximal)
            let options = RLTrainerOptions(algorithm: algorithm, minibatches: minibatches, learningRate: 1e-2,
                                           adamW: AdamWHyperparameters(epsilon: 1e-3, weightDecay: 0))
            let update = try PolicyUpdate(policy: policy, reference: nil, options: options)
            let before = policy.parameters.toArray()
            let m = try update.step(try makeOffPolicyBatch(policy: policy), learnerVersion: 10)
            XCTAssertEqual(m.optimizerSteps, minibatches)
            return zip(policy.parameters.toArray(), before).map { $0 - $1 }
        }
        func norm(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
        XCTAssertEqual(try run(.forward, minibatches: 1), try run(.loglinear, minibatches: 1))
        let forward = try run(.forward, minibatches: 3), loglinear = try run(.loglinear, minibatches: 3)
        let size = norm(forward), difference = norm(zip(forward, loglinear).map { $0 - $1 })
        XCTAssertGreaterThan(size, 1e-3)
        XCTAssertGreaterThan(difference, 1e-3 * size, "later steps interpolate π_prox, so the updates differ")
        XCTAssertLessThan(difference, 0.5 * size, "… but point the same way")
        print("log-linear vs forward π_prox over 3 optimizer steps: updates differ by \(difference / size) of their size")
    }

    /// One step with every sequence its own micro-batch equals the unsplit step, for each loss
    /// aggregation, for PPO with its critic, and for decoupled PPO over two epochs of two
    /// minibatches (the proximal forward micro-batched too).
    func testMicroBatchedStepEqualsTheUnsplitStep() throws {
        let kl = KLPenalty(beta: 0.2, estimator: .k3)
        let cases: [(String, RLAlgorithmConfig, epochs: Int, minibatches: Int)] = [
            ("token mean", RLAlgorithmConfig(algorithm: .grpo, aggregation: .tokenMean, kl: kl, entropyCoefficient: 0.05), 1, 1),
            ("seq-mean-token-sum", RLAlgorithmConfig(algorithm: .rloo, aggregation: .seqMeanTokenSum, kl: kl), 1, 1),
            ("seq-mean-token-mean", RLAlgorithmConfig(algorithm: .grpo, aggregation: .seqMeanTokenMean, kl: kl, entropyCoefficient: 0.05), 1, 1),
            ("seq-mean-token-sum-norm", RLAlgorithmConfig(algorithm: .drGRPO, aggregation: .seqMeanTokenSumNorm(maxTokens: 5)), 1, 1),
            ("ppo with critic", RLAlgorithmConfig(algorithm: .ppo, kl: KLPenalty(beta: 0.1, placement: .reward)), 1, 1),
            ("decoupled, 2 epochs × 2 minibatches",
             RLAlgorithmConfig(algorithm: .grpo, objective: .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .mask),
                               kl: kl), 2, 2),
        ]
        // Budgets of one row (every sequence alone, a group's prompt re-run for each) and of 14 rows
        // (some groups whole and packed together, the largest split), with shared prompts and plain.
        let splits: [(microBatchTokens: Int, sharePrompts: Bool)] = [(1, true), (14, true), (1, false)]
        for (name, algorithm, epochs, minibatches) in cases {
            func run(microBatchTokens: Int, sharePrompts: Bool) throws -> (delta: [Float], metrics: PolicyUpdateMetrics, largestWeight: Float) {
                let policy = try LlamaModel(config: Self.config, seed: 5, std: 0.3)
                let reference = try LlamaModel(config: Self.config, seed: 6, std: 0.3)
                let critic = algorithm.algorithm == .ppo
                    ? ScalarHeadModel(backbone: try LlamaModel(config: Self.config, seed: 7, std: 0.3), seed: 8, std: 0.5) : nil
                let options = RLTrainerOptions(algorithm: algorithm, epochsPerBatch: epochs, minibatches: minibatches, learningRate: 1e-2,
                                               adamW: AdamWHyperparameters(epsilon: 1e-3, weightDecay: 0), microBatchTokens: microBatchTokens,
                                               sharePrompts: sharePrompts)
                let update = try PolicyUpdate(policy: policy, reference: reference, critic: critic, options: options)
                let before = policy.parameters.toArray()
                let m = try update.step(try makeBatch(policy: policy))
                var delta = zip(policy.parameters.toArray(), before).map { $0 - $1 }
                if let critic { delta += critic.head.toArray() }
                return (delta, m, before.map(abs).max() ?? 0)
            }
            for (tokens, share) in splits {
                let label = "\(name), micro-batches of \(tokens) (shared prompts: \(share))"
                let whole = try run(microBatchTokens: 10_000, sharePrompts: share), split = try run(microBatchTokens: tokens, sharePrompts: share)
                let largest = whole.delta.map(abs).max()!
                XCTAssertGreaterThan(largest, 1e-4, "\(label): the step moved nothing")
                let worst = zip(whole.delta, split.delta).map { abs($0 - $1) }.max()!
                // 1e-5 of the step, plus four ulps of the largest weight (the changes are differences of weights).
                XCTAssertLessThan(worst, 1e-5 * largest + 4 * whole.largestWeight.ulp, "\(label): micro-batched step differs by \(worst) (largest change \(largest))")
                XCTAssertEqual(whole.metrics.loss, split.metrics.loss, accuracy: 1e-5 * max(1, abs(whole.metrics.loss)), label)
                XCTAssertEqual(whole.metrics.clipFraction, split.metrics.clipFraction, accuracy: 1e-9, label)
                XCTAssertEqual(whole.metrics.effectiveSampleFraction, split.metrics.effectiveSampleFraction, accuracy: 1e-6, label)
                XCTAssertEqual(whole.metrics.optimizerSteps, epochs * minibatches, label)
            }
        }
    }

    /// Shared prompts: the budget counts the rows the grouped forward computes (each distinct prompt
    /// less its last token once, padded to the longest, plus one row per completion token, the
    /// completions unpadded); groups stay whole and are packed while they fit, a group over the budget is split
    /// into the fewest runs that fit, and empty completions are left out. Plain: sequences × longest.
    func testMicroBatchesCountTheRowsTheForwardComputesAndKeepGroupsWhole() throws {
        let a = [1, 2, 3], b = [4, 5], c = [6, 7, 8, 9]
        let batch = try RolloutBatch(promptTokens: [a, b, a, b, a, c], completionTokens: [[1, 1], [2], [3, 3, 3], [4], [], [5]],
                                     behaviourLogProbs: Array(repeating: -1, count: 8), rewards: Array(repeating: 0, count: 6),
                                     groupIDs: [0, 1, 0, 1, 0, 2])
        // Group a: 2 + (2 + 3) = 7 rows; a with b: 2·2 + (2 + 3 + 1 + 1) = 11; b: 1 + 2 = 3; b with c: 2·3 + 3 = 9;
        // a, b and c: 3·3 + 8 = 17; c: 3 + 1 = 4.
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 16, sharedPrompts: true), [[0, 2, 1, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 11, sharedPrompts: true), [[0, 2, 1, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 10, sharedPrompts: true), [[0, 2], [1, 3, 5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 8, sharedPrompts: true), [[0, 2], [1, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 5, sharedPrompts: true), [[0], [2], [1, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 1, sharedPrompts: true), [[0], [2], [1], [3], [5]])
        // Plain lengths 5, 3, 6, 3, 5: pairs of 10 and 12 tokens.
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 12, sharedPrompts: false), [[0, 1], [2, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 8, sharedPrompts: false), [[0], [1], [2], [3], [5]])
    }

    /// Minibatches split along groups with one rounding rule: ⌈groups / minibatches⌉ each.
    /// The first step reserves the workspaces of the policy and the reference for completions of
    /// `maxNewTokens`: later steps whose completions grow up to it reuse them, where without the
    /// reservation each longer batch reallocated them.
    func testStepsReuseTheWorkspacesReservedForTheLongestCompletions() throws {
        let policy = try LlamaModel(config: Self.config, seed: 5, std: 0.3)
        let reference = try LlamaModel(config: Self.config, seed: 6, std: 0.3)
        let options = RLTrainerOptions(algorithm: RLAlgorithmConfig(algorithm: .grpo, kl: KLPenalty(beta: 0.1, estimator: .k3)),
                                       groupSize: 4, maxNewTokens: 5, learningRate: 1e-3, microBatchTokens: 16)
        let update = try PolicyUpdate(policy: policy, reference: reference, options: options)
        let sampler = try LlamaModel(config: Self.config, seed: 5, std: 0.3)
        let batches = try [1, 3, 5].map { try makeBatch(policy: sampler, longest: $0) }
        for batch in batches { _ = try update.step(batch) }
        XCTAssertEqual(policy.workspaceAllocations, 1, "the policy's training workspace")
        XCTAssertEqual(reference.workspaceAllocations, 1, "the reference's forward-only workspace")

        // Reserved and mapped at start-up (prompts of at most 4 tokens): the same workspaces serve
        // every step, and the weights come out bit for bit as above.
        let early = try LlamaModel(config: Self.config, seed: 5, std: 0.3), earlyReference = try LlamaModel(config: Self.config, seed: 6, std: 0.3)
        let earlyUpdate = try PolicyUpdate(policy: early, reference: earlyReference, options: options)
        earlyUpdate.reserveWorkspaces(prompts: 3, promptTokens: 4)
        XCTAssertEqual([early.workspaceAllocations, earlyReference.workspaceAllocations], [1, 1], "mapped at start-up")
        for batch in batches { _ = try earlyUpdate.step(batch) }
        XCTAssertEqual([early.workspaceAllocations, earlyReference.workspaceAllocations], [1, 1], "no step reallocated them")
        XCTAssertEqual(early.parameters.toArray(), policy.parameters.toArray())

        let unreserved = try LlamaModel(config: Self.config, seed: 5, std: 0.3)
        for batch in batches {
            _ = try unreserved.sequenceLogProbs(GroupedTokenBatch(promptOfEach: batch.promptTokens, completions: batch.completionTokens))
        }
        XCTAssertEqual(unreserved.workspaceAllocations, 3, "each longer batch outgrows an unreserved workspace")
    }

    func testMinibatchesKeepGroupsWhole() throws {
        let batch = try RolloutBatch(promptTokens: Array(repeating: [1], count: 10), completionTokens: Array(repeating: [2], count: 10),
                                     behaviourLogProbs: Array(repeating: -1, count: 10), rewards: Array(repeating: 0, count: 10),
                                     groupIDs: [4, 4, 0, 0, 7, 7, 2, 2, 9, 9])
        XCTAssertEqual(PolicyUpdate.minibatches(of: batch, count: 2), [[0, 1, 2, 3, 6, 7], [4, 5, 8, 9]])
        XCTAssertEqual(PolicyUpdate.minibatches(of: batch, count: 5), [[2, 3], [6, 7], [0, 1], [4, 5], [8, 9]])
        XCTAssertEqual(PolicyUpdate.minibatches(of: batch, count: 1), [Array(0..<10)])
    }
}
