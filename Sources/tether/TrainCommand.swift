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
        tensorboard/ and checkpoints/step-N (the learner's layout: policy/ with trainer_state.json and \
        optimizer.safetensors, PPO's critic under critic/, checksums.json), written atomically every \
        checkpoint.every_steps. Accuracy on the task's held-out problems (each once, as \
        `tether eval --config` measures it), greedy and sampled (run.eval_samples per problem at \
        temperature 1), is measured before the first step, every run.eval_every_steps (0: at each \
        checkpoint) and at the end. --resume RUN_DIR continues from its latest checkpoint.
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

    @Option(help: "Held-out problems for the accuracy evaluations, at most the split's distinct ones (default run.eval_prompts; 0 disables them).")
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
        var runConfig: RunConfig
        let runDir: RunDirectory
        var latest: RunCheckpoint.Restored?
        do {
            if let resume {
                runConfig = try RunConfig.load(contentsOf: URL(fileURLWithPath: resume).appendingPathComponent("config.yaml"), overrides: overrides)
                runDir = try RunDirectory(root: URL(fileURLWithPath: resume))
                if try runDir.latestCheckpoint() != nil { latest = try RunCheckpoint.readLatest(run: runDir) }
            } else {
                runConfig = try RunConfig.load(contentsOf: URL(fileURLWithPath: config!), overrides: overrides)
                let root = out.map { URL(fileURLWithPath: $0) }
                    ?? URL(fileURLWithPath: runConfig.run.outDir).appendingPathComponent(runConfig.run.name)
                runDir = try RunDirectory(root: root)
            }
            // Policy: the latest checkpoint of a resumed run, else the base checkpoint (made if missing).
            if latest == nil { try TrainRunSetup.ensureBaseCheckpoint(runConfig, sftSteps: baseSftSteps, log: log) }
            runConfig = try runConfig.resolvingModel()
            try runDir.writeResolvedConfig(runConfig)
        } catch let e as ConfigError {
            throw ValidationError("\(e)")
        }
        let c = runConfig
        guard c.task.reward != .service else {
            throw ValidationError("task.reward: service runs in the cluster only (its actors start the reward workers): use `tether launch`")
        }
        let task = try RunTask(config: c)
        let heldOut = try task.heldOutPrompts(count: evalPrompts ?? c.run.evalPrompts)
        let rewardModel = c.task.reward == .rewardModel ? try RewardModelScorer(directory: c.task.rewardModelPath) : nil
        let tokenizer = task.tokenizer
        let policy: LlamaModel
        var trainerState: TrainerState?, optimizerState: OptimizerState?
        if let latest {
            policy = try LlamaModel(checkpoint: latest.checkpoint)
            trainerState = latest.checkpoint.trainerState; optimizerState = latest.checkpoint.optimizerState
            log("resuming \(runDir.root.path) from \(latest.directory.lastPathComponent)")
        } else if !c.model.checkpoint.isEmpty {
            policy = try LlamaModel.load(from: c.model.checkpoint).model
        } else {
            policy = try LlamaModel(config: try c.policyArchitecture(),
                                    seed: UInt64(truncatingIfNeeded: c.run.seed), std: c.model.initStd)
            log("model.checkpoint is empty: starting from a random initialisation (RL from scratch rarely finds a reward)")
        }
        let reference = try runDir.referenceModel(config: c, policy: policy, tokenizer: tokenizer, resume: latest != nil)
        let options = c.rlOptions(eosTokenId: tokenizer.eosId, synchronous: true)
        var critic: ScalarHeadModel?
        if options.algorithm.algorithm == .ppo {
            let saved = latest.map { $0.directory.appendingPathComponent(RunCheckpoint.criticDirectory).path }
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
        trainer.update.reserveWorkspaces(prompts: c.rollout.promptsPerBatch, promptTokens: c.task.maxPromptTokens)

        let metrics = try MetricsWriter(runDirectory: runDir)
        let evaluation = PeriodicEvaluation(config: c, heldOut: heldOut,
                                            everySteps: c.run.evalEverySteps > 0 ? c.run.evalEverySteps : c.checkpoint.everySteps)
        func heldOutAccuracy() throws -> PeriodicEvaluation.Result? {
            try evaluation?.run(version: trainer.step, model: policy, task: task)
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

        var line = TerminalStatusLine(totalSteps: c.run.steps)
        line.linesWhenPiped = max(1, c.run.steps / max(1, c.run.progressEverySteps))
        let firstStep = trainer.step
        while trainer.step < c.run.steps {
            let size = c.rollout.promptsPerBatch
            let prompts = (0..<size).map { task.prompt(for: trainer.step * size + $0) }
            let rlPrompts = try prompts.map { RLPrompt(tokens: try $0.promptIds(tokenizer)) }
            for (p, r) in zip(prompts, rlPrompts) where r.tokens.count > c.task.maxPromptTokens {
                throw ValidationError("prompt '\(p.id)' is \(r.tokens.count) tokens, more than task.max_prompt_tokens \(c.task.maxPromptTokens)")
            }
            let stepStart = Date()
            var components = RewardTally()
            let m = try trainer.step(prompts: rlPrompts) { i, tokens in
                let p = prompts[i]
                let text = try PolicyEvaluator.text(of: tokens, tokenizer: tokenizer)
                let exact = try task.verifier.checkedScore(completion: text, for: p)
                // Accuracy is always the exact answer's, also when a reward model gives the reward.
                let b = try rewardModel?.checkedScore(completion: text, for: p) ?? exact
                components.add(exact)
                return RLScore(reward: b.reward, correct: exact.isCorrect)
            }
            trainSeconds += Date().timeIntervalSince(stepStart)
            var record = MetricsRecord(step: trainer.step, scalars: [MetricsRecord.Key.version: Double(trainer.step)])
            record.addUpdate(m)
            record.scalars[MetricsRecord.Key.actorTokensPerSecond] = m.rolloutTokensPerSecond
            record.scalars["time/rollout_s"] = m.rolloutSeconds
            record.scalars[MetricsRecord.Key.stepSeconds] = Date().timeIntervalSince(stepStart)
            record.addRewardComponents(components)
            try metrics.write(record)
            let done = trainer.step - firstStep, total = c.run.steps - firstStep
            let eta = trainSeconds / Double(done) * Double(total - done)
            var text = String(format: "step %d/%d  reward %.3f±%.3f", trainer.step, c.run.steps, m.rewardMean, m.rewardStd)
            if record.scalars[MetricsRecord.Key.correctRate] != nil {
                text += "  " + TetherCluster.ProgressLine.rewardShares(record.scalars).joined(separator: "  ")
            } else if let a = m.accuracy { text += String(format: "  acc %.3f", a) }
            if let kl = m.kl { text += String(format: "  kl %.4f", kl) }
            text += String(format: "  H %.3f  clip %.3f  len %.1f  %.0f tok/s", m.entropy, m.clipFraction, m.responseLength,
                           m.rolloutTokensPerSecond) + "  ETA " + TerminalStatusLine.duration(eta)
            if let e = lastEvaluation { text += "  " + ProgressLine.heldOut(e.scalars) }
            line.update(step: trainer.step, text)
            if evaluation?.isDue(version: trainer.step, totalSteps: c.run.steps) == true, let e = try heldOutAccuracy() {
                lastEvaluation = e
                try metrics.write(MetricsRecord(step: trainer.step, scalars: e.scalars))
                line.finish()
                log(e.summary + String(format: ", RL wall time %.0f s", trainSeconds))
            }
            if trainer.step % c.checkpoint.everySteps == 0 || trainer.step == c.run.steps {
                try saveCheckpoint(trainer, runDir: runDir, config: c, tokenizer: tokenizer,
                                   heldOut: lastEvaluation.flatMap { $0.version == trainer.step ? $0.greedy : nil })
                try metrics.sync()
            }
        }
        line.finish()
        log(String(format: "done: %d steps in %.0f s (RL steps %.0f s)", trainer.step - firstStep,
                   Date().timeIntervalSince(start), trainSeconds) + "; checkpoints in \(runDir.checkpointsDirectory.path)")
    }

    /// checkpoints/step-N in `RunCheckpoint`'s layout: policy/ with the trainer and optimizer
    /// state and, for PPO, critic/.
    func saveCheckpoint(_ trainer: RLTrainer, runDir: RunDirectory, config c: RunConfig, tokenizer: Tokenizer,
                        heldOut: PolicyEvaluation?) throws {
        var metrics: [String: Double] = [:]
        if let heldOut { metrics["held_out_accuracy"] = heldOut.accuracy }
        let o = trainer.options
        let state = TrainerState(
            trainer: "rl-\(o.algorithm.algorithm.rawValue)", step: trainer.step, totalSteps: c.run.steps, policyVersion: trainer.step,
            seed: o.seed, examplesSeen: trainer.step * c.rollout.promptsPerBatch * o.groupSize,
            optimizer: .init(learningRate: Double(o.learningRate), beta1: Double(o.adamW.beta1), beta2: Double(o.adamW.beta2),
                             epsilon: Double(o.adamW.epsilon), weightDecay: Double(o.adamW.weightDecay)),
            schedule: nil, metrics: metrics)
        try RunCheckpoint.write(run: runDir, step: trainer.step, keep: c.checkpoint.keep, policy: trainer.policy, tokenizer: tokenizer,
                                trainerState: state, optimizerState: trainer.optimizerState()) { staging in
            try trainer.critic?.save(to: staging.appendingPathComponent(RunCheckpoint.criticDirectory).path, tokenizer: tokenizer)
        }
    }
}
