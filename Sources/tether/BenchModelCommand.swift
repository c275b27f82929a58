import ArgumentParser
import Foundation
import TetherKernels
import TetherModel
import TetherCluster
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
    @Option(help: "learner.micro_batch_tokens of the step (default: the config's).") var microBatchTokens: Int?
    @Flag(inversion: .prefixedNo, help: "Learner: run each group's prompt once in the policy forward/backward and the reference forward (exact).")
    var learnerSharesPrompts = true
    @Flag(help: "Time only the rollout (no learner step: its memory and time).") var rolloutOnly = false
    @Flag(help: "Stop each sample at the model's end-of-turn token, as actors do (default: exactly --new-tokens each, as the peers sample).")
    var stopAtEndOfTurn = false

    func validate() throws {
        guard !(learnerOnly && rolloutOnly) else { throw ValidationError("--learner-only and --rollout-only exclude each other") }
        guard steps >= 1, prompts >= 1, group >= 2, promptLength >= 1, newTokens >= 1, (microBatchTokens ?? 1) >= 1 else {
            throw ValidationError("--steps, --prompts, --prompt-length, --new-tokens and --micro-batch-tokens must be ≥ 1 and --group ≥ 2")
        }
    }

    func run() throws {
        BLASThreads.set(threads)
        let policy: LlamaModel
        var chat: ChatFormat?
        if let checkpoint {
            let loaded = try LlamaModel.load(from: checkpoint)
            policy = loaded.model
            if loaded.checkpoint.tokenizer.chatTemplate != nil { chat = try ChatFormat(tokenizer: loaded.checkpoint.tokenizer) }
        } else {
            policy = try LlamaModel(config: shape.config, seed: 0)
        }
        let config = policy.config
        let reference = try LlamaModel(config: config)
        reference.copyParameters(from: policy)
        let completion = newTokens
        let B = prompts * group
        // The learner's step as the cluster learner configures it (GRPO, k3 KL β 0.04 to the
        // reference, clip 0.2, grad clip 1.0, AdamW), through the same mapping.
        var run = RunConfig.defaults
        run.algorithm.name = .grpo
        run.algorithm.klBeta = 0.04
        run.algorithm.klEstimator = .k3
        run.algorithm.clipEpsLow = 0.2
        run.algorithm.clipEpsHigh = 0.2
        run.learner.gradClipNorm = 1.0
        if let microBatchTokens { run.learner.microBatchTokens = microBatchTokens }
        var options = run.rlOptions(eosTokenId: nil, synchronous: false)
        options.sharePrompts = learnerSharesPrompts
        let update = try PolicyUpdate(policy: policy, reference: reference, options: options)
        var rng = SeededRandom(seed: 1)

        /// The distinct prompts of a rollout: with a chat template, one-digit additions through it
        /// (as the transformers and vLLM peers ask them), else `promptLength` random tokens.
        func distinctPrompts() throws -> [[Int]] {
            try (0..<prompts).map { _ in
                if let chat {
                    return try chat.promptIds(user: "What is \(rng.next() % 10) + \(rng.next() % 10)? Answer with just the number.")
                }
                return (0..<promptLength).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
            }
        }

        func rollout() throws -> RolloutBatch {
            let groupIDs = (0..<B).map { $0 / group }
            if learnerOnly {
                func random(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
                let unique = (0..<prompts).map { _ in random(promptLength) }
                let uniform = -logf(Float(config.vocabSize))
                return try RolloutBatch(promptTokens: groupIDs.map { unique[$0] }, completionTokens: (0..<B).map { _ in random(completion) },
                                        behaviourLogProbs: [Float](repeating: uniform, count: B * completion),
                                        rewards: (0..<B).map { _ in rng.nextUnitFloat() }, groupIDs: groupIDs)
            }
            let all = try distinctPrompts().flatMap { Array(repeating: $0, count: group) }
            // Exactly `completion` tokens each, past end-of-turn, as the peers sample (min_new_tokens,
            // ignore_eos): otherwise the work timed depends on what the weights of the moment answer
            // (an instruct model answers these prompts in two tokens; after a learner step, longer).
            let sampling = SamplingParameters(temperature: 1, ignoresStopTokens: !stopAtEndOfTurn)
            let out = try policy.generate(prompts: all, maxNewTokens: completion, sampling: sampling,
                                          seed: rng.next(), sharePromptPrefixes: sharePrompts)
            return try RolloutBatch(promptTokens: all, completionTokens: out.map(\.tokens), behaviourLogProbs: out.flatMap(\.rawLogProbs),
                                    rewards: (0..<B).map { _ in rng.nextUnitFloat() }, groupIDs: groupIDs)
        }

        let warm = try rollout()
        if !rolloutOnly { _ = try update.step(warm) }
        var rolloutTime = 0.0, learnerTime = 0.0
        var loss = 0.0, batchTokens = 0, promptTokens = 0, sampledTokens = 0
        // Rollout work done: decoded rows (the last sampled token of a sequence is never fed) and
        // the cached positions their attention reads.
        var decodeRows = 0.0, decodeAttention = 0.0
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let batch = try rollout()
            let t1 = DispatchTime.now().uptimeNanoseconds
            if !rolloutOnly { loss = try update.step(batch).loss }
            let t2 = DispatchTime.now().uptimeNanoseconds
            rolloutTime += Double(t1 - t0) / 1e9
            learnerTime += Double(t2 - t1) / 1e9
            let prompted = batch.promptTokens.reduce(0) { $0 + $1.count }
            promptTokens = prompted / B
            batchTokens = prompted + batch.layout.tokenCount
            sampledTokens += batch.layout.tokenCount
            for (p, c) in zip(batch.promptTokens, batch.completionTokens) where c.count > 1 {
                decodeRows += Double(c.count - 1)
                decodeAttention += Double(c.count - 1) * Double(p.count) + Double(c.count * (c.count - 1) / 2)
            }
        }
        let T = promptTokens + completion
        let peakRSS = Self.peakResidentBytes()
        let rolloutTPS = Double(sampledTokens) / rolloutTime
        let learnerTPS = Double(batchTokens * steps) / learnerTime

        // FLOPs actually performed. Rollout: prefill rows + one row per decoded token (the last
        // sampled token is never fed), attention over the cached prefix; learner: policy forward,
        // backward (2× forward) and reference forward over B·(T−1) rows, attention on full T−1 squares
        // (fewer rows when the learner shares prompts; micro-batches that split a group add some back).
        let P = promptTokens
        let perToken = policy.matmulFlopsPerToken
        let h = Double(config.hiddenSize), layersD = Double(config.numHiddenLayers)
        let prefillRows = Double((sharePrompts ? prompts : B) * P)
        let rolloutFlops = (prefillRows * Double(steps) + decodeRows) * perToken
            + layersD * 4 * h * (decodeAttention + Double(steps) * (prefillRows / Double(P)) * Double(P * (P + 1) / 2))
        // Shared prompts: each group's prompt (less its last token) once, then B suffixes of
        // `completion` rows attending to prefix + own rows.
        let prefix = Double(P - 1), comp = Double(completion)
        let rows = learnerSharesPrompts ? Double(prompts) * prefix + Double(B) * comp : Double(B * (T - 1))
        let attentionPairs = learnerSharesPrompts ? Double(prompts) * prefix * prefix + Double(B) * comp * (prefix + comp)
            : Double(B) * Double((T - 1) * (T - 1))
        let forwardFlops = rows * perToken + layersD * 4 * h * attentionPairs
        let learnerFlops = 4 * forwardFlops
        let rolloutGF = rolloutFlops / rolloutTime / 1e9
        let learnerGF = learnerFlops * Double(steps) / learnerTime / 1e9

        if json {
            let fields: [String] = [
                "\"peer\": \"tether\"", "\"params\": \(policy.layout.totalCount)",
                "\"rollout_tokens_per_s\": \(learnerOnly ? "null" : String(round1(rolloutTPS)))",
                "\"learner_tokens_per_s\": \(rolloutOnly ? "null" : String(round1(learnerTPS)))",
                "\"rollout_gflops\": \(learnerOnly ? "null" : String(round1(rolloutGF)))", "\"learner_gflops\": \(rolloutOnly ? "null" : String(round1(learnerGF)))",
                "\"share_prompts\": \(sharePrompts)", "\"learner_shares_prompts\": \(learnerSharesPrompts)", "\"threads\": \(threads)", "\"steps\": \(steps)",
                "\"batch\": \(B)", "\"tokens_per_sequence\": \(T)",
                "\"rollout_sampled_tokens\": \(learnerOnly ? "null" : String(sampledTokens / steps))", "\"stop_at_end_of_turn\": \(stopAtEndOfTurn)", "\"learner_only\": \(learnerOnly)",
                "\"micro_batch_tokens\": \(update.options.microBatchTokens)", "\"chat_prompts\": \(chat != nil && !learnerOnly)",
                "\"peak_rss_mb\": \(peakRSS.map { String(round1(Double($0) / 1_048_576)) } ?? "null")",
            ]
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            print("\(checkpoint ?? shape.rawValue): \(policy.layout.totalCount) parameters, \(threads) BLAS threads, \(steps) steps, "
                  + "\(B) sequences × \(T) tokens, share prompts: \(sharePrompts)")
            if !learnerOnly {
                print("rollout  \(round1(rolloutTPS)) tokens/s  (\(round1(rolloutGF)) GFLOP/s, \(round1(rolloutTime / Double(steps) * 1000)) ms per rollout of \(sampledTokens / steps) sampled tokens)")
            }
            print("learner  \(round1(learnerTPS)) tokens/s  (\(round1(learnerGF)) GFLOP/s, \(round1(learnerTime / Double(steps) * 1000)) ms per GRPO step)")
            print("last GRPO loss \(loss), micro-batches of \(update.options.microBatchTokens) tokens")
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
