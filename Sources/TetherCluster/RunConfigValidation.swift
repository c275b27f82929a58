import Foundation

extension RunConfig {
    /// Range and consistency checks that types alone cannot express; the first violation is thrown
    /// with its key path.
    public func validate() throws {
        func require(_ ok: Bool, _ path: String, _ reason: @autoclosure () -> String) throws {
            if !ok { throw ConfigError.invalidValue(path: path, reason: reason()) }
        }
        func positive(_ value: Int, _ path: String) throws { try require(value > 0, path, "must be > 0, got \(value)") }
        func nonNegative(_ value: Double, _ path: String) throws {
            try require(value.isFinite && value >= 0, path, "must be a finite number ≥ 0, got \(value)")
        }
        func endpoint(_ value: String, _ path: String) throws {
            let ok = ["tcp://", "ipc://", "inproc://"].contains { value.hasPrefix($0) && value.count > $0.count }
            try require(ok, path, "must be a ZeroMQ endpoint like tcp://127.0.0.1:5555, got '\(value)'")
        }

        let m = model
        for (value, key) in [(m.vocabSize, "vocab_size"), (m.hiddenSize, "hidden_size"), (m.numHiddenLayers, "num_hidden_layers"),
                             (m.numAttentionHeads, "num_attention_heads"), (m.numKeyValueHeads, "num_key_value_heads"),
                             (m.intermediateSize, "intermediate_size"), (m.maxPositionEmbeddings, "max_position_embeddings")] {
            try positive(value, "model.\(key)")
        }
        try require(m.hiddenSize % m.numAttentionHeads == 0, "model.hidden_size",
                    "\(m.hiddenSize) is not divisible by model.num_attention_heads \(m.numAttentionHeads)")
        try require(m.numAttentionHeads % m.numKeyValueHeads == 0, "model.num_key_value_heads",
                    "model.num_attention_heads \(m.numAttentionHeads) is not a multiple of \(m.numKeyValueHeads)")
        try require(m.ropeTheta > 0, "model.rope_theta", "must be > 0")
        try require(m.rmsNormEps > 0, "model.rms_norm_eps", "must be > 0")
        try nonNegative(m.initStd, "model.init_std")

        try require(!task.name.isEmpty, "task.name", "must name a built-in task or 'jsonl'")
        try require(task.name != "jsonl" || !task.datasetPath.isEmpty, "task.dataset_path", "required when task.name is jsonl")
        try require(task.reward != .rewardModel || !task.rewardModelPath.isEmpty, "task.reward_model_path",
                    "required when task.reward is reward_model")
        try positive(task.maxPromptTokens, "task.max_prompt_tokens")

        let a = algorithm
        try require(a.clipEpsLow >= 0 && a.clipEpsLow < 1, "algorithm.clip_eps_low", "must be in [0, 1), got \(a.clipEpsLow)")
        try require(a.clipEpsHigh >= 0 && a.clipEpsHigh.isFinite, "algorithm.clip_eps_high", "must be ≥ 0, got \(a.clipEpsHigh)")
        try nonNegative(a.klBeta, "algorithm.kl_beta")
        try nonNegative(a.entropyCoef, "algorithm.entropy_coef")
        try positive(a.epochsPerBatch, "algorithm.epochs_per_batch")
        try positive(a.minibatches, "algorithm.minibatches")
        try require(a.gamma > 0 && a.gamma <= 1, "algorithm.gamma", "must be in (0, 1], got \(a.gamma)")
        try require(a.gaeLambda >= 0 && a.gaeLambda <= 1, "algorithm.gae_lambda", "must be in [0, 1], got \(a.gaeLambda)")
        try nonNegative(a.valueCoef, "algorithm.value_coef")

        let r = rollout
        try require(r.groupSize >= 2 || a.name == .ppo, "rollout.group_size",
                    "\(a.name.rawValue) compares samples within a group: needs ≥ 2, got \(r.groupSize)")
        try positive(r.groupSize, "rollout.group_size")
        try positive(r.promptsPerBatch, "rollout.prompts_per_batch")
        try positive(r.promptsPerTicket, "rollout.prompts_per_ticket")
        try require(r.promptsPerBatch % a.minibatches == 0, "algorithm.minibatches",
                    "must divide rollout.prompts_per_batch \(r.promptsPerBatch)")
        try positive(r.maxNewTokens, "rollout.max_new_tokens")
        try require(task.maxPromptTokens + r.maxNewTokens <= m.maxPositionEmbeddings, "rollout.max_new_tokens",
                    "task.max_prompt_tokens + max_new_tokens = \(task.maxPromptTokens + r.maxNewTokens) exceeds model.max_position_embeddings \(m.maxPositionEmbeddings)")
        try require(r.temperature > 0 && r.temperature.isFinite, "rollout.temperature", "must be > 0, got \(r.temperature)")
        try require(r.topP > 0 && r.topP <= 1, "rollout.top_p", "must be in (0, 1], got \(r.topP)")
        try require(r.topK >= 0, "rollout.top_k", "must be ≥ 0 (0 = off), got \(r.topK)")

        try require(staleness.maxStaleness >= 0, "staleness.max_staleness", "must be ≥ 0, got \(staleness.maxStaleness)")
        try require(staleness.isCap >= 1 && staleness.isCap.isFinite, "staleness.is_cap", "must be ≥ 1, got \(staleness.isCap)")

        let l = learner
        try positive(l.blasThreads, "learner.blas_threads")
        try positive(l.broadcastEverySteps, "learner.broadcast_every_steps")
        try require(l.learningRate > 0 && l.learningRate.isFinite, "learner.learning_rate", "must be > 0")
        try require(l.adamBeta1 >= 0 && l.adamBeta1 < 1, "learner.adam_beta1", "must be in [0, 1)")
        try require(l.adamBeta2 >= 0 && l.adamBeta2 < 1, "learner.adam_beta2", "must be in [0, 1)")
        try require(l.adamEps > 0, "learner.adam_eps", "must be > 0")
        try nonNegative(l.weightDecay, "learner.weight_decay")
        try require(l.gradClipNorm > 0, "learner.grad_clip_norm", "must be > 0")
        try require(l.maxAbsReward > 0 && l.maxAbsReward <= Double(Float.greatestFiniteMagnitude), "learner.max_abs_reward",
                    "must be > 0 and finite as a 32-bit float, got \(l.maxAbsReward)")
        try require(l.minLogprob < 0 && l.minLogprob >= -Double(Float.greatestFiniteMagnitude), "learner.min_logprob",
                    "must be < 0 and finite as a 32-bit float, got \(l.minLogprob)")
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

        try positive(actors.count, "actors.count")
        try positive(actors.blasThreads, "actors.blas_threads")
        try require(actors.leaseSeconds > 0, "actors.lease_seconds", "must be > 0")
        try require(actors.heartbeatSeconds > 0, "actors.heartbeat_seconds", "must be > 0")
        try require(actors.heartbeatTimeoutSeconds > actors.heartbeatSeconds, "actors.heartbeat_timeout_seconds",
                    "must exceed actors.heartbeat_seconds \(actors.heartbeatSeconds)")

        try positive(wire.sendHWM, "wire.send_hwm")
        try positive(wire.receiveHWM, "wire.receive_hwm")
        try require(wire.maxMessageBytes >= 1024, "wire.max_message_bytes", "must be ≥ 1024, got \(wire.maxMessageBytes)")
        try require(wire.lingerMilliseconds >= 0, "wire.linger_ms", "must be ≥ 0")

        try positive(checkpoint.everySteps, "checkpoint.every_steps")
        try positive(checkpoint.keep, "checkpoint.keep")
        try positive(run.steps, "run.steps")
        try require(!run.outDir.isEmpty, "run.out_dir", "must not be empty")
        try require(!run.name.isEmpty && !run.name.contains("/"), "run.name", "must be a non-empty file name")
        try positive(run.progressEverySteps, "run.progress_every_steps")
    }

    /// Threads all processes of this config would use on one machine (DESIGN.md: BLAS threads are
    /// a budget; keep this ≤ the machine's cores).
    public var totalBLASThreads: Int { learner.blasThreads + actors.count * actors.blasThreads }
}
