import TetherRewards
import TetherWire

extension MetricsRecord.Key {
    /// Share of the step's samples with the right answer (the reward's `correct` component).
    public static let correctRate = "correct_rate"
    /// Share of the step's samples that gave the answer in the requested form (`format`).
    public static let formatRate = "format_rate"
    /// Mean overlong penalty of the step's samples, in [−1, 0] (`length`).
    public static let lengthPenalty = "length_penalty"
    /// Mean score of the step's samples under the reward model (`task.reward: reward_model`).
    public static let rewardModelScore = "reward_model_score"
}

extension MetricsRecord {
    /// The step's reward components as scalars (`correct_rate`, `format_rate`, `length_penalty`,
    /// `reward_model_score`), each only when the samples carried it: format and correctness side by
    /// side, so a policy that learns the tags rather than the answers shows on the progress line
    /// and in TensorBoard.
    public mutating func addRewardComponents(_ tally: RewardTally) {
        typealias K = Key
        for (component, key) in [("correct", K.correctRate), ("format", K.formatRate), ("length", K.lengthPenalty),
                                 ("reward_model", K.rewardModelScore)] {
            if let mean = tally.mean(component) { scalars[key] = mean }
        }
    }
}

extension RewardBreakdown {
    /// The components as a sample carries them on the wire (unweighted values, as Doubles).
    public var wireComponents: [TetherWire.RewardComponent] {
        components.map { TetherWire.RewardComponent(name: $0.name, value: Double($0.value)) }
    }
}

extension RewardTally {
    /// A sample's reward components as the actor scored them and sent them on the wire (unweighted,
    /// as `RewardBreakdown` holds them): the learner tallies these rather than re-scoring each
    /// completion, so its metrics cost nothing on the loop thread and hold for any scorer (a
    /// reward model or a reward service the learner could not run itself).
    public mutating func add(_ sample: TrajectorySample) {
        add(components: sample.rewardComponents.map { ($0.name, $0.value) })
    }
}
