import Foundation
import TetherKernels
import TetherModel

/// One learner update on a batch of trajectory groups, the only one in Tether: `RLTrainer`, the
/// cluster learner and `tether bench model` all call `step`.
///
/// 1. π_ref of every completion token (DeepSeekMath eq. 3's KL term), once per batch: taken from
///    the batch where an actor or `ReferenceScorer` precomputed it, the rest by a forward of the
///    frozen reference. PPO's critic values V(s_t) likewise.
/// 2. Advantages once for the whole batch (`RLObjective.prepare`: GRPO/Dr. GRPO/RLOO over whole
///    groups, PPO's GAE), so every minibatch sees advantages normalised over complete groups.
/// 3. π_prox, the weights before this update, only when the objective has one (AReaL's decoupled
///    PPO, Fu et al. 2025 eq. 5) and the batch takes more than one optimizer step; with a single
///    step π_prox is π_θ itself and its forward is the loss's own. With `ProximalSource.loglinear`
///    no forward runs: each loss evaluation interpolates π_prox from π_behav and π_θ by version
///    (`ProximalApproximation`).
/// 4. `epochsPerBatch` passes over `minibatches` minibatches split along groups; each is one AdamW
///    step (Loshchilov & Hutter 2019) on the loss of `RLObjective.evaluate` (PPO's clipped
///    surrogate, Schulman et al. 2017 eq. 7, or the configured off-policy objective), after
///    global-norm clipping (Pascanu et al. 2013). A non-finite log-prob, loss, norm or weight stops
///    the update with `NonFiniteUpdate`.
///
/// Memory is bounded by `microBatchTokens`: each minibatch runs forward and backward over
/// micro-batches of whole sequences, accumulating gradients, each micro-batch's loss scaled by its
/// share of the minibatch's normaliser (`LossAggregation.share`), so the sum is the unsplit
/// minibatch's loss and gradient. The forwards without a backward (reference, proximal, critic
/// values) run over the same micro-batches.
public final class PolicyUpdate {
    public let policy: LlamaModel
    /// The frozen reference of the KL term (nil when β = 0).
    public let reference: LlamaModel?
    /// PPO's value model (nil for the group estimators).
    public let critic: ScalarHeadModel?
    public let optimizer: AdamW
    public let criticOptimizer: AdamW?
    private let criticHeadOptimizer: AdamW?
    /// The update reads `algorithm`, `epochsPerBatch`, `minibatches`, `learningRate`, `adamW`,
    /// `maxGradientNorm`, `valueCoefficient` and `microBatchTokens`.
    public let options: RLTrainerOptions
    /// Wall time of the policy's forwards and backwards within the current `step`.
    private var passSeconds = (forward: 0.0, backward: 0.0)

    public init(policy: LlamaModel, reference: LlamaModel?, critic: ScalarHeadModel? = nil, options: RLTrainerOptions) throws {
        let needsReference = (options.algorithm.kl?.beta ?? 0) != 0
        if options.algorithm.algorithm == .ppo && critic == nil { throw RLError.missingInput(name: "a critic", neededBy: "PPO") }
        if let reference, reference.config != policy.config {
            throw RLError.invalidArgument("the reference model's configuration differs from the policy's")
        }
        guard options.microBatchTokens >= 1 else { throw RLError.invalidArgument("micro-batch tokens must be ≥ 1, got \(options.microBatchTokens)") }
        self.policy = policy
        self.reference = needsReference ? reference : nil
        self.critic = options.algorithm.algorithm == .ppo ? critic : nil
        self.options = options
        optimizer = AdamW(layout: policy.layout, hyperparameters: options.adamW)
        if let c = self.critic {
            criticOptimizer = AdamW(layout: c.backbone.layout, hyperparameters: options.adamW)
            criticHeadOptimizer = AdamW(parameterCount: c.head.count, hyperparameters: options.adamW)
        } else {
            criticOptimizer = nil
            criticHeadOptimizer = nil
        }
        // The gradients with the moments, at start-up rather than in the first backward (see
        // `LlamaModel.prepareDecoding`).
        policy.zeroGradients()
        self.critic?.zeroGradients()
    }

    /// Whether the loss has a KL term, i.e. needs π_ref of every token.
    public var needsReference: Bool { (options.algorithm.kl?.beta ?? 0) != 0 }

    // MARK: The step

    /// `learnerVersion` is the version of the weights before this update (the cluster's version; the
    /// samples' versions are ≤ it); nil takes the newest sample's. Only the log-linear proximal
    /// approximation reads it.
    public func step(_ batch: RolloutBatch, learnerVersion: Int? = nil) throws -> PolicyUpdateMetrics {
        let start = Date()
        reserveWorkspaces(for: batch)
        let config = options.algorithm
        var m = PolicyUpdateMetrics()
        var refLogProbs: [Float]? = nil
        if needsReference {
            let missing = (0..<batch.sequenceCount).filter { batch.referenceLogProbs[$0] == nil }
            m.precomputedReferenceSamples = batch.sequenceCount - missing.count
            var perSequence = batch.referenceLogProbs
            if !missing.isEmpty {
                guard let reference else { throw RLError.missingInput(name: "a reference model", neededBy: "the KL penalty") }
                let sub = try batch.sequences(missing)
                let t = Date()
                let lp = try completionLogProbs(of: reference, sub)
                m.referenceSeconds = Date().timeIntervalSince(t)
                for (k, s) in missing.enumerated() { perSequence[s] = Array(lp[sub.layout.range(of: k)]) }
            }
            refLogProbs = perSequence.flatMap { $0! }
        }
        let values = try critic.map { try completionValues(of: $0, batch) }
        let prepared = try RLObjective.prepare(batch, config: config, refLogProbs: refLogProbs, values: values)
        let minibatches = Self.minibatches(of: batch, count: options.minibatches)
        let stepCount = options.epochsPerBatch * minibatches.count
        let needsProximal = config.objective.needsProximal && stepCount > 1
        let approximate = needsProximal && config.proximal == .loglinear
        let proximal = needsProximal && !approximate ? try completionLogProbs(of: policy, batch) : nil
        let version = learnerVersion ?? batch.policyVersions.max() ?? 0

        var klSum = 0.0, approxKLSum = 0.0, mismatchSum = 0.0, maskedSum = 0.0, truncatedSum = 0.0
        var entropySum = 0.0, clipSum = 0.0, essSum = 0.0
        var lossSum = 0.0, valueLossSum = 0.0, normSum = 0.0
        let lr = options.learningRate
        passSeconds = (0, 0)
        for _ in 0..<options.epochsPerBatch {
            for indices in minibatches {
                let mb = try batch.sequences(indices)
                policy.zeroGradients()
                critic?.zeroGradients()
                let out = try lossAndGradients(mb, prepared: prepared.sequences(indices, of: batch.layout),
                                               refLogProbs: refLogProbs.map { batch.layout.gather($0, sequences: indices) },
                                               proximalLogProbs: proximal.map { batch.layout.gather($0, sequences: indices) },
                                               proximalVersions: approximate
                                                   ? ProximalVersions(learnerVersion: version, step: m.optimizerSteps, steps: stepCount) : nil)
                guard out.totalLoss.isFinite else { throw NonFiniteUpdate(quantity: "loss (\(out.totalLoss))", learningRate: lr) }
                let optimizerStart = Date()
                // Clip and AdamW in one pass over the buffers (the clip's factor applied as AdamW
                // reads each gradient), the weights' finiteness checked in the same pass.
                let norm = GradientClipping.globalNorm(policy.gradients)
                guard norm.isFinite else { throw NonFiniteUpdate(quantity: "gradient norm (\(norm))", learningRate: lr) }
                let finite = optimizer.update(parameters: policy.parameters, gradients: policy.gradients, learningRate: lr,
                                              gradientScale: GradientClipping.scale(norm: norm, maxNorm: options.maxGradientNorm))
                if !finite, let bad = policy.parameters.buffer.firstIndex(where: { !$0.isFinite }) {
                    throw NonFiniteUpdate(quantity: "weight \(bad) after the optimizer step (\(policy.parameters.buffer[bad]))", learningRate: lr)
                }
                if let critic, let co = criticOptimizer, let ho = criticHeadOptimizer {
                    GradientClipping.clipGlobalNorm(critic.backbone.gradients, maxNorm: options.maxGradientNorm)
                    GradientClipping.clipGlobalNorm(critic.headGradient, maxNorm: options.maxGradientNorm)
                    co.update(parameters: critic.backbone.parameters, gradients: critic.backbone.gradients, learningRate: lr)
                    ho.update(parameters: critic.head, gradients: critic.headGradient, learningRate: lr)
                }
                m.optimizerSeconds += Date().timeIntervalSince(optimizerStart)
                let d = out.policy.diagnostics
                klSum += d.refKL ?? 0
                approxKLSum += d.approxKL
                mismatchSum += d.mismatchKL
                maskedSum += d.maskedFraction
                truncatedSum += d.truncatedFraction
                entropySum += d.entropyMean ?? 0
                clipSum += d.clipFraction
                essSum += d.effectiveSampleFraction
                lossSum += Double(out.policy.loss)
                valueLossSum += Double(out.value?.loss ?? 0)
                normSum += Double(norm)
                m.optimizerSteps += 1
            }
        }
        let n = Double(max(m.optimizerSteps, 1))
        let rewards = batch.rewards.map(Double.init), count = Double(max(rewards.count, 1))
        m.rewardMean = rewards.reduce(0, +) / count
        m.rewardStd = (rewards.reduce(0) { $0 + ($1 - m.rewardMean) * ($1 - m.rewardMean) } / count).squareRoot()
        let known = batch.correct.compactMap { $0 }
        m.accuracy = known.isEmpty ? nil : Double(known.filter { $0 }.count) / Double(known.count)
        m.kl = refLogProbs == nil ? nil : klSum / n
        m.approxKL = approxKLSum / n
        m.mismatchKL = mismatchSum / n
        m.maskedFraction = maskedSum / n
        m.truncatedFraction = truncatedSum / n
        m.entropy = entropySum / n
        m.clipFraction = clipSum / n
        m.effectiveSampleFraction = essSum / n
        m.loss = lossSum / n
        m.valueLoss = critic == nil ? nil : valueLossSum / n
        m.gradientNorm = normSum / n
        m.learningRate = Double(lr)
        m.sequences = batch.sequenceCount
        m.completionTokens = batch.layout.tokenCount
        m.tokens = batch.layout.tokenCount + batch.promptTokens.reduce(0) { $0 + $1.count }
        m.responseLength = Double(batch.layout.tokenCount) / Double(max(batch.sequenceCount, 1))
        m.zeroAdvantageGroupFraction = prepared.groups.map { Double($0.fracZeroStd) }
        // The workspaces (the policy's activations, the reference's forward-only buffers) stay
        // allocated for the next step: its batch has about the same shape, and allocating them
        // again would page-fault and zero-fill hundreds of megabytes per step. Peak memory is the
        // policy's micro-batch activations plus the reference's one-layer forward buffers.
        m.forwardSeconds = passSeconds.forward
        m.backwardSeconds = passSeconds.backward
        m.seconds = Date().timeIntervalSince(start)
        return m
    }

    /// Sizes the workspaces of the policy, the reference and the critic (`WorkspaceReservation`)
    /// for the largest micro-batch a batch like `batch` can bring: prompts half as long again as its
    /// longest, every completion `maxNewTokens` long. `microBatches` keeps each within the budget
    /// unless one sequence alone is longer. Batches within that reuse the first step's workspaces
    /// instead of reallocating them as completions grow.
    func reserveWorkspaces(for batch: RolloutBatch) {
        let longestPrompt = batch.promptTokens.map(\.count).max() ?? 0
        reserve(sequences: batch.sequenceCount, groups: Set(batch.groupIDs).count, promptTokens: longestPrompt + longestPrompt / 2,
                completionTokens: batch.completionTokens.map(\.count).max() ?? 0)
    }

    /// Reserves the workspaces for batches of `prompts` groups of `groupSize` with prompts of at
    /// most `promptTokens`, and maps the policy's training workspace and the reference's
    /// forward-only one now (`LlamaModel.prefaultWorkspace`): a trainer calls it at start-up, with
    /// the optimizer's moments already allocated, so that its first step faults in nothing more than
    /// its attention probabilities.
    public func reserveWorkspaces(prompts: Int, promptTokens: Int) {
        reserve(sequences: prompts * options.groupSize, groups: prompts, promptTokens: promptTokens, completionTokens: 0)
        policy.prefaultWorkspace(training: true, sharedPrompts: microBatchesSharePrompts)
        reference?.prefaultWorkspace(training: false, sharedPrompts: options.sharePrompts)
    }

    private func reserve(sequences: Int, groups: Int, promptTokens: Int, completionTokens: Int) {
        let completion = max(options.maxNewTokens, completionTokens)
        let need = WorkspaceReservation(rows: max(options.microBatchTokens, promptTokens + completion), sequences: sequences,
                                        groups: groups, contextTokens: promptTokens + completion)
        for model in [policy, reference, critic?.backbone].compactMap({ $0 }) where !(model.workspaceReservation?.covers(need) ?? false) {
            model.workspaceReservation = need
        }
    }

    /// The sequence indices of each minibatch: the batch's distinct groups in ascending id order,
    /// ⌈groups / count⌉ to a minibatch, so a group is never split and every minibatch but the last
    /// is full (with `count` dividing the groups, as validation requires, all are equal).
    public static func minibatches(of batch: RolloutBatch, count: Int) -> [[Int]] {
        let groups = Array(Set(batch.groupIDs)).sorted()
        let perMinibatch = max(1, (groups.count + max(count, 1) - 1) / max(count, 1))
        return stride(from: 0, to: groups.count, by: perMinibatch).map { i in
            let ids = Set(groups[i ..< min(groups.count, i + perMinibatch)])
            return batch.groupIDs.indices.filter { ids.contains(batch.groupIDs[$0]) }
        }
    }

    /// Micro-batches of a minibatch's sequences, each within `budget` rows of the forward that runs
    /// it. Sequences without completion tokens carry no loss term and are left out.
    ///
    /// Plain (`sharedPrompts` false): consecutive sequences while the padded `[sequences, longest]`
    /// token matrix stays within the budget. Shared prompts: the rows the grouped forward really
    /// computes (`GroupedTokenBatch`: each distinct prompt once, padded to the longest, plus one row
    /// per completion token, the completions packed unpadded), with every group whole so that its prompt runs once in
    /// the step; groups are packed in order of first appearance while they fit. A group that does
    /// not fit the budget alone is split into the fewest runs of consecutive sequences that do, each
    /// running the prompt again. At least one sequence per micro-batch, whatever the budget.
    public static func microBatches(of batch: RolloutBatch, tokens budget: Int, sharedPrompts: Bool) -> [[Int]] {
        let live = (0..<batch.sequenceCount).filter { !batch.completionTokens[$0].isEmpty }
        guard sharedPrompts else {
            return pack(live, budget: budget) { $0.count * ($0.map { batch.promptTokens[$0].count + batch.completionTokens[$0].count }.max() ?? 0) }
        }
        var groupIndex: [[Int]: Int] = [:], groups: [[Int]] = []
        for s in live {
            let p = batch.promptTokens[s]
            if let g = groupIndex[p] { groups[g].append(s); continue }
            groupIndex[p] = groups.count
            groups.append([s])
        }
        func rows(_ sequences: [Int]) -> Int {
            var prompts = Set<[Int]>(), prefix = 0, suffix = 0
            for s in sequences {
                if prompts.insert(batch.promptTokens[s]).inserted { prefix = max(prefix, batch.promptTokens[s].count - 1) }
                suffix += batch.completionTokens[s].count
            }
            return prompts.count * prefix + suffix
        }
        var out: [[Int]] = [], current: [Int] = []
        for group in groups {
            if rows(current + group) <= budget { current += group; continue }
            if !current.isEmpty { out.append(current) }
            current = []
            if rows(group) <= budget { current = group; continue }
            out += pack(group, budget: budget, rows: rows)
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// `sequences` cut greedily into consecutive runs within `budget` by `rows` (at least one
    /// sequence each): the fewest runs for a cost that grows with the run.
    private static func pack(_ sequences: [Int], budget: Int, rows: ([Int]) -> Int) -> [[Int]] {
        var out: [[Int]] = [], current: [Int] = []
        for s in sequences {
            if !current.isEmpty && rows(current + [s]) > budget {
                out.append(current)
                current = []
            }
            current.append(s)
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Whether micro-batches count the rows of the shared-prompt forwards: the policy's and the
    /// reference's forwards run grouped; a critic reads the plain batch.
    var microBatchesSharePrompts: Bool { options.sharePrompts && critic == nil }

    // MARK: Loss through the model

    /// The loss of minibatch `batch` at the current weights with its gradient ADDED into
    /// `policy.gradients` (and the critic's), summed over its micro-batches. Public so that tests
    /// can check the gradient against finite differences of `totalLoss`. π_prox, when the objective
    /// has one: `proximalLogProbs` if given, else interpolated by `proximalVersions` if given, else
    /// π_θ's own log-probs.
    public func lossAndGradients(_ batch: RolloutBatch, prepared: PreparedBatch, refLogProbs: [Float]?,
                                 proximalLogProbs: [Float]? = nil, proximalVersions: ProximalVersions? = nil,
                                 backward: Bool = true) throws -> RLLossOutput {
        var parts: [(output: RLLossOutput, share: Double, sequences: [Int])] = []
        for indices in Self.microBatches(of: batch, tokens: options.microBatchTokens, sharedPrompts: microBatchesSharePrompts) {
            let micro = try batch.sequences(indices)
            let share = options.algorithm.aggregation.share(of: micro.layout, in: batch.layout)
            let output = try accumulate(micro, prepared: prepared.sequences(indices, of: batch.layout),
                                        refLogProbs: refLogProbs.map { batch.layout.gather($0, sequences: indices) },
                                        proximalLogProbs: proximalLogProbs.map { batch.layout.gather($0, sequences: indices) },
                                        proximalVersions: proximalVersions, share: share, backward: backward)
            parts.append((output, share, indices))
        }
        return RLLossOutput(merging: parts, layout: batch.layout)
    }

    /// The one place the policy runs forward and backward: one micro-batch's log-probs and
    /// entropies (and the critic's values), its loss evaluated alone and scaled by `share`, and the
    /// backward passes adding the scaled gradients in.
    func accumulate(_ micro: RolloutBatch, prepared: PreparedBatch, refLogProbs: [Float]?, proximalLogProbs: [Float]?,
                    proximalVersions: ProximalVersions?, share: Double, backward: Bool) throws -> RLLossOutput {
        let map = TokenIndexMap(micro)
        let forwardStart = Date()
        let lp = options.sharePrompts
            ? try policy.sequenceLogProbs(GroupedTokenBatch(promptOfEach: micro.promptTokens, completions: micro.completionTokens), entropy: true)
            : try policy.sequenceLogProbs(map.tokens, entropy: true)
        let logProbs = map.gather(lp.logProbs, rowStride: lp.positions)
        if let bad = logProbs.firstIndex(where: { !$0.isFinite }) {
            throw NonFiniteUpdate(quantity: "log-prob \(bad) of the forward pass (\(logProbs[bad]))", learningRate: options.learningRate)
        }
        let entropy = map.gather(lp.entropy!, rowStride: lp.positions)
        let values = try critic.map { map.gather(try $0.scores(map.tokens), rowStride: map.tokens.length) }
        var proximal: [Float]? = nil
        if options.algorithm.objective.needsProximal {
            if let p = proximalLogProbs {
                proximal = p
            } else if let v = proximalVersions {
                proximal = try ProximalApproximation.loglinear(behaviour: micro.behaviourLogProbs, current: logProbs, layout: micro.layout,
                                                               behaviourVersions: micro.policyVersions, versions: v)
            } else {
                proximal = logProbs
            }
        }
        let outputs = PolicyOutputs(logProbs: logProbs, entropy: entropy, refLogProbs: refLogProbs, proximalLogProbs: proximal, values: values)
        let out = try RLObjective.evaluate(micro, prepared: prepared, outputs: outputs, config: options.algorithm).scaled(by: share)
        let backwardStart = Date()
        passSeconds.forward += backwardStart.timeIntervalSince(forwardStart)
        guard backward else { return out }
        defer { passSeconds.backward += Date().timeIntervalSince(backwardStart) }
        policy.backward(dLogProbs: map.scatter(out.dLogProbs, rowStride: lp.positions, rows: lp.batch),
                        dEntropy: out.dEntropy.map { map.scatter($0, rowStride: lp.positions, rows: lp.batch) })
        if let critic, let v = out.value {
            let scaled = v.dValues.map { $0 * options.valueCoefficient }
            critic.backward(dScores: map.scatter(scaled, rowStride: map.tokens.length, rows: map.tokens.batch))
        }
        return out
    }

    /// log π(completion token) under `model` for every completion token of `batch`, flat.
    public func completionLogProbs(of model: LlamaModel, _ batch: RolloutBatch) throws -> [Float] {
        try Self.completionLogProbs(of: model, batch, microBatchTokens: options.microBatchTokens, sharePrompts: options.sharePrompts)
    }

    /// log π(completion token) under `model` for every completion token of `batch`, flat: the
    /// forward-only pass (no activations kept), over micro-batches of at most `microBatchTokens`
    /// padded tokens, each group's prompt run once when `sharePrompts`.
    public static func completionLogProbs(of model: LlamaModel, _ batch: RolloutBatch, microBatchTokens: Int,
                                          sharePrompts: Bool = true) throws -> [Float] {
        try perMicroBatch(batch, tokens: microBatchTokens, sharedPrompts: sharePrompts) { micro, map in
            let lp = sharePrompts
                ? try model.tokenLogProbs(GroupedTokenBatch(promptOfEach: micro.promptTokens, completions: micro.completionTokens))
                : try model.tokenLogProbs(map.tokens)
            return map.gather(lp.logProbs, rowStride: lp.positions)
        }
    }

    /// V(s_t) of the state before each completion token, flat, over micro-batches.
    public func completionValues(of critic: ScalarHeadModel, _ batch: RolloutBatch) throws -> [Float] {
        try Self.perMicroBatch(batch, tokens: options.microBatchTokens, sharedPrompts: false) { _, map in
            map.gather(try critic.scores(map.tokens), rowStride: map.tokens.length)
        }
    }

    private static func perMicroBatch(_ batch: RolloutBatch, tokens: Int, sharedPrompts: Bool,
                                      _ body: (RolloutBatch, TokenIndexMap) throws -> [Float]) throws -> [Float] {
        var out = [Float](repeating: 0, count: batch.layout.tokenCount)
        for indices in microBatches(of: batch, tokens: tokens, sharedPrompts: sharedPrompts) {
            let micro = try batch.sequences(indices)
            let flat = try body(micro, TokenIndexMap(micro))
            for (k, s) in indices.enumerated() {
                out.replaceSubrange(batch.layout.range(of: s), with: flat[micro.layout.range(of: k)])
            }
        }
        return out
    }
}

/// Where each flat completion token of a batch sits in the padded `[batch, T]` token matrix of
/// prompt + completion. Completion token k of sequence s is predicted at position P_s + k − 1
/// (the log-prob row of `sequenceLogProbs`, and the hidden state a critic reads V from).
struct TokenIndexMap {
    let tokens: TokenBatch
    let promptLengths: [Int]
    let layout: SequenceLayout

    init(_ batch: RolloutBatch) {
        tokens = TokenBatch(sequences: zip(batch.promptTokens, batch.completionTokens).map { $0 + $1 })
        promptLengths = batch.promptTokens.map(\.count)
        layout = batch.layout
    }

    func gather(_ perPosition: [Float], rowStride: Int) -> [Float] {
        var out = [Float](repeating: 0, count: layout.tokenCount)
        for s in 0..<layout.sequenceCount {
            let base = s * rowStride + promptLengths[s] - 1
            for (k, t) in layout.range(of: s).enumerated() { out[t] = perPosition[base + k] }
        }
        return out
    }

    func scatter(_ flat: [Float], rowStride: Int, rows: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * rowStride)
        for s in 0..<layout.sequenceCount {
            let base = s * rowStride + promptLengths[s] - 1
            for (k, t) in layout.range(of: s).enumerated() { out[base + k] = flat[t] }
        }
        return out
    }
}

extension PreparedBatch {
    /// The sequences `indices` of a batch laid out as `layout`, with their slices of every
    /// per-token array.
    func sequences(_ indices: [Int], of layout: SequenceLayout) throws -> PreparedBatch {
        func tokens(_ a: [Float]) -> [Float] { layout.gather(a, sequences: indices) }
        return PreparedBatch(layout: try SequenceLayout(lengths: indices.map { layout.lengths[$0] }), advantages: tokens(advantages),
                             returns: returns.map(tokens), oldValues: oldValues.map(tokens),
                             sequenceRewards: indices.map { sequenceRewards[$0] }, groups: groups)
    }
}

extension RLLossOutput {
    /// This output with its loss, gradients and loss diagnostics multiplied by `share`.
    func scaled(by share: Double) -> RLLossOutput {
        var out = self
        let f = Float(share)
        out.policy.loss *= f
        out.policy.dLogProbs = policy.dLogProbs.map { $0 * f }
        out.policy.dEntropy = policy.dEntropy?.map { $0 * f }
        if var v = value {
            v.loss *= f
            v.dValues = v.dValues.map { $0 * f }
            out.value = v
        }
        return out
    }

    /// A minibatch's output from its micro-batches' scaled outputs, each part's per-token gradients
    /// put back at its sequences' places in the minibatch's `layout` (micro-batches that keep groups
    /// whole need not be consecutive sequences).
    init(merging parts: [(output: RLLossOutput, share: Double, sequences: [Int])], layout: SequenceLayout) {
        let diagnostics = PolicyLossDiagnostics.merged(parts.map { ($0.output.policy.diagnostics, $0.share) })
        func placed(_ perPart: (RLLossOutput) -> [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: layout.tokenCount)
            for part in parts {
                let values = perPart(part.output)
                var k = 0
                for s in part.sequences {
                    for t in layout.range(of: s) { out[t] = values[k]; k += 1 }
                }
            }
            return out
        }
        let policy = PolicyLossResult(
            loss: parts.reduce(0) { $0 + $1.output.policy.loss }, dLogProbs: placed { $0.policy.dLogProbs },
            dEntropy: parts.contains { $0.output.policy.dEntropy == nil } ? nil : placed { $0.policy.dEntropy! },
            diagnostics: diagnostics)
        var value: ValueLoss.Result? = nil
        if parts.allSatisfy({ $0.output.value != nil }), !parts.isEmpty {
            let tokens = parts.map { Double($0.output.policy.diagnostics.tokenCount) }
            value = ValueLoss.Result(
                loss: parts.reduce(0) { $0 + $1.output.value!.loss }, dValues: placed { $0.value!.dValues },
                clipFraction: zip(parts, tokens).reduce(0) { $0 + $1.0.output.value!.clipFraction * $1.1 } / max(tokens.reduce(0, +), 1))
        }
        self.init(policy: policy, value: value)
    }
}
