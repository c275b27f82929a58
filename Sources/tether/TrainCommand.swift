import ArgumentParser
import Foundation
import TetherCluster
import TetherModel
import TetherRL
import TetherRewards

/// `tether train`: the single-process RL trainer (`RLTrainer`) driven by the cluster's YAML schema.
struct TrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Single-process RL (GRPO, Dr. GRPO, RLOO, PPO) of a policy on a verifiable task.",
        discussion: """
        Reads the same YAML as the cluster (every key is documented in cluster/local.yaml; unknown \
        keys are errors naming the key). Each step samples rollout.group_size completions for each of \
        rollout.prompts_per_batch prompts with the KV cache, scores them with the task's verifier (or \
        task.reward_model_path), computes advantages with algorithm.name, and takes \
        algorithm.epochs_per_batch × algorithm.minibatches AdamW steps. The process is synchronous \
        and on-policy: staleness, actors, wire and the learner endpoints do not apply.

        If model.checkpoint names a directory that does not exist, it is created first: a fresh \
        policy of the model section's shape, then SFT (--base-sft-steps) on the task's built-in SFT \
        set. The reference of the KL term is model.reference_checkpoint, else the starting policy.

        The run directory (--out, else run.out_dir/run.name) receives config.yaml, metrics.jsonl, \
        tensorboard/ and checkpoints/step-N (weights, trainer_state.json, optimizer.safetensors; \
        PPO's critic under critic/), written atomically every checkpoint.every_steps. Held-out \
        accuracy, greedy and sampled (run.eval_samples per problem at temperature 1), is measured \
        before the first step, every run.eval_every_steps (0: at each checkpoint) and at the end. \
        --resume RUN_DIR continues from its latest checkpoint.
        """)

    @Option(help: "Run configuration YAML (cluster/train-arithmetic.yaml, cluster/local.yaml).")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one key, e.g. --set algorithm.kl_beta=0.01 (repeatable).")
    var overrides: [String] = []

    @Option(help: "Run directory (default: run.out_dir/run.name).")
    var out: String?

    @Option(help: "Continue the run in this directory from its latest checkpoint (uses its config.yaml).")
    var resume: String?

    @Option(help: "SFT steps (of 32 examples) when the base checkpoint has to be created; deliberately short, so RL has headroom.")
    var baseSftSteps: Int = 60

    @Option(help: "Held-out prompts for the accuracy evaluations (default run.eval_prompts; 0 disables them).")
    var evalPrompts: Int?

    @OptionGroup var blas: BLASThreadOption

    func validate() throws {
        guard config != nil || resume != nil else { throw ValidationError("give --config FILE.yaml (or --resume RUN_DIR)") }
        guard baseSftSteps >= 1 else { throw ValidationError("--base-sft-steps must be at least 1") }
        guard (evalPrompts ?? 0) >= 0 else { throw ValidationError("--eval-prompts must be ≥ 0") }
    }

    func run() async throws {
        blas.apply()
        let log: (String) -> Void = { FileHandle.standardError.write(Data(("train: " + $0 + "\n").utf8)) }
        let runConfig: RunConfig
        let runDir: RunDirectory
        do {
            if let resume {
                runConfig = try RunConfig.load(contentsOf: URL(fileURLWithPath: resume).appendingPathComponent("config.yaml"), overrides: overrides)
                runDir = try RunDirectory(root: URL(fileURLWithPath: resume))
            } else {
                runConfig = try RunConfig.load(contentsOf: URL(fileURLWithPath: config!), overrides: overrides)
                let root = out.map { URL(fileURLWithPath: $0) }
                    ?? URL(fileURLWithPath: runConfig.run.outDir).appendingPathComponent(runConfig.run.name)
                runDir = try RunDirectory(root: root)
            }
            try runDir.writeResolvedConfig(runConfig)
        } catch let e as ConfigError {
            throw ValidationError("\(e)")
        }
        let c = runConfig
        let task = try TrainingTask(config: c, trainCount: 5000, heldOutCount: evalPrompts ?? c.run.evalPrompts)

        // Policy: the latest checkpoint of a resumed run, else the base checkpoint (made if missing).
        let latest = resume != nil ? try runDir.latestCheckpoint() : nil
        if latest == nil { try TrainRunSetup.ensureBaseCheckpoint(c, sftSteps: baseSftSteps, log: log) }
        let tokenizer = try ClusterTask.tokenizer(c)
        let policy: LlamaModel
        var trainerState: TrainerState?, optimizerState: OptimizerState?
        if let latest {
            let (m, ckpt) = try LlamaModel.load(from: latest.url.path)
            policy = m; trainerState = ckpt.trainerState; optimizerState = ckpt.optimizerState
            log("resuming \(runDir.root.path) from \(latest.url.lastPathComponent)")
        } else if !c.model.checkpoint.isEmpty {
            policy = try LlamaModel.load(from: c.model.checkpoint).model
        } else {
            policy = try LlamaModel(config: try TrainRunSetup.llamaConfig(c.model, tokenizer: .standard),
                                    seed: UInt64(truncatingIfNeeded: c.run.seed), std: c.model.initStd)
            log("model.checkpoint is empty: starting from a random initialisation (RL from scratch rarely finds a reward)")
        }
        // The frozen reference: named in the config, else the starting policy, kept in the run
        // directory so a resumed run measures KL to the same model.
        let referenceDir = runDir.root.appendingPathComponent("reference").path
        let reference: LlamaModel
        if !c.model.referenceCheckpoint.isEmpty {
            reference = try LlamaModel.load(from: c.model.referenceCheckpoint).model
        } else if FileManager.default.fileExists(atPath: referenceDir) {
            reference = try LlamaModel.load(from: referenceDir).model
        } else {
            reference = try LlamaModel(config: policy.config)
            reference.copyParameters(from: policy)
            try reference.save(to: referenceDir, tokenizer: tokenizer)
        }
        let options = TrainRunSetup.options(c, eosTokenId: tokenizer.eosId)
        var critic: ScalarHeadModel?
        if options.algorithm.algorithm == .ppo {
            let saved = latest.map { $0.url.appendingPathComponent("critic").path }
            if let saved, FileManager.default.fileExists(atPath: saved) {
                critic = try ScalarHeadModel.load(from: saved).model
            } else {
                let backbone = try LlamaModel(config: policy.config)
                backbone.copyParameters(from: reference)
                critic = ScalarHeadModel(backbone: backbone, seed: UInt64(truncatingIfNeeded: c.run.seed), std: 0)
            }
        }
        try options.validate(promptsPerBatch: c.rollout.promptsPerBatch)
        let trainer = try RLTrainer(policy: policy, reference: reference, critic: critic, options: options, padToken: tokenizer.paddingId)
        try trainer.restore(step: trainerState?.step ?? 0, optimizerState: optimizerState)

        let metrics = try MetricsWriter(runDirectory: runDir)
        let evaluation = PeriodicEvaluation(config: c, heldOut: task.heldOut,
                                            everySteps: c.run.evalEverySteps > 0 ? c.run.evalEverySteps : c.checkpoint.everySteps)
        func heldOutAccuracy() throws -> PeriodicEvaluation.Result? {
            try evaluation?.run(version: trainer.step, model: policy, tokenizer: tokenizer, verifier: task.exactAnswer)
        }
        let start = Date()
        var trainSeconds = 0.0
        var lastEvaluation: PeriodicEvaluation.Result?
        if let e = try heldOutAccuracy() {
            lastEvaluation = e
            log(e.summary)
            try metrics.write(MetricsRecord(step: trainer.step, scalars: e.scalars))
        }
        log("\(c.algorithm.name.rawValue): \(c.run.steps) steps of \(c.rollout.promptsPerBatch) prompts × \(c.rollout.groupSize) samples, task \(c.task.name), run directory \(runDir.root.path)")

        var line = ProgressLine(totalSteps: c.run.steps)
        line.linesWhenPiped = max(1, c.run.steps / max(1, c.run.progressEverySteps))
        let firstStep = trainer.step
        while trainer.step < c.run.steps {
            let prompts = task.batch(step: trainer.step, size: c.rollout.promptsPerBatch, seed: c.run.seed, shuffle: c.task.shuffle)
            let rlPrompts = try prompts.map { RLPrompt(tokens: try tokenizer.taskPromptIds($0.prompt)) }
            for (p, r) in zip(prompts, rlPrompts) where r.tokens.count > c.task.maxPromptTokens {
                throw ValidationError("prompt '\(p.id)' is \(r.tokens.count) tokens, more than task.max_prompt_tokens \(c.task.maxPromptTokens)")
            }
            let stepStart = Date()
            let m = try trainer.step(prompts: rlPrompts) { i, tokens in
                let p = prompts[i]
                let text = try PolicyEvaluator.text(of: tokens, tokenizer: tokenizer)
                let b = try task.verifier(for: p).checkedScore(completion: text, for: p)
                // Accuracy is always the exact answer's, also when a reward model gives the reward.
                let exact = task.rewardModel == nil ? b : try task.exactAnswer(for: p).checkedScore(completion: text, for: p)
                return RLScore(reward: b.reward, correct: exact.reward >= 1)
            }
            trainSeconds += Date().timeIntervalSince(stepStart)
            try metrics.write(MetricsRecord(step: m.step, scalars: Self.scalars(m, learnerTokens: m.sampledTokens)))
            let done = m.step - firstStep, total = c.run.steps - firstStep
            let eta = trainSeconds / Double(done) * Double(total - done)
            var text = String(format: "step %d/%d  reward %.3f±%.3f", m.step, c.run.steps, m.rewardMean, m.rewardStd)
            if let a = m.accuracy { text += String(format: "  acc %.3f", a) }
            if let kl = m.kl { text += String(format: "  kl %.4f", kl) }
            text += String(format: "  H %.3f  clip %.3f  len %.1f  %.0f tok/s", m.entropy, m.clipFraction, m.responseLength,
                           m.rolloutTokensPerSecond) + "  ETA " + ProgressLine.duration(eta)
            if let e = lastEvaluation { text += "  " + TetherCluster.ProgressLine.heldOut(e.scalars) }
            line.update(step: m.step, text)
            if evaluation?.isDue(version: m.step, totalSteps: c.run.steps) == true, let e = try heldOutAccuracy() {
                lastEvaluation = e
                try metrics.write(MetricsRecord(step: m.step, scalars: e.scalars))
                line.finish()
                log(e.summary + String(format: ", RL wall time %.0f s", trainSeconds))
            }
            if m.step % c.checkpoint.everySteps == 0 || m.step == c.run.steps {
                try saveCheckpoint(trainer, runDir: runDir, config: c, tokenizer: tokenizer, heldOut: lastEvaluation.flatMap { $0.version == m.step ? $0.greedy : nil })
                try metrics.sync()
            }
        }
        line.finish()
        log(String(format: "done: %d steps in %.0f s (RL steps %.0f s)", trainer.step - firstStep,
                   Date().timeIntervalSince(start), trainSeconds) + "; checkpoints in \(runDir.checkpointsDirectory.path)")
    }

    static func scalars(_ m: RLStepMetrics, learnerTokens: Int) -> [String: Double] {
        typealias K = MetricsRecord.Key
        var s: [String: Double] = [
            K.version: Double(m.step), K.rewardMean: m.rewardMean, K.rewardStd: m.rewardStd, K.entropy: m.entropy,
            K.clipFraction: m.clipFraction, K.effectiveSampleSize: m.effectiveSampleFraction,
            "response_length": m.responseLength, "zero_advantage_groups": m.zeroAdvantageGroupFraction,
            "loss": m.loss, "grad_norm": m.gradientNorm, "learning_rate": Double(m.learningRate),
            K.actorTokensPerSecond: m.rolloutTokensPerSecond,
            K.learnerTokensPerSecond: Double(learnerTokens) / max(m.updateSeconds, 1e-9),
            "time/rollout_s": m.rolloutSeconds, "time/update_s": m.updateSeconds,
        ]
        if let a = m.accuracy { s[K.accuracy] = a }
        if let kl = m.kl { s[K.kl] = kl }
        if let v = m.valueLoss { s["loss/value"] = v }
        return s
    }

    /// checkpoints/step-N: the policy (HF directory, trainer_state.json, optimizer.safetensors) and,
    /// for PPO, critic/ — staged in a hidden directory and renamed into place, then old ones pruned.
    func saveCheckpoint(_ trainer: RLTrainer, runDir: RunDirectory, config c: RunConfig, tokenizer: Tokenizer,
                        heldOut: PolicyEvaluation?) throws {
        let staging = try runDir.beginCheckpoint(step: trainer.step)
        var metrics: [String: Double] = [:]
        if let heldOut { metrics["held_out_accuracy"] = heldOut.accuracy }
        let o = trainer.options
        let state = TrainerState(
            trainer: "rl-\(o.algorithm.algorithm.rawValue)", step: trainer.step, totalSteps: c.run.steps, policyVersion: trainer.step,
            seed: o.seed, examplesSeen: trainer.step * c.rollout.promptsPerBatch * o.groupSize,
            optimizer: .init(learningRate: Double(o.learningRate), beta1: Double(o.adamW.beta1), beta2: Double(o.adamW.beta2),
                             epsilon: Double(o.adamW.epsilon), weightDecay: Double(o.adamW.weightDecay)),
            schedule: nil, metrics: metrics)
        try trainer.policy.save(to: staging.path, tokenizer: tokenizer, trainerState: state, optimizerState: trainer.optimizerState())
        if let critic = trainer.critic { try critic.save(to: staging.appendingPathComponent("critic").path, tokenizer: tokenizer) }
        try runDir.commitCheckpoint(step: trainer.step, staging: staging)
        try runDir.pruneCheckpoints(keep: c.checkpoint.keep)
    }
}
