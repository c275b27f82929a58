import Foundation

extension RunConfig {
    /// Range and consistency checks that types alone cannot express; the first violation is thrown
    /// with its key path.
    public func validate() throws {
        func require(_ ok: Bool, _ path: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw ConfigError.invalidValue(path: path, reason: reason()) }
        }
        /// An integer in `lower...upper`. Upper bounds keep every derived quantity (sums, products,
        /// array sizes, `Int32` socket options) far from overflow, so no later conversion can trap.
        func integer(_ value: Int, _ path: String, _ lower: Int, _ upper: Int) throws {
            try require(value >= lower && value <= upper, path, "must be in \(lower)…\(upper), got \(value)")
        }
        func positive(_ value: Int, _ path: String, max upper: Int = ConfigLimits.count) throws { try integer(value, path, 1, upper) }
        /// A finite number in the interval; `open` excludes the lower end (a value that must be > lower).
        func number(_ value: Double, _ path: String, _ lower: Double, _ upper: Double, openBelow: Bool = false, openAbove: Bool = false) throws {
            let ok = value.isFinite && (openBelow ? value > lower : value >= lower) && (openAbove ? value < upper : value <= upper)
            let interval = (openBelow ? "(" : "[") + "\(lower), \(upper)" + (openAbove ? ")" : "]")
            try require(ok, path, "must be a finite number in \(interval), got \(value)")
        }
        func endpoint(_ value: String, _ path: String) throws {
            let ok = ["tcp://", "ipc://", "inproc://"].contains { value.hasPrefix($0) && value.count > $0.count }
            try require(ok, path, "must be a ZeroMQ endpoint like tcp://127.0.0.1:5555, got '\(value)'")
        }
        typealias L = ConfigLimits

        let m = model
        _ = try m.architecture()
        try number(m.initStd, "model.init_std", 0, 10)

        try require(!task.name.isEmpty, "task.name", "must name a built-in task or 'jsonl'")
        try require(task.name != "jsonl" || !task.datasetPath.isEmpty, "task.dataset_path", "required when task.name is jsonl")
        try require(task.reward != .rewardModel || !task.rewardModelPath.isEmpty, "task.reward_model_path",
                    "required when task.reward is reward_model")
        try require(task.reward != .service || !task.rewardService.command.trimmingCharacters(in: .whitespaces).isEmpty,
                    "task.reward_service.command", "required when task.reward is service (e.g. python3 scripts/rewards/worker.py --reward math)")
        try positive(task.rewardService.workers, "task.reward_service.workers", max: 256)
        try number(task.rewardService.timeoutSeconds, "task.reward_service.timeout_seconds", 0.001, 86_400)
        try number(task.rewardService.startupTimeoutSeconds, "task.reward_service.startup_timeout_seconds", 0.001, 86_400)
        try positive(task.rewardService.maxAttempts, "task.reward_service.max_attempts", max: 100)
        try positive(task.maxPromptTokens, "task.max_prompt_tokens", max: L.positions)
        for (value, key) in [(task.correctWeight, "correct_weight"), (task.formatWeight, "format_weight"), (task.lengthWeight, "length_weight")] {
            try number(value, "task.\(key)", 0, L.coefficient)
        }
        try positive(task.lengthMaxChars, "task.length_max_chars", max: L.positions)
        try integer(task.lengthRampChars, "task.length_ramp_chars", 1, task.lengthMaxChars)

        let a = algorithm
        try number(a.clipEpsLow, "algorithm.clip_eps_low", 0, 1, openAbove: true)
        try number(a.clipEpsHigh, "algorithm.clip_eps_high", 0, L.coefficient)
        try number(a.klBeta, "algorithm.kl_beta", 0, L.coefficient)
        try number(a.entropyCoef, "algorithm.entropy_coef", 0, L.coefficient)
        try positive(a.epochsPerBatch, "algorithm.epochs_per_batch", max: 1000)
        try positive(a.minibatches, "algorithm.minibatches")
        try number(a.gamma, "algorithm.gamma", 0, 1, openBelow: true)
        try number(a.gaeLambda, "algorithm.gae_lambda", 0, 1)
        try number(a.valueCoef, "algorithm.value_coef", 0, L.coefficient)

        let r = rollout
        try require(r.groupSize >= 2 || a.name == .ppo, "rollout.group_size",
                    "\(a.name.rawValue) compares samples within a group: needs ≥ 2, got \(r.groupSize)")
        try positive(r.groupSize, "rollout.group_size", max: 4096)
        try positive(r.promptsPerBatch, "rollout.prompts_per_batch")
        try positive(r.promptsPerTicket, "rollout.prompts_per_ticket")
        try require(r.promptsPerBatch % a.minibatches == 0, "algorithm.minibatches",
                    "must divide rollout.prompts_per_batch \(r.promptsPerBatch)")
        try positive(r.maxNewTokens, "rollout.max_new_tokens", max: L.positions)
        try number(r.temperature, "rollout.temperature", 0, 1000, openBelow: true)
        try number(r.topP, "rollout.top_p", 0, 1, openBelow: true)
        try integer(r.topK, "rollout.top_k", 0, L.vocabulary)

        // η + 1 sized histograms are allocated up front and checkpointed, so η is bounded too.
        try integer(staleness.maxStaleness, "staleness.max_staleness", 0, 1024)
        try number(staleness.isCap, "staleness.is_cap", 1, L.coefficient)
        try require(staleness.offPolicyCorrection != .maskedIS || staleness.isCap > 1, "staleness.is_cap",
                    "masked_is drops tokens whose behaviour ratio leaves [1/is_cap, is_cap]: needs is_cap > 1 (1 would drop every token), got \(staleness.isCap)")

        let l = learner
        try positive(l.blasThreads, "learner.blas_threads", max: L.threads)
        try positive(l.broadcastEverySteps, "learner.broadcast_every_steps", max: L.steps)
        // AdamW's step is about learning_rate per parameter whatever the gradient (Loshchilov &
        // Hutter 2019), so a rate above 1 moves every weight by more than its typical size per step.
        try number(l.learningRate, "learner.learning_rate", 0, 1, openBelow: true)
        try number(l.adamBeta1, "learner.adam_beta1", 0, 1, openAbove: true)
        try number(l.adamBeta2, "learner.adam_beta2", 0, 1, openAbove: true)
        try number(l.adamEps, "learner.adam_eps", 0, 1, openBelow: true)
        try number(l.weightDecay, "learner.weight_decay", 0, 1)
        try number(l.gradClipNorm, "learner.grad_clip_norm", 0, 1e6, openBelow: true)
        try positive(l.microBatchTokens, "learner.micro_batch_tokens")
        // Compared after conversion to Float, the type the loss uses: the bounds must be finite there.
        let floatMax = Double(Float.greatestFiniteMagnitude)
        try number(l.maxAbsReward, "learner.max_abs_reward", 0, floatMax, openBelow: true)
        try number(l.minLogprob, "learner.min_logprob", -floatMax, 0, openAbove: true)
        try endpoint(l.controlEndpoint, "learner.control_endpoint")
        try endpoint(l.trajectoryEndpoint, "learner.trajectory_endpoint")
        try endpoint(l.weightsEndpoint, "learner.weights_endpoint")
        try require(Set([l.controlEndpoint, l.trajectoryEndpoint, l.weightsEndpoint]).count == 3, "learner.weights_endpoint",
                    "the three learner endpoints must differ")
        try require(!l.bindHost.contains("/") && !l.bindHost.contains(" "), "learner.bind_host",
                    "must be a host (0.0.0.0, an IP address or an interface name) without scheme or port, got '\(l.bindHost)'")
        for (value, key) in [(l.controlEndpoint, "control_endpoint"), (l.trajectoryEndpoint, "trajectory_endpoint"), (l.weightsEndpoint, "weights_endpoint")]
        where !l.bindHost.isEmpty && value.hasPrefix("tcp://") {
            try require(RunConfig.tcpPort(value) != nil, "learner.\(key)", "learner.bind_host needs a numeric port, got '\(value)'")
        }

        try positive(actors.count, "actors.count", max: 1024)
        try positive(actors.blasThreads, "actors.blas_threads", max: L.threads)
        // Durations become milliseconds in Int32 socket options and deadlines in Double seconds;
        // a week keeps both exact and far from overflow.
        try number(actors.leaseSeconds, "actors.lease_seconds", 0, L.seconds, openBelow: true)
        try number(actors.heartbeatSeconds, "actors.heartbeat_seconds", 0, L.seconds, openBelow: true)
        try number(actors.heartbeatTimeoutSeconds, "actors.heartbeat_timeout_seconds", 0, L.seconds, openBelow: true)
        try require(actors.heartbeatTimeoutSeconds > actors.heartbeatSeconds, "actors.heartbeat_timeout_seconds",
                    "must exceed actors.heartbeat_seconds \(actors.heartbeatSeconds)")

        try positive(wire.sendHWM, "wire.send_hwm", max: L.queue)
        try positive(wire.receiveHWM, "wire.receive_hwm", max: L.queue)
        try integer(wire.maxMessageBytes, "wire.max_message_bytes", 1024, 1 << 40)
        try integer(wire.lingerMilliseconds, "wire.linger_ms", 0, Int(L.seconds) * 1000)

        try positive(checkpoint.everySteps, "checkpoint.every_steps", max: L.steps)
        try positive(checkpoint.keep, "checkpoint.keep", max: 1000)
        try positive(run.steps, "run.steps", max: L.steps)
        try require(!run.outDir.isEmpty, "run.out_dir", "must not be empty")
        try require(!run.name.isEmpty && !run.name.contains("/"), "run.name", "must be a non-empty file name")
        try positive(run.progressEverySteps, "run.progress_every_steps", max: L.steps)
        try integer(run.evalEverySteps, "run.eval_every_steps", 0, L.steps)
        try positive(run.evalPrompts, "run.eval_prompts", max: 1 << 20)
        try integer(run.evalSamples, "run.eval_samples", 0, 4096)
    }

    /// What the cluster cannot run, refused before any process starts: a reward model (the actors
    /// score with the task's verifier) and PPO (the learner trains no value model); `tether train`
    /// runs both.
    public func validateForCluster() throws {
        guard task.reward != .rewardModel else {
            throw ConfigError.invalidValue(path: "task.reward", reason: "reward_model is supported by `tether train` only; the cluster's actors score with the task's verifier (task.reward: verifier)")
        }
        guard algorithm.name != .ppo else {
            throw ConfigError.invalidValue(path: "algorithm.name", reason: "ppo needs a value model, which the cluster learner does not train: use grpo, dr_grpo or rloo (tether train runs ppo)")
        }
    }

    /// Threads all processes of this config would use on one machine (DESIGN.md: BLAS threads are
    /// a budget; keep this ≤ the machine's cores).
    public var totalBLASThreads: Int { learner.blasThreads + actors.count * actors.blasThreads }
}

/// Upper bounds of numeric config keys: generous for any model this code can train on a CPU, and
/// small enough that products and conversions of them (sizes, `Int32` socket options, milliseconds)
/// cannot overflow.
enum ConfigLimits {
    static let count = 1 << 30
    static let steps = 1 << 40
    static let vocabulary = 1 << 22
    static let positions = 1 << 20
    static let threads = 1024
    static let queue = 1 << 24
    static let coefficient = 1e6
    /// One week.
    static let seconds = 604_800.0
}
