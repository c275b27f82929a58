import TetherModel
import TetherRL

extension RunConfig {
    /// The `algorithm:`, `rollout:`, `staleness:` and `learner:` sections as TetherRL's options: the
    /// one mapping the cluster learner, `tether train` and `tether bench model` use, so a config
    /// means the same to each.
    ///
    /// `synchronous` is `tether train`'s case: one process samples with the weights it trains, so
    /// the behaviour policy is the proximal policy, `staleness:` does not apply, and the objective
    /// is PPO's clip around the behaviour policy. The cluster maps `staleness.off_policy_correction`:
    /// `none` is that clip too, `decoupled` AReaL's decoupled PPO with behaviour weights above
    /// `is_cap` masked (Fu et al. 2025, eq. 5), `truncated_is` truncated importance sampling with
    /// cap `is_cap` (Espeholt et al. 2018), and two more bounds on decoupled PPO's behaviour weight
    /// (`BehaviourWeight`): `masked_is` drops tokens outside [1/is_cap, is_cap] (IcePop, MIS),
    /// `sequence_truncated_is` truncates each sequence's weight at `is_cap`. The decoupled ones take
    /// π_prox from `staleness.proximal_logprobs`.
    public func rlOptions(eosTokenId: Int?, synchronous: Bool) -> RLTrainerOptions {
        let a = algorithm, r = rollout, l = learner, s = staleness
        let lo = Float(a.clipEpsLow), hi = Float(a.clipEpsHigh), cap = Float(s.isCap)
        let objective: PolicyObjective
        switch synchronous ? .none : s.offPolicyCorrection {
        case .none: objective = .ppoClip(epsilonLow: lo, epsilonHigh: hi)
        case .decoupled: objective = .decoupledPPO(epsilonLow: lo, epsilonHigh: hi, behaviourWeightCap: cap, capMode: .mask)
        case .truncatedIS: objective = .truncatedIS(cap: cap)
        case .maskedIS: objective = .decoupledPPO(epsilonLow: lo, epsilonHigh: hi, behaviourWeightCap: cap, capMode: .maskOutside)
        case .sequenceTruncatedIS:
            objective = .decoupledPPO(epsilonLow: lo, epsilonHigh: hi, behaviourWeightCap: cap, capMode: .truncateSequence)
        }
        let aggregation = LossAggregation(a.lossAggregation, maxNewTokens: r.maxNewTokens)
        // GRPO-family: β·KL inside the loss (DeepSeekMath eq. 3); PPO: folded into the token
        // rewards (InstructGPT eq. 2).
        let kl = a.klBeta > 0 ? KLPenalty(beta: Float(a.klBeta), estimator: a.klEstimator, placement: a.name == .ppo ? .reward : .loss) : nil
        let config = RLAlgorithmConfig(
            algorithm: a.name, objective: objective, proximal: s.proximalLogprobs, aggregation: aggregation, kl: kl, entropyCoefficient: Float(a.entropyCoef),
            gamma: Float(a.gamma), lambda: Float(a.gaeLambda))
        return RLTrainerOptions(
            algorithm: config, groupSize: r.groupSize, maxNewTokens: r.maxNewTokens,
            sampling: SamplingParameters(temperature: Float(r.temperature), topK: r.topK, topP: Float(r.topP), eosTokenId: eosTokenId),
            epochsPerBatch: a.epochsPerBatch, minibatches: a.minibatches, learningRate: Float(l.learningRate),
            adamW: AdamWHyperparameters(beta1: Float(l.adamBeta1), beta2: Float(l.adamBeta2), epsilon: Float(l.adamEps),
                                        weightDecay: Float(l.weightDecay)),
            maxGradientNorm: Float(l.gradClipNorm), valueCoefficient: Float(a.valueCoef),
            seed: UInt64(truncatingIfNeeded: run.seed), microBatchTokens: l.microBatchTokens)
    }
}
