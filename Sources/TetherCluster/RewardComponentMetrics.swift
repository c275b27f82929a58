import TetherRewards

extension MetricsRecord.Key {
    /// Share of the step's samples with the right answer (the reward's `correct` component).
    public static let correctRate = "correct_rate"
    /// Share of the step's samples that gave the answer in the requested form (`format`).
    public static let formatRate = "format_rate"
    /// Mean overlong penalty of the step's samples, in [−1, 0] (`length`).
    public static let lengthPenalty = "length_penalty"
}

extension MetricsRecord {
    /// The step's reward components as scalars (`correct_rate`, `format_rate`, `length_penalty`),
    /// each only when the samples carried it: format and correctness side by side, so a policy that
    /// learns the tags rather than the answers shows on the progress line and in TensorBoard.
    public mutating func addRewardComponents(_ tally: RewardTally) {
        typealias K = Key
        for (component, key) in [("correct", K.correctRate), ("format", K.formatRate), ("length", K.lengthPenalty)] {
            if let mean = tally.mean(component) { scalars[key] = mean }
        }
    }
}

extension RunTask {
    /// The reward components of a batch's samples, by re-scoring each completion with the task's
    /// verifier (what the actor scored it with: the same config, the same deterministic rules), so
    /// the components need not travel on the wire. A sample the verifier cannot score is skipped:
    /// the actor could not have scored it either.
    public func rewardTally(_ samples: [(prompt: PromptID, completion: [Int])]) -> RewardTally {
        var tally = RewardTally()
        for s in samples {
            if let b = try? score(completionTokens: s.completion, for: prompt(for: s.prompt)) { tally.add(b) }
        }
        return tally
    }
}
