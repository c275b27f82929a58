import Foundation
import TetherRL
import TetherRewards

/// Everything a run needs, one section per concern. Loaded from YAML by `RunConfig.load`, every key
/// documented in `cluster/local.yaml`, which holds exactly `RunConfig.defaults` (a test checks both).
/// Defaults suit a 2-core machine: one learner thread and one actor thread.
public struct RunConfig: Codable, Equatable, Sendable {
    public var model = ModelSection()
    public var task = TaskSection()
    public var algorithm = AlgorithmSection()
    public var rollout = RolloutSection()
    public var staleness = StalenessSection()
    public var learner = LearnerSection()
    public var actors = ActorsSection()
    public var wire = WireSection()
    public var checkpoint = CheckpointSection()
    public var run = RunSection()
    /// Leaf key paths the YAML or a `--set` gave (`model.hidden_size`); the others hold defaults.
    /// Provenance, not value: not encoded, and `==` ignores it. `policyArchitecture` checks only
    /// given `model.*` keys against an existing checkpoint.
    public var givenKeys: Set<String> = []

    enum CodingKeys: String, CodingKey { case model, task, algorithm, rollout, staleness, learner, actors, wire, checkpoint, run }

    public init() {}
    public static let defaults = RunConfig()

    public static func == (a: RunConfig, b: RunConfig) -> Bool {
        a.model == b.model && a.task == b.task && a.algorithm == b.algorithm && a.rollout == b.rollout && a.staleness == b.staleness
            && a.learner == b.learner && a.actors == b.actors && a.wire == b.wire && a.checkpoint == b.checkpoint && a.run == b.run
    }

    /// Admission-control policy for the learner's `StalenessController`.
    public var stalenessPolicy: StalenessPolicy {
        StalenessPolicy(
            maxStaleness: staleness.maxStaleness, groupsPerBatch: rollout.promptsPerBatch,
            promptsPerTicket: rollout.promptsPerTicket, leaseSeconds: actors.leaseSeconds,
            membership: MembershipPolicy(expectedActors: actors.count, startupGraceSeconds: 30,
                                         heartbeatTimeoutSeconds: actors.heartbeatTimeoutSeconds))
    }
}

/// A string-valued choice; decoding an unlisted value names the allowed ones.
public protocol ConfigChoice: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension ConfigChoice {
    public init(from decoder: Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let allowed = Self.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath, debugDescription: "invalid value '\(raw)'; expected one of \(allowed)"))
        }
        self = value
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// Policy architecture (Hugging Face `LlamaConfig` names) and where its weights come from.
public struct ModelSection: Codable, Equatable, Sendable {
    public var checkpoint = "runs/demo-base"
    public var referenceCheckpoint = ""
    public var vocabSize = 64
    public var hiddenSize = 128
    public var numHiddenLayers = 2
    public var numAttentionHeads = 4
    public var numKeyValueHeads = 4
    public var intermediateSize = 384
    public var maxPositionEmbeddings = 32
    public var ropeTheta = 10_000.0
    public var rmsNormEps = 1e-5
    public var tieWordEmbeddings = false
    public var initStd = 0.02

    enum CodingKeys: String, CodingKey {
        case checkpoint
        case referenceCheckpoint = "reference_checkpoint"
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case ropeTheta = "rope_theta"
        case rmsNormEps = "rms_norm_eps"
        case tieWordEmbeddings = "tie_word_embeddings"
        case initStd = "init_std"
    }
}

/// What scores completions: the task's built-in verifier, a reward model, or reward workers
/// speaking the reward-service protocol (`task.reward_service`).
public enum RewardSource: String, ConfigChoice { case verifier, rewardModel = "reward_model", service }
/// Which splits of a built-in task RL draws its prompts from. `train` keeps RL on problems the SFT
/// base never saw; `train_and_sft` adds the SFT split, for small problem spaces (one-digit addition
/// has 100 problems, 30 of them in `train`) where an under-trained base still has headroom on the
/// problems it was warmed up on. The held-out split is never drawn from.
public enum RLPromptSource: String, ConfigChoice { case train, trainAndSFT = "train_and_sft" }

/// The prompts and how completions are scored.
public struct TaskSection: Codable, Equatable, Sendable {
    public var name = "arithmetic:1"
    public var datasetPath = ""
    public var promptField = "prompt"
    public var answerField = "answer"
    public var reward = RewardSource.verifier
    public var rewardModelPath = ""
    public var maxPromptTokens = 8
    public var shuffle = true
    public var rlPrompts = RLPromptSource.trainAndSFT
    /// Where the verifier reads the answer, and what the chat prompts ask for.
    public var extract = AnswerFormat.lastInteger
    /// Weights of the verifier reward's components: R = correct·[right answer] + format·[requested
    /// form] + length·(overlong penalty ∈ [−1, 0]).
    public var correctWeight = 1.0
    public var formatWeight = 0.0
    public var lengthWeight = 0.0
    public var lengthMaxChars = 256
    public var lengthRampChars = 128
    public var rewardService = RewardServiceSection()

    enum CodingKeys: String, CodingKey {
        case name
        case datasetPath = "dataset_path"
        case promptField = "prompt_field"
        case answerField = "answer_field"
        case reward
        case rewardModelPath = "reward_model_path"
        case maxPromptTokens = "max_prompt_tokens"
        case shuffle
        case rlPrompts = "rl_prompts"
        case extract
        case correctWeight = "correct_weight"
        case formatWeight = "format_weight"
        case lengthWeight = "length_weight"
        case lengthMaxChars = "length_max_chars"
        case lengthRampChars = "length_ramp_chars"
        case rewardService = "reward_service"
    }

    /// The verifier reward these keys describe (`RewardSpec`: correct, format and length components).
    public func rewardSpec() throws -> RewardSpec {
        try RewardSpec(correct: Float(correctWeight), format: Float(formatWeight), length: Float(lengthWeight),
                       answerFormat: extract, lengthMaxChars: lengthMaxChars, lengthRampChars: lengthRampChars)
    }
}

/// Reward workers (`task.reward: service`): each actor starts `workers` processes of `command` and
/// scores every group through them (`RewardServicePool`; protocol in proto/README.md).
public struct RewardServiceSection: Codable, Equatable, Sendable {
    public var command = ""
    public var workers = 1
    public var timeoutSeconds = 30.0
    public var startupTimeoutSeconds = 60.0
    public var maxAttempts = 3
    /// Whether the learner may train one batch on samples scored by different reward versions.
    public var allowMixedVersions = false

    enum CodingKeys: String, CodingKey {
        case command, workers
        case timeoutSeconds = "timeout_seconds"
        case startupTimeoutSeconds = "startup_timeout_seconds"
        case maxAttempts = "max_attempts"
        case allowMixedVersions = "allow_mixed_versions"
    }

    /// The pool options these keys describe.
    public var options: RewardServiceOptions {
        RewardServiceOptions(command: command, workers: workers, timeoutSeconds: timeoutSeconds,
                             startupTimeoutSeconds: startupTimeoutSeconds, maxAttempts: maxAttempts)
    }
}

// TetherRL's choices are read and written by their raw values, the config's names.
extension RLAlgorithm: ConfigChoice {}
extension KLEstimator: ConfigChoice {}
/// How per-token losses become one number: DAPO's token mean, GRPO's per-sequence mean, or
/// Dr. GRPO's sum over tokens divided by a constant (max_new_tokens).
extension LossAggregation.Name: ConfigChoice {}

/// The RL objective.
public struct AlgorithmSection: Codable, Equatable, Sendable {
    public var name = RLAlgorithm.grpo
    public var clipEpsLow = 0.2
    public var clipEpsHigh = 0.2
    public var klBeta = 0.04
    public var klEstimator = KLEstimator.k3
    public var entropyCoef = 0.0
    public var lossAggregation = LossAggregation.Name.tokenMean
    public var epochsPerBatch = 1
    public var minibatches = 1
    public var gamma = 1.0
    public var gaeLambda = 0.95
    public var valueCoef = 0.5

    enum CodingKeys: String, CodingKey {
        case name
        case clipEpsLow = "clip_eps_low"
        case clipEpsHigh = "clip_eps_high"
        case klBeta = "kl_beta"
        case klEstimator = "kl_estimator"
        case entropyCoef = "entropy_coef"
        case lossAggregation = "loss_aggregation"
        case epochsPerBatch = "epochs_per_batch"
        case minibatches
        case gamma
        case gaeLambda = "gae_lambda"
        case valueCoef = "value_coef"
    }
}

/// Sampling on the actors.
public struct RolloutSection: Codable, Equatable, Sendable {
    public var groupSize = 8
    public var promptsPerBatch = 32
    public var promptsPerTicket = 4
    public var maxNewTokens = 3
    public var temperature = 1.0
    public var topP = 1.0
    public var topK = 0

    enum CodingKeys: String, CodingKey {
        case groupSize = "group_size"
        case promptsPerBatch = "prompts_per_batch"
        case promptsPerTicket = "prompts_per_ticket"
        case maxNewTokens = "max_new_tokens"
        case temperature
        case topP = "top_p"
        case topK = "top_k"
    }
}

/// The loss's treatment of samples from an older policy (`RunConfig.rlOptions` maps each to a
/// `PolicyObjective`; docs/staleness.md has the equations).
public enum OffPolicyCorrection: String, ConfigChoice {
    case none
    case decoupled
    case truncatedIS = "truncated_is"
    case maskedIS = "masked_is"
    case sequenceTruncatedIS = "sequence_truncated_is"
}
extension ProximalSource: ConfigChoice {}

/// η and the correction applied to groups sampled by an older policy.
public struct StalenessSection: Codable, Equatable, Sendable {
    public var maxStaleness = 2
    public var offPolicyCorrection = OffPolicyCorrection.decoupled
    public var isCap = 2.0
    public var proximalLogprobs = ProximalSource.forward

    enum CodingKeys: String, CodingKey {
        case maxStaleness = "max_staleness"
        case offPolicyCorrection = "off_policy_correction"
        case isCap = "is_cap"
        case proximalLogprobs = "proximal_logprobs"
    }
}

/// The learner process: optimizer and the endpoints it binds.
public struct LearnerSection: Codable, Equatable, Sendable {
    public var blasThreads = 1
    public var learningRate = 2e-4
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEps = 1e-8
    public var weightDecay = 0.0
    public var gradClipNorm = 1.0
    public var controlEndpoint = "tcp://127.0.0.1:5555"
    public var trajectoryEndpoint = "tcp://127.0.0.1:5556"
    public var weightsEndpoint = "tcp://127.0.0.1:5557"
    /// Host the learner binds its tcp endpoints' ports on ("" = the endpoints as written). ZeroMQ
    /// cannot bind a DNS name, so a multi-node run writes `tcp://<learner-node>:PORT` for the actors
    /// and binds `0.0.0.0` (all interfaces; needs CURVE keys) here.
    public var bindHost = ""
    /// Broadcast new weights on the PUB socket every this many versions. Between broadcasts an actor
    /// whose weights are too old for a ticket fetches the current version directly, so η still holds.
    public var broadcastEverySteps = 1
    /// Groups with a reward beyond ±this (after conversion to Float, the type the loss uses) are
    /// rejected as `reward_out_of_range`: a peer's 1e39 must not end the run or swamp the advantages.
    public var maxAbsReward = 10_000.0
    /// Groups with a behaviour log-prob below this are rejected as `logprob_out_of_range`: e^-100 is
    /// far below any token a sampler picks, and a −1e30 would overflow the importance ratio.
    public var minLogprob = -100.0
    /// Padded tokens (sequences × longest) per forward/backward of the update: bounds the
    /// activations a step keeps, whatever the batch (`PolicyUpdate`).
    public var microBatchTokens = RLTrainerOptions.defaultMicroBatchTokens

    enum CodingKeys: String, CodingKey {
        case blasThreads = "blas_threads"
        case learningRate = "learning_rate"
        case adamBeta1 = "adam_beta1"
        case adamBeta2 = "adam_beta2"
        case adamEps = "adam_eps"
        case weightDecay = "weight_decay"
        case gradClipNorm = "grad_clip_norm"
        case controlEndpoint = "control_endpoint"
        case trajectoryEndpoint = "trajectory_endpoint"
        case weightsEndpoint = "weights_endpoint"
        case bindHost = "bind_host"
        case broadcastEverySteps = "broadcast_every_steps"
        case maxAbsReward = "max_abs_reward"
        case minLogprob = "min_logprob"
        case microBatchTokens = "micro_batch_tokens"
    }
}

/// The actor processes.
public struct ActorsSection: Codable, Equatable, Sendable {
    public var count = 1
    public var blasThreads = 1
    public var leaseSeconds = 120.0
    public var heartbeatSeconds = 2.0
    public var heartbeatTimeoutSeconds = 10.0

    enum CodingKeys: String, CodingKey {
        case count
        case blasThreads = "blas_threads"
        case leaseSeconds = "lease_seconds"
        case heartbeatSeconds = "heartbeat_seconds"
        case heartbeatTimeoutSeconds = "heartbeat_timeout_seconds"
    }
}

/// ZeroMQ socket options shared by every process.
public struct WireSection: Codable, Equatable, Sendable {
    public var sendHWM = 1000
    public var receiveHWM = 1000
    public var maxMessageBytes = 268_435_456
    public var lingerMilliseconds = 0
    public var curveKeysDir = ""
    /// With CURVE, every key is bound to the actor id it is named after (`<actor-id>.pub` may only act
    /// as that actor). True lets the shared `actor` key act as any actor: one key pair for all actors
    /// (the Slurm and Kubernetes recipes), at the price that any holder of `actor.key` can claim any id.
    public var sharedActorKey = false

    enum CodingKeys: String, CodingKey {
        case sendHWM = "send_hwm"
        case receiveHWM = "receive_hwm"
        case maxMessageBytes = "max_message_bytes"
        case lingerMilliseconds = "linger_ms"
        case curveKeysDir = "curve_keys_dir"
        case sharedActorKey = "shared_actor_key"
    }
}

public struct CheckpointSection: Codable, Equatable, Sendable {
    public var everySteps = 50
    public var keep = 3

    enum CodingKeys: String, CodingKey {
        case everySteps = "every_steps"
        case keep
    }
}

public struct RunSection: Codable, Equatable, Sendable {
    public var steps = 600
    public var seed = 0
    public var outDir = "runs"
    public var name = "demo"
    public var progressEverySteps = 1
    /// Held-out evaluation (`PeriodicEvaluation`) every this many versions and at the last; 0 = none
    /// in the cluster, and at every checkpoint in `tether train`.
    public var evalEverySteps = 0
    /// Held-out problems each evaluation scores (a budget: the learner waits for it).
    public var evalPrompts = 200
    /// Samples per problem at temperature 1 for the sampled accuracy; 0 = greedy only.
    public var evalSamples = 4

    enum CodingKeys: String, CodingKey {
        case steps, seed
        case outDir = "out_dir"
        case name
        case progressEverySteps = "progress_every_steps"
        case evalEverySteps = "eval_every_steps"
        case evalPrompts = "eval_prompts"
        case evalSamples = "eval_samples"
    }
}
