/// The trajectories of one learner step: G completions for each of several prompts, with what
/// the actor recorded while sampling them.
public struct RolloutBatch: Sendable {
    /// Prompt token ids of each sequence (repeated across a group).
    public var promptTokens: [[Int]]
    /// Sampled completion token ids of each sequence (including `<eos>` when it was sampled).
    public var completionTokens: [[Int]]
    /// log π_behav of every completion token, flat in `layout` order.
    public var behaviourLogProbs: [Float]
    /// The verifier's reward of each sequence (already checked finite by `Verifier.checkedScore`).
    public var rewards: [Float]
    /// The prompt group of each sequence: completions of one prompt share an id.
    public var groupIDs: [Int]
    /// The policy version that sampled each sequence (staleness = learner version − this).
    public var policyVersions: [Int]
    public let layout: SequenceLayout

    public init(
        promptTokens: [[Int]], completionTokens: [[Int]], behaviourLogProbs: [Float], rewards: [Float],
        groupIDs: [Int], policyVersions: [Int]? = nil
    ) throws {
        let b = completionTokens.count
        try RLError.checkCount("promptTokens", promptTokens, b)
        try RLError.checkCount("rewards", rewards, b)
        try RLError.checkCount("groupIDs", groupIDs, b)
        let versions = policyVersions ?? [Int](repeating: 0, count: b)
        try RLError.checkCount("policyVersions", versions, b)
        layout = try SequenceLayout(lengths: completionTokens.map(\.count))
        try RLError.checkCount("behaviourLogProbs", behaviourLogProbs, layout.tokenCount)
        try RLError.checkFinite("rewards", rewards)
        try RLError.checkFinite("behaviourLogProbs", behaviourLogProbs)
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.behaviourLogProbs = behaviourLogProbs
        self.rewards = rewards
        self.groupIDs = groupIDs
        self.policyVersions = versions
    }

    public var sequenceCount: Int { completionTokens.count }
}
