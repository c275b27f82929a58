import ArgumentParser
import Foundation
import TetherKernels
import TetherModel
import TetherRL

/// `tether bench model`: DESIGN.md's reference workload, timed like `shared/peers/torch_reference.py`
/// (same shapes, same token counts: rollout = B·completion tokens, learner = B·(prompt+completion)
/// tokens per step, one warm-up iteration, then `steps` timed rollout+learner iterations).
/// `--shape smollm2-135m` (random weights) or `--checkpoint DIR` runs the same halves at a real
/// model's shape; `--learner-only` skips sampling (random completions) to time or measure the
/// learner step alone, e.g. its peak RSS at a large batch.
struct BenchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Rollout (KV-cache sampling) and learner (one GRPO step) throughput on the reference model.")

    enum Shape: String, ExpressibleByArgument, CaseIterable {
        case reference
        /// SmolLM2-135M's architecture (30 layers, hidden 576, GQA 9/3, vocab 49152, tied).
        case smollm2_135m = "smollm2-135m"

        var config: LlamaConfig {
            switch self {
            case .reference: return .reference
            case .smollm2_135m:
                return LlamaConfig(vocabSize: 49152, hiddenSize: 576, numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3,
                                   intermediateSize: 1536, ropeTheta: 100_000, rmsNormEps: 1e-5, tieWordEmbeddings: true,
                                   maxPositionEmbeddings: 8192)
            }
        }
    }

    @Flag(help: "Print one JSON line (keys as the PyTorch peer prints them).") var json = false
    @Option(help: "Timed rollout+learner iterations after one warm-up.") var steps = 5
    @Option(help: "BLAS threads of this process.") var threads = 2
    @Flag(inversion: .prefixedNo, help: "Prefill each distinct prompt once and share its cache across the group.")
    var sharePrompts = true
    @Option(help: "Model shape with random weights: \(Shape.allCases.map(\.rawValue).joined(separator: " or ")).")
    var shape: Shape = .reference
    @Option(help: "Checkpoint directory to run instead of a random --shape.") var checkpoint: String?
    @Option(help: "Distinct prompts per rollout.") var prompts = 8
    @Option(help: "Samples per prompt (the GRPO group).") var group = 8
    @Option(help: "Tokens per prompt.") var promptLength = 32
    @Option(help: "New tokens per sample.") var newTokens = 64
    @Flag(help: "Time only the learner step, on random completions (no sampling).") var learnerOnly = false
    @Flag(help: "Learner: run each group's prompt once in the policy forward/backward and the reference forward (exact).")
    var learnerSharesPrompts = false
    @Flag(help: "Time only the rollout (no learner step: its memory and time).") var rolloutOnly = false

    func validate() throws {
        guard !(learnerOnly && rolloutOnly) else { throw ValidationError("--learner-only and --rollout-only exclude each other") }
        guard steps >= 1, prompts >= 1, group >= 2, promptLength >= 1, newTokens >= 1 else {
            throw ValidationError("--steps, --prompts, --prompt-length and --new-tokens must be ≥ 1 and --group ≥ 2")
        }
    }

    func run() throws {
        BLASThreads.set(threads)
        let policy: LlamaModel
        if let checkpoint { policy = try LlamaModel.load(from: checkpoint).model } else { policy = try LlamaModel(config: shape.config, seed: 0) }
        let config = policy.config
        let reference = try LlamaModel(config: config)
        reference.copyParameters(from: policy)
        let completion = newTokens
        let B = prompts * group, T = promptLength + completion
        guard T <= config.maxPositionEmbeddings else {
            throw ValidationError("prompt + new tokens = \(T) exceeds the model's \(config.maxPositionEmbeddings) positions")
        }
        let optimizer = AdamW(layout: policy.layout, hyperparameters: AdamWHyperparameters(weightDecay: 0.01), decayNorms: true)
        var rng = SeededRandom(seed: 1)

        func rollout() throws -> (TokenBatch, [Float]) {
            if learnerOnly {
                let unique = (0..<prompts).map { _ in (0..<promptLength).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
                let seqs = (0..<B).map { b in unique[b / group] + (0..<completion).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
                let uniform = -logf(Float(config.vocabSize))
                return (TokenBatch(sequences: seqs), [Float](repeating: uniform, count: B * completion))
            }
            let unique = (0..<prompts).map { _ in (0..<promptLength).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
            let all = unique.flatMap { Array(repeating: $0, count: group) }
            let out = try policy.generate(prompts: all, maxNewTokens: completion, sampling: SamplingParameters(temperature: 1),
                                          seed: rng.next(), sharePromptPrefixes: sharePrompts)
            let batch = TokenBatch(sequences: zip(all, out).map { $0 + $1.tokens })
            return (batch, out.flatMap(\.logProbs))
        }

        func learnerStep(_ batch: TokenBatch, _ oldLogProbs: [Float]) throws -> Float {
            let rewards = (0..<B).map { _ in rng.nextUnitFloat() }
            let advantages = InlineGRPO.groupAdvantages(rewards, group: group)
            policy.zeroGradients()
            let lp: SequenceLogProbs, ref: SequenceLogProbs
            if learnerSharesPrompts {
                let rows = (0..<B).map { b in batch.tokens[(b * T)..<((b + 1) * T)].map(Int.init) }
                let grouped = try GroupedTokenBatch(promptOfEach: rows.map { Array($0[..<promptLength]) },
                                                    completions: rows.map { Array($0[promptLength...]) })
                lp = try policy.sequenceLogProbs(grouped)
                ref = try reference.tokenLogProbs(grouped)
            } else {
                lp = try policy.sequenceLogProbs(batch)
                ref = try reference.tokenLogProbs(batch)
            }
            let (loss, dLogProbs) = InlineGRPO.loss(
                logProbs: lp.logProbs, referenceLogProbs: ref.logProbs, oldLogProbs: oldLogProbs, advantages: advantages,
                positions: lp.positions, firstCompletionPosition: promptLength - 1, completion: completion)
            // The reference forward overwrote nothing of the policy: its activations live in its own model.
            policy.backward(dLogProbs: dLogProbs)
            GradientClipping.clipGlobalNorm(policy.gradients, maxNorm: 1)
            optimizer.update(parameters: policy.parameters, gradients: policy.gradients, learningRate: 1e-4)
            return loss
        }

        let (warm, warmLP) = try rollout()
        if !rolloutOnly { _ = try learnerStep(warm, warmLP) }
        var rolloutTime = 0.0, learnerTime = 0.0
        var loss: Float = 0
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let (batch, lps) = try rollout()
            let t1 = DispatchTime.now().uptimeNanoseconds
            if !rolloutOnly { loss = try learnerStep(batch, lps) }
            let t2 = DispatchTime.now().uptimeNanoseconds
            rolloutTime += Double(t1 - t0) / 1e9
            learnerTime += Double(t2 - t1) / 1e9
        }
        let peakRSS = Self.peakResidentBytes()
        let rolloutTPS = Double(B * completion * steps) / rolloutTime
        let learnerTPS = Double(B * T * steps) / learnerTime

        // FLOPs actually performed. Rollout: prefill rows + one row per decoded token (the last
        // sampled token is never fed), attention over the cached prefix; learner: policy forward,
        // backward (2× forward) and reference forward over B·(T−1) rows, attention on full T−1 squares.
        let perToken = policy.matmulFlopsPerToken
        let h = Double(config.hiddenSize), layersD = Double(config.numHiddenLayers)
        let prefillRows = Double((sharePrompts ? prompts : B) * promptLength)
        var rolloutFlops = (prefillRows + Double(B * (completion - 1))) * perToken
        var attnPositions = 0.0
        for k in 0..<(completion - 1) { attnPositions += Double(promptLength + k + 1) }
        rolloutFlops += layersD * 4 * h * (Double(B) * attnPositions + (prefillRows / Double(promptLength)) * Double(promptLength * (promptLength + 1) / 2))
        // Shared prompts: each group's prompt (less its last token) once, then B suffixes of
        // `completion` rows attending to prefix + own rows.
        let prefix = Double(promptLength - 1), comp = Double(completion)
        let rows = learnerSharesPrompts ? Double(prompts) * prefix + Double(B) * comp : Double(B * (T - 1))
        let attentionPairs = learnerSharesPrompts ? Double(prompts) * prefix * prefix + Double(B) * comp * (prefix + comp)
            : Double(B) * Double((T - 1) * (T - 1))
        let forwardFlops = rows * perToken + layersD * 4 * h * attentionPairs
        let learnerFlops = 4 * forwardFlops
        let rolloutGF = rolloutFlops * Double(steps) / rolloutTime / 1e9
        let learnerGF = learnerFlops * Double(steps) / learnerTime / 1e9

        if json {
            let fields: [String] = [
                "\"peer\": \"tether\"", "\"params\": \(policy.layout.totalCount)",
                "\"rollout_tokens_per_s\": \(learnerOnly ? "null" : String(round1(rolloutTPS)))",
                "\"learner_tokens_per_s\": \(rolloutOnly ? "null" : String(round1(learnerTPS)))",
                "\"rollout_gflops\": \(learnerOnly ? "null" : String(round1(rolloutGF)))", "\"learner_gflops\": \(rolloutOnly ? "null" : String(round1(learnerGF)))",
                "\"share_prompts\": \(sharePrompts)", "\"learner_shares_prompts\": \(learnerSharesPrompts)", "\"threads\": \(threads)", "\"steps\": \(steps)",
                "\"batch\": \(B)", "\"tokens_per_sequence\": \(T)", "\"learner_only\": \(learnerOnly)",
                "\"peak_rss_mb\": \(peakRSS.map { String(round1(Double($0) / 1_048_576)) } ?? "null")",
            ]
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            print("\(checkpoint ?? shape.rawValue): \(policy.layout.totalCount) parameters, \(threads) BLAS threads, \(steps) steps, "
                  + "\(B) sequences × \(T) tokens, share prompts: \(sharePrompts), learner shares prompts: \(learnerSharesPrompts)")
            if !learnerOnly {
                print("rollout  \(round1(rolloutTPS)) tokens/s  (\(round1(rolloutGF)) GFLOP/s, \(round1(rolloutTime / Double(steps) * 1000)) ms per rollout)")
            }
            print("learner  \(round1(learnerTPS)) tokens/s  (\(round1(learnerGF)) GFLOP/s, \(round1(learnerTime / Double(steps) * 1000)) ms per GRPO step)")
            print("last GRPO loss \(loss)")
            if let peakRSS { print("peak RSS \(round1(Double(peakRSS) / 1_048_576)) MB") }
        }
    }

    /// The process's high-water resident set (`getrusage`'s `ru_maxrss`, kilobytes on Linux).
    static func peakResidentBytes() -> Int? {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss) * 1024
    }

    func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}

/// The peer's GRPO loss, inline (the real losses live in TetherRL): group-normalised advantages,
/// clipped ratio ε = 0.2 against the sampling log-probs, k3 KL to the reference with β = 0.04, mean
/// over every completion token. Returns the loss and dLoss/dlogp per position.
enum InlineGRPO {
    static func groupAdvantages(_ r: [Float], group: Int) -> [Float] {
        var a = [Float](repeating: 0, count: r.count)
        for g in stride(from: 0, to: r.count, by: group) {
            let xs = r[g..<(g + group)]
            let mean = xs.reduce(0, +) / Float(group)
            let std = (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(group - 1)).squareRoot()  // torch .std: unbiased
            for i in g..<(g + group) { a[i] = (r[i] - mean) / (std + 1e-4) }
        }
        return a
    }

    static func loss(logProbs lp: [Float], referenceLogProbs rlp: [Float], oldLogProbs old: [Float], advantages: [Float],
                     positions: Int, firstCompletionPosition: Int, completion: Int, epsilon: Float = 0.2, beta: Float = 0.04) -> (Float, [Float]) {
        var d = [Float](repeating: 0, count: lp.count)
        let n = Float(advantages.count * completion)
        var total: Float = 0
        for b in 0..<advantages.count {
            let adv = advantages[b]
            for k in 0..<completion {
                let i = b * positions + firstCompletionPosition + k
                let ratio = expf(lp[i] - old[b * completion + k])
                let clipped = min(max(ratio, 1 - epsilon), 1 + epsilon)
                let unclippedTerm = ratio * adv, clippedTerm = clipped * adv
                let pg = -min(unclippedTerm, clippedTerm)
                let dPG: Float = unclippedTerm <= clippedTerm ? -adv * ratio : 0
                let diff = rlp[i] - lp[i], e = expf(diff)
                total += pg + beta * (e - diff - 1)
                d[i] = (dPG + beta * (1 - e)) / n
            }
        }
        return (total / n, d)
    }
}
