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
    /// Whether the scorer counted each sequence correct (nil where it cannot say, e.g. a reward
    /// model): the accuracy metric's input, never the loss's.
    public var correct: [Bool?]
    /// log π_ref of each sequence's completion tokens when already computed elsewhere (an actor or
    /// the learner's `ReferenceScorer`); nil entries are computed by the update.
    public var referenceLogProbs: [[Float]?]
    public let layout: SequenceLayout

    public init(
        promptTokens: [[Int]], completionTokens: [[Int]], behaviourLogProbs: [Float], rewards: [Float],
        groupIDs: [Int], policyVersions: [Int]? = nil, correct: [Bool?]? = nil, referenceLogProbs: [[Float]?]? = nil
    ) throws {
        let b = completionTokens.count
        try RLError.checkCount("promptTokens", promptTokens, b)
        try RLError.checkCount("rewards", rewards, b)
        try RLError.checkCount("groupIDs", groupIDs, b)
        let versions = policyVersions ?? [Int](repeating: 0, count: b)
        try RLError.checkCount("policyVersions", versions, b)
        let correct = correct ?? [Bool?](repeating: nil, count: b)
        try RLError.checkCount("correct", correct, b)
        let reference = referenceLogProbs ?? [[Float]?](repeating: nil, count: b)
        try RLError.checkCount("referenceLogProbs", reference, b)
        layout = try SequenceLayout(lengths: completionTokens.map(\.count))
        try RLError.checkCount("behaviourLogProbs", behaviourLogProbs, layout.tokenCount)
        try RLError.checkFinite("rewards", rewards)
        try RLError.checkFinite("behaviourLogProbs", behaviourLogProbs)
        for (s, r) in reference.enumerated() {
            guard let r else { continue }
            try RLError.checkCount("referenceLogProbs[\(s)]", r, completionTokens[s].count)
            try RLError.checkFinite("referenceLogProbs[\(s)]", r)
        }
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.behaviourLogProbs = behaviourLogProbs
        self.rewards = rewards
        self.groupIDs = groupIDs
        self.policyVersions = versions
        self.correct = correct
        self.referenceLogProbs = reference
    }

    public var sequenceCount: Int { completionTokens.count }

    /// The sequences `indices` with their slices of the per-token arrays (a minibatch or a
    /// micro-batch).
    public func sequences(_ indices: [Int]) throws -> RolloutBatch {
        try RolloutBatch(
            promptTokens: indices.map { promptTokens[$0] }, completionTokens: indices.map { completionTokens[$0] },
            behaviourLogProbs: layout.gather(behaviourLogProbs, sequences: indices), rewards: indices.map { rewards[$0] },
            groupIDs: indices.map { groupIDs[$0] }, policyVersions: indices.map { policyVersions[$0] },
            correct: indices.map { correct[$0] }, referenceLogProbs: indices.map { referenceLogProbs[$0] })
    }

    /// The sequences of `parts` in order, as one batch (group ids kept as they are).
    public init(concatenating parts: [RolloutBatch]) throws {
        try self.init(
            promptTokens: parts.flatMap(\.promptTokens), completionTokens: parts.flatMap(\.completionTokens),
            behaviourLogProbs: parts.flatMap(\.behaviourLogProbs), rewards: parts.flatMap(\.rewards), groupIDs: parts.flatMap(\.groupIDs),
            policyVersions: parts.flatMap(\.policyVersions), correct: parts.flatMap(\.correct),
            referenceLogProbs: parts.flatMap(\.referenceLogProbs))
    }
}
