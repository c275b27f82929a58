/// Per-sequence advantages from a group-relative estimator, with the count of groups that
/// carried no learning signal.
///
/// A group whose rewards are all equal (every sample right, or every sample wrong) has no
/// relative signal: its advantages are exactly 0, so it contributes no gradient. Such groups
/// are counted (`zeroStdGroupCount`, `fracZeroStd`) because a high fraction means the task is too
/// easy or too hard for the policy (DAPO's dynamic sampling filters exactly these groups).
/// A group of one sample has no baseline and is treated the same way.
public struct GroupAdvantages: Equatable, Sendable {
    /// One advantage per sequence, in the order of the rewards given.
    public var advantages: [Float]
    public var groupCount: Int
    public var zeroStdGroupCount: Int

    public var fracZeroStd: Float { groupCount == 0 ? 0 : Float(zeroStdGroupCount) / Float(groupCount) }
}

/// Sequence indices of each group, groups in order of first appearance; members may be
/// interleaved arbitrarily in the batch.
enum RewardGroups {
    static func members(rewards: [Float], groupIDs: [Int]) throws -> [[Int]] {
        try RLError.checkCount("groupIDs", groupIDs, rewards.count)
        try RLError.checkFinite("rewards", rewards)
        var slot: [Int: Int] = [:]
        var groups: [[Int]] = []
        for (i, g) in groupIDs.enumerated() {
            if let s = slot[g] { groups[s].append(i) } else { slot[g] = groups.count; groups.append([i]) }
        }
        return groups
    }

    /// True when the group has no relative signal: a single sample, or all rewards equal.
    /// The scaffold every group-baseline estimator shares: a degenerate group (all rewards equal)
    /// carries no learning signal and gets zero advantage (counted); for every other group,
    /// `perGroup` computes its statistics once and returns the advantage of each member.
    static func advantages(
        rewards: [Float], groupIDs: [Int], _ perGroup: ([Int]) -> (Int) -> Float
    ) throws -> GroupAdvantages {
        let groups = try members(rewards: rewards, groupIDs: groupIDs)
        var adv = [Float](repeating: 0, count: rewards.count)
        var zero = 0
        for g in groups {
            if isDegenerate(rewards, g) { zero += 1; continue }
            let advantage = perGroup(g)
            for i in g { adv[i] = advantage(i) }
        }
        return GroupAdvantages(advantages: adv, groupCount: groups.count, zeroStdGroupCount: zero)
    }

    static func isDegenerate(_ rewards: [Float], _ members: [Int]) -> Bool {
        guard members.count > 1 else { return true }
        let first = rewards[members[0]]
        return members.allSatisfy { rewards[$0] == first }
    }

    static func mean(_ rewards: [Float], _ members: [Int]) -> Double {
        members.reduce(0.0) { $0 + Double(rewards[$1]) } / Double(members.count)
    }
}

/// Which standard deviation GRPO divides by.
public enum RewardStd: String, Sendable, Codable {
    /// √(Σ(r−r̄)²/(G−1)) — Bessel-corrected, what `torch.Tensor.std` computes by default and
    /// therefore what the PyTorch peer (`shared/peers/torch_reference.py`), TRL and verl use.
    case unbiased
    /// √(Σ(r−r̄)²/G) — the population standard deviation.
    case biased
}

/// GRPO's group-normalised advantage (Shao et al. 2024, "DeepSeekMath", eq. 3 with outcome
/// supervision):
///
///     Â_i = (r_i − mean(r)) / (std(r) + ε)
///
/// over the G samples of one prompt; every token of completion i gets Â_i. By default `std` is
/// the unbiased (G−1) estimate and ε = 1e-4, matching the PyTorch peer exactly.
public enum GRPOAdvantage {
    public static func compute(
        rewards: [Float], groupIDs: [Int], epsilon: Float = 1e-4, std: RewardStd = .unbiased
    ) throws -> GroupAdvantages {
        try RewardGroups.advantages(rewards: rewards, groupIDs: groupIDs) { g in
            let m = RewardGroups.mean(rewards, g)
            let ss = g.reduce(0.0) { $0 + (Double(rewards[$1]) - m) * (Double(rewards[$1]) - m) }
            let denom = Double(std == .unbiased ? g.count - 1 : g.count)
            let s = (ss / denom).squareRoot()
            return { i in Float((Double(rewards[i]) - m) / (s + Double(epsilon))) }
        }
    }
}

/// Dr. GRPO's advantage (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical
/// Perspective"):
///
///     Â_i = r_i − mean(r)
///
/// Dividing by std(r) up-weights prompts that are nearly always solved or nearly always failed (a
/// question-level difficulty bias), so Dr. GRPO drops it. Its other half, dropping GRPO's 1/|o_i|
/// length normalisation, is a loss aggregation: use `LossAggregation.seqMeanTokenSumNorm`.
public enum DrGRPOAdvantage {
    public static func compute(rewards: [Float], groupIDs: [Int]) throws -> GroupAdvantages {
        try RewardGroups.advantages(rewards: rewards, groupIDs: groupIDs) { g in
            let m = RewardGroups.mean(rewards, g)
            return { i in Float(Double(rewards[i]) - m) }
        }
    }
}

/// REINFORCE leave-one-out (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style
/// Optimization for Learning from Human Feedback in LLMs", after Kool et al. 2019):
///
///     Â_i = r_i − 1/(k−1) · Σ_{j≠i} r_j  =  k/(k−1) · (r_i − mean(r))
///
/// Each sample's baseline is the mean of the other k−1 samples of its prompt, so the baseline is
/// independent of the sample and the gradient estimate stays unbiased.
public enum RLOOAdvantage {
    public static func compute(rewards: [Float], groupIDs: [Int]) throws -> GroupAdvantages {
        try RewardGroups.advantages(rewards: rewards, groupIDs: groupIDs) { g in
            let total = g.reduce(0.0) { $0 + Double(rewards[$1]) }
            let k = Double(g.count)
            return { i in Float(Double(rewards[i]) - (total - Double(rewards[i])) / (k - 1)) }
        }
    }
}
