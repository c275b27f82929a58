/// What a batch's advantages depend on, computed once per batch before any update.
public struct PreparedBatch: Sendable {
    public var layout: SequenceLayout
    /// Â per completion token.
    public var advantages: [Float]
    /// PPO's value targets per token (nil for the group estimators).
    public var returns: [Float]?
    /// The values recorded at preparation, the centre of the value clip (PPO only).
    public var oldValues: [Float]?
    /// The rewards the estimator saw (after a KL penalty folded into them).
    public var sequenceRewards: [Float]
    /// Group statistics (nil for PPO).
    public var groups: GroupAdvantages?

    /// Batch statistics for the metrics JSONL: reward mean and population std over sequences,
    /// advantage mean and mean |Â| over tokens, and `frac_zero_std` for the group estimators.
    public var metrics: [(String, Double)] {
        let n = Double(max(sequenceRewards.count, 1)), k = Double(max(advantages.count, 1))
        let mean = sequenceRewards.reduce(0.0) { $0 + Double($1) } / n
        let variance = sequenceRewards.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        var m: [(String, Double)] = [
            ("reward/mean", mean), ("reward/std", variance.squareRoot()),
            ("advantage/mean", advantages.reduce(0.0) { $0 + Double($1) } / k),
            ("advantage/abs_mean", advantages.reduce(0.0) { $0 + abs(Double($1)) } / k),
        ]
        if let g = groups { m.append(("frac_zero_std", Double(g.fracZeroStd))) }
        return m
    }
}

/// The model's outputs for one evaluation of the loss, per completion token.
public struct PolicyOutputs: Sendable {
    /// log π_θ (differentiated).
    public var logProbs: [Float]
    /// Per-position entropy (differentiated; needed with an entropy bonus).
    public var entropy: [Float]?
    /// log π_ref of the frozen reference (needed with a KL penalty in the loss).
    public var refLogProbs: [Float]?
    /// log π_prox, the learner's weights before this update (needed by decoupled PPO).
    public var proximalLogProbs: [Float]?
    /// V_θ per token from the value head (PPO; differentiated).
    public var values: [Float]?

    public init(logProbs: [Float], entropy: [Float]? = nil, refLogProbs: [Float]? = nil, proximalLogProbs: [Float]? = nil, values: [Float]? = nil) {
        self.logProbs = logProbs
        self.entropy = entropy
        self.refLogProbs = refLogProbs
        self.proximalLogProbs = proximalLogProbs
        self.values = values
    }
}

/// The loss of one evaluation and the per-token gradients the model's backward consumes.
public struct RLLossOutput: Sendable {
    public var policy: PolicyLossResult
    /// PPO's clipped value loss and dL/dV (nil for the group estimators).
    public var value: ValueLoss.Result?
    public var dLogProbs: [Float] { policy.dLogProbs }
    public var dEntropy: [Float]? { policy.dEntropy }
    /// Policy loss plus value loss.
    public var totalLoss: Float { policy.loss + (value?.loss ?? 0) }
}

/// The pure core of the single-process trainer: batch → advantages (once), then policy outputs →
/// loss and per-token gradients (each update), chosen by `RLAlgorithmConfig`. The model-driven
/// loop only runs forward, calls `evaluate`, and runs backward with the returned gradients.
public enum RLObjective {
    /// Advantages (and PPO's returns) of a batch. `refLogProbs` are the reference log-probs of the
    /// sampled tokens, needed when the KL penalty is folded into the reward; `values` are the value
    /// model's V(s_t) at preparation time, needed by PPO.
    public static func prepare(_ batch: RolloutBatch, config: RLAlgorithmConfig, refLogProbs: [Float]? = nil, values: [Float]? = nil) throws -> PreparedBatch {
        let layout = batch.layout
        let klInReward = config.kl.map { $0.placement == .reward && $0.beta != 0 } ?? false
        var ref: [Float]? = nil
        if klInReward {
            guard let r = refLogProbs else { throw RLError.missingInput(name: "refLogProbs", neededBy: "the KL penalty in the reward") }
            try RLError.checkCount("refLogProbs", r, layout.tokenCount)
            try RLError.checkFinite("refLogProbs", r)
            ref = r
        }
        switch config.algorithm {
        case .grpo, .drGRPO, .rloo:
            var rewards = batch.rewards
            if let ref, let kl = config.kl {
                rewards = try KLRewardShaping.penalizeSequences(
                    scores: rewards, logProbs: batch.behaviourLogProbs, refLogProbs: ref, layout: layout, beta: kl.beta, estimator: kl.estimator)
            }
            let groups: GroupAdvantages
            switch config.algorithm {
            case .grpo: groups = try GRPOAdvantage.compute(rewards: rewards, groupIDs: batch.groupIDs, epsilon: config.grpoEpsilon, std: config.grpoStd)
            case .drGRPO: groups = try DrGRPOAdvantage.compute(rewards: rewards, groupIDs: batch.groupIDs)
            default: groups = try RLOOAdvantage.compute(rewards: rewards, groupIDs: batch.groupIDs)
            }
            return PreparedBatch(layout: layout, advantages: try layout.broadcast(groups.advantages), returns: nil, oldValues: nil, sequenceRewards: rewards, groups: groups)
        case .ppo:
            guard let values else { throw RLError.missingInput(name: "values", neededBy: "PPO's GAE") }
            var tokenRewards = try GAE.outcomeTokenRewards(scores: batch.rewards, layout: layout)
            if let ref, let kl = config.kl {
                tokenRewards = try KLRewardShaping.penalizeTokens(
                    tokenRewards: tokenRewards, logProbs: batch.behaviourLogProbs, refLogProbs: ref, beta: kl.beta, estimator: kl.estimator)
            }
            let gae = try GAE.compute(tokenRewards: tokenRewards, values: values, layout: layout, gamma: config.gamma, lambda: config.lambda)
            let adv = config.whitenAdvantages ? AdvantageWhitening.whiten(gae.advantages) : gae.advantages
            let seqRewards = (0 ..< layout.sequenceCount).map { s in layout.range(of: s).reduce(Float(0)) { $0 + tokenRewards[$1] } }
            return PreparedBatch(layout: layout, advantages: adv, returns: gae.returns, oldValues: values, sequenceRewards: seqRewards, groups: nil)
        }
    }

    /// Loss and gradients for the current policy outputs.
    public static func evaluate(_ batch: RolloutBatch, prepared: PreparedBatch, outputs: PolicyOutputs, config: RLAlgorithmConfig) throws -> RLLossOutput {
        let input = PolicyLossInput(
            layout: prepared.layout, logProbs: outputs.logProbs, behaviourLogProbs: batch.behaviourLogProbs,
            advantages: prepared.advantages, proximalLogProbs: outputs.proximalLogProbs, refLogProbs: outputs.refLogProbs,
            entropy: outputs.entropy)
        let policy = try PolicyLoss.compute(input, config: config.policyLossConfig)
        var value: ValueLoss.Result? = nil
        if config.algorithm == .ppo {
            guard let v = outputs.values else { throw RLError.missingInput(name: "values", neededBy: "PPO's value loss") }
            value = try ValueLoss.clipped(
                values: v, oldValues: prepared.oldValues!, returns: prepared.returns!, layout: prepared.layout,
                epsilon: config.valueClip, aggregation: config.aggregation)
        }
        return RLLossOutput(policy: policy, value: value)
    }
}
