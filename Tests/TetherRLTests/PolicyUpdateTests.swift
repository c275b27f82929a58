import TetherKernels
import TetherModel
import TetherRL
import XCTest

/// `PolicyUpdate.step` end to end: the weights it writes follow the finite-difference gradient of
/// its loss, and splitting minibatches into micro-batches changes nothing but memory.
final class PolicyUpdateTests: XCTestCase {
    static let config = LlamaConfig(vocabSize: 11, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                    intermediateSize: 24, maxPositionEmbeddings: 24)

    /// Three groups of four with ragged completions (one empty) and behaviour log-probs nudged off
    /// the policy (ratios ≠ 1, inside the clip range).
    func makeBatch(policy: LlamaModel) throws -> RolloutBatch {
        let prompts = [[1, 4, 7], [1, 9], [1, 3, 3, 5]]
        var rng = SeededRandom(seed: 41)
        var promptTokens: [[Int]] = [], completions: [[Int]] = [], groups: [Int] = [], rewards: [Float] = []
        for (g, p) in prompts.enumerated() {
            for i in 0..<4 {
                let length = (g == 1 && i == 2) ? 0 : 1 + (g + 2 * i) % 5
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

    /// With AdamW's ε large, its first step is Δθ = −lr·g/(|g| + ε), which inverts exactly to the
    /// gradient `step` applied: g = −sign(Δθ)·|Δθ|·ε/(lr − |Δθ|). That gradient must be the central
    /// finite difference of the loss of the batch (GRPO advantages, k3 KL to a different reference,
    /// entropy bonus, token mean) through the model, with micro-batches of one or two sequences.
    func testStepFollowsTheFiniteDifferenceGradientOfItsLoss() throws {
        let policy = try LlamaModel(config: Self.config, seed: 3, std: 0.3)
        let reference = try LlamaModel(config: Self.config, seed: 4, std: 0.3)
        let algorithm = RLAlgorithmConfig(algorithm: .grpo, kl: KLPenalty(beta: 0.3, estimator: .k3), entropyCoefficient: 0.05)
        let lr: Float = 1, epsilon: Float = 1000
        let options = RLTrainerOptions(algorithm: algorithm, learningRate: lr, adamW: AdamWHyperparameters(epsilon: epsilon, weightDecay: 0),
                                       maxGradientNorm: 1e9, microBatchTokens: 14)
        let update = try PolicyUpdate(policy: policy, reference: reference, options: options)
        let batch = try makeBatch(policy: policy)
        XCTAssertGreaterThan(PolicyUpdate.microBatches(of: batch, tokens: 14, sharedPrompts: true).count, 4, "want several micro-batches")

        let ref = try update.completionLogProbs(of: reference, batch)
        let prepared = try RLObjective.prepare(batch, config: algorithm, refLogProbs: ref)
        func loss() throws -> Double { Double(try update.lossAndGradients(batch, prepared: prepared, refLogProbs: ref, backward: false).totalLoss) }
        let before = policy.parameters.toArray()
        let metrics = try update.step(batch)
        XCTAssertEqual(metrics.optimizerSteps, 1)
        XCTAssertTrue(policy.holdsGradients)
        XCTAssertFalse(reference.holdsGradients, "the frozen reference needs no gradient buffer of its weights' size")
        XCTAssertGreaterThan(metrics.kl ?? 0, 0.01, "the reference differs: KL must be exercised")
        XCTAssertEqual(metrics.clipFraction, 0, "stay away from the clip's kinks")
        let correct = batch.correct.compactMap { $0 }
        XCTAssertEqual(metrics.accuracy!, Double(correct.filter { $0 }.count) / Double(correct.count), accuracy: 1e-12)
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
                XCTAssertLessThan(abs(fd - applied[i]), 0.03 * scale + 0.03 * abs(fd), "\(e.name)[\(i)]: finite difference \(fd) vs step \(applied[i])")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 3 * policy.layout.entries.count)
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
            func run(microBatchTokens: Int, sharePrompts: Bool) throws -> (delta: [Float], metrics: PolicyUpdateMetrics) {
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
                return (delta, m)
            }
            for (tokens, share) in splits {
                let label = "\(name), micro-batches of \(tokens) (shared prompts: \(share))"
                let whole = try run(microBatchTokens: 10_000, sharePrompts: share), split = try run(microBatchTokens: tokens, sharePrompts: share)
                let largest = whole.delta.map(abs).max()!
                XCTAssertGreaterThan(largest, 1e-4, "\(label): the step moved nothing")
                let worst = zip(whole.delta, split.delta).map { abs($0 - $1) }.max()!
                // 1e-5 of the step, plus a few ulps of the weights (|θ| ≲ 1) the changes are differences of.
                XCTAssertLessThan(worst, 1e-5 * largest + 3e-7, "\(label): micro-batched step differs by \(worst) (largest change \(largest))")
                XCTAssertEqual(whole.metrics.loss, split.metrics.loss, accuracy: 1e-5 * max(1, abs(whole.metrics.loss)), label)
                XCTAssertEqual(whole.metrics.clipFraction, split.metrics.clipFraction, accuracy: 1e-9, label)
                XCTAssertEqual(whole.metrics.effectiveSampleFraction, split.metrics.effectiveSampleFraction, accuracy: 1e-6, label)
                XCTAssertEqual(whole.metrics.optimizerSteps, epochs * minibatches, label)
            }
        }
    }

    /// Shared prompts: the budget counts the rows the grouped forward computes (each distinct prompt
    /// less its last token once, padded to the longest, plus every completion padded to the
    /// longest); groups stay whole and are packed while they fit, a group over the budget is split
    /// into the fewest runs that fit, and empty completions are left out. Plain: sequences × longest.
    func testMicroBatchesCountTheRowsTheForwardComputesAndKeepGroupsWhole() throws {
        let a = [1, 2, 3], b = [4, 5], c = [6, 7, 8, 9]
        let batch = try RolloutBatch(promptTokens: [a, b, a, b, a, c], completionTokens: [[1, 1], [2], [3, 3, 3], [4], [], [5]],
                                     behaviourLogProbs: Array(repeating: -1, count: 8), rewards: Array(repeating: 0, count: 6),
                                     groupIDs: [0, 1, 0, 1, 0, 2])
        // Group a: 2 + 2·3 = 8 rows; a with b: 2·2 + 4·3 = 16; b: 1 + 2·1 = 3; b with c: 2·3 + 3·1 = 9; c: 3 + 1 = 4.
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 16, sharedPrompts: true), [[0, 2, 1, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 8, sharedPrompts: true), [[0, 2], [1, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 5, sharedPrompts: true), [[0], [2], [1, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 1, sharedPrompts: true), [[0], [2], [1], [3], [5]])
        // Plain lengths 5, 3, 6, 3, 5: pairs of 10 and 12 tokens.
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 12, sharedPrompts: false), [[0, 1], [2, 3], [5]])
        XCTAssertEqual(PolicyUpdate.microBatches(of: batch, tokens: 8, sharedPrompts: false), [[0], [1], [2], [3], [5]])
    }

    /// Minibatches split along groups with one rounding rule: ⌈groups / minibatches⌉ each.
    func testMinibatchesKeepGroupsWhole() throws {
        let batch = try RolloutBatch(promptTokens: Array(repeating: [1], count: 10), completionTokens: Array(repeating: [2], count: 10),
                                     behaviourLogProbs: Array(repeating: -1, count: 10), rewards: Array(repeating: 0, count: 10),
                                     groupIDs: [4, 4, 0, 0, 7, 7, 2, 2, 9, 9])
        XCTAssertEqual(PolicyUpdate.minibatches(of: batch, count: 2), [[0, 1, 2, 3, 6, 7], [4, 5, 8, 9]])
        XCTAssertEqual(PolicyUpdate.minibatches(of: batch, count: 5), [[2, 3], [6, 7], [0, 1], [4, 5], [8, 9]])
        XCTAssertEqual(PolicyUpdate.minibatches(of: batch, count: 1), [Array(0..<10)])
    }
}
