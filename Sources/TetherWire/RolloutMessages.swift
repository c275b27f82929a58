/// Messages of the rollout loop (DESIGN.md data flow): an actor joins, asks for tickets, the
/// learner grants `RolloutTicket`s, the actor streams back one `TrajectoryGroup` per prompt.

/// An actor announcing itself to the learner.
public struct ActorJoin: Sendable, Equatable {
    public var actorId: String
    public var host: String
    public var pid: UInt32
    /// The BLAS-thread budget the actor process runs with (DESIGN.md: threads are a budget).
    public var blasThreads: UInt32
    /// Reward scorers the actor can run: verifier names, or "reward_model".
    public var scorers: [String]
    /// Largest policy version the actor already holds (0: none yet).
    public var haveVersion: UInt64

    public init(actorId: String, host: String = "", pid: UInt32 = 0, blasThreads: UInt32 = 1,
                scorers: [String] = [], haveVersion: UInt64 = 0) {
        self.actorId = actorId; self.host = host; self.pid = pid; self.blasThreads = blasThreads
        self.scorers = scorers; self.haveVersion = haveVersion
    }
}

/// An actor asking for up to `count` more tickets.
public struct TicketRequest: Sendable, Equatable {
    public var actorId: String
    public var count: UInt32
    public init(actorId: String, count: UInt32) { self.actorId = actorId; self.count = count }
}

public struct SamplingSettings: Sendable, Equatable {
    public var temperature: Float
    public var topP: Float
    /// 0: no top-k cut.
    public var topK: UInt32
    public var maxNewTokens: UInt32
    public var seed: UInt64
    public var stopTokens: [UInt32]

    public init(temperature: Float = 1, topP: Float = 1, topK: UInt32 = 0, maxNewTokens: UInt32 = 64,
                seed: UInt64 = 0, stopTokens: [UInt32] = []) {
        self.temperature = temperature; self.topP = topP; self.topK = topK
        self.maxNewTokens = maxNewTokens; self.seed = seed; self.stopTokens = stopTokens
    }
}

public struct TicketPrompt: Sendable, Equatable {
    public var promptId: String
    public var tokens: [UInt32]
    public init(promptId: String, tokens: [UInt32]) { self.promptId = promptId; self.tokens = tokens }
}

/// The learner's grant to sample `groupSize` completions for each prompt with a policy no newer
/// than `policyVersion`, valid until `leaseDeadlineUnixMs` (after which the learner may re-issue it).
public struct RolloutTicket: Sendable, Equatable {
    public var ticketId: UInt64
    public var prompts: [TicketPrompt]
    public var groupSize: UInt32
    public var sampling: SamplingSettings
    public var policyVersion: UInt64
    public var leaseDeadlineUnixMs: Int64
    public var task: String

    public init(ticketId: UInt64, prompts: [TicketPrompt], groupSize: UInt32, sampling: SamplingSettings = .init(),
                policyVersion: UInt64, leaseDeadlineUnixMs: Int64, task: String = "") {
        self.ticketId = ticketId; self.prompts = prompts; self.groupSize = groupSize; self.sampling = sampling
        self.policyVersion = policyVersion; self.leaseDeadlineUnixMs = leaseDeadlineUnixMs; self.task = task
    }
}

public enum FinishReason: UInt32, Sendable, Equatable, CaseIterable {
    case unspecified = 0
    /// A stop / end-of-sequence token.
    case stop = 1
    /// `maxNewTokens` reached.
    case length = 2
    /// Drained, or the lease expired.
    case aborted = 3
    case error = 4
}

public struct RewardComponent: Sendable, Equatable {
    public var name: String
    public var value: Double
    public init(name: String, value: Double) { self.name = name; self.value = value }
}

/// One completion of a group. `completionTokens`, `behaviourLogProbs` and `tokenVersions` have
/// the same length: the decoder rejects a sample where they differ.
public struct TrajectorySample: Sendable, Equatable {
    public var completionTokens: [UInt32]
    /// log π_behaviour(token) under the policy that sampled it: the denominator of the
    /// importance ratio in PPO/GRPO and of AReaL's decoupled objective.
    public var behaviourLogProbs: [Float]
    /// The policy version that sampled each token: a sample may span a weight update.
    public var tokenVersions: [UInt64]
    public var reward: Double
    public var rewardComponents: [RewardComponent]
    public var finishReason: FinishReason
    public var generationSeconds: Double
    public var scoringSeconds: Double
    /// What scored this sample (a hash of the scorer's code and config, a user string, or a reward
    /// model checkpoint's checksum); "" means unversioned. Rewards of different versions are not
    /// comparable, so a batch mixing them would bias the group baseline.
    public var rewardVersion: String

    public init(completionTokens: [UInt32], behaviourLogProbs: [Float], tokenVersions: [UInt64], reward: Double,
                rewardComponents: [RewardComponent] = [], finishReason: FinishReason = .stop,
                generationSeconds: Double = 0, scoringSeconds: Double = 0, rewardVersion: String = "") {
        self.completionTokens = completionTokens; self.behaviourLogProbs = behaviourLogProbs
        self.tokenVersions = tokenVersions; self.reward = reward; self.rewardComponents = rewardComponents
        self.finishReason = finishReason; self.generationSeconds = generationSeconds; self.scoringSeconds = scoringSeconds
        self.rewardVersion = rewardVersion
    }

    /// The oldest policy version among this sample's tokens (what staleness is measured from).
    public var oldestVersion: UInt64? { tokenVersions.min() }
}

/// The G scored completions of one prompt, streamed actor → learner.
public struct TrajectoryGroup: Sendable, Equatable {
    public var ticketId: UInt64
    public var actorId: String
    public var promptId: String
    public var promptTokens: [UInt32]
    public var samples: [TrajectorySample]
    /// Non-empty when the actor could not score the group (its reward workers failed every
    /// attempt): `samples` is then empty and the learner re-issues the prompt.
    public var unscoredReason: String
    /// Failed reward-service attempts before the group was scored or given up.
    public var scoringRetries: UInt32

    public init(ticketId: UInt64, actorId: String, promptId: String, promptTokens: [UInt32], samples: [TrajectorySample],
                unscoredReason: String = "", scoringRetries: UInt32 = 0) {
        self.ticketId = ticketId; self.actorId = actorId; self.promptId = promptId
        self.promptTokens = promptTokens; self.samples = samples
        self.unscoredReason = unscoredReason; self.scoringRetries = scoringRetries
    }

    /// Completion tokens over all samples.
    public var completionTokenCount: Int { samples.reduce(0) { $0 + $1.completionTokens.count } }
}
