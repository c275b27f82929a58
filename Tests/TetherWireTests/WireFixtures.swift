import Foundation
import TetherWire

/// Messages shared by the tests: typical, empty and maximal versions of each type.
enum WireFixtures {
    static func sample(tokens: [UInt32] = [1, 2, 3], version: UInt64 = 3, reward: Double = 1) -> TrajectorySample {
        TrajectorySample(completionTokens: tokens, behaviourLogProbs: tokens.map { -0.25 * Float($0 + 1) },
                         tokenVersions: tokens.map { _ in version }, reward: reward,
                         rewardComponents: [RewardComponent(name: "correct", value: reward), RewardComponent(name: "format", value: 0.5)],
                         finishReason: .stop, generationSeconds: 0.125, scoringSeconds: 0.0625, rewardVersion: "verifier-0123456789ab")
    }

    static func group(actor: String = "actor-1", samples: [TrajectorySample]? = nil) -> TrajectoryGroup {
        TrajectoryGroup(ticketId: 42, actorId: actor, promptId: "prompt-7", promptTokens: [5, 6, 7, 8],
                        samples: samples ?? [sample(), sample(tokens: [9, 10], version: 4, reward: 0)])
    }

    /// One message of every type with typical values.
    static var typical: [WireMessage] {
        [
            .actorJoin(ActorJoin(actorId: "actor-1", host: "node-3", pid: 4242, blasThreads: 1, scorers: ["math", "reward_model"], haveVersion: 3)),
            .ticketRequest(TicketRequest(actorId: "actor-1", count: 2)),
            .rolloutTicket(RolloutTicket(ticketId: 42, prompts: [TicketPrompt(promptId: "p0", tokens: [1, 2, 3]), TicketPrompt(promptId: "p1", tokens: [4])],
                                         groupSize: 8, sampling: SamplingSettings(temperature: 0.7, topP: 0.95, topK: 40, maxNewTokens: 64, seed: 99, stopTokens: [0]),
                                         policyVersion: 5, leaseDeadlineUnixMs: 1_700_000_000_000, task: "arithmetic")),
            .trajectoryGroup(group()),
            .weightsHeader(WeightsHeader(version: 5, dtype: .float32,
                                         tensors: [TensorEntry(name: "model.norm.weight", shape: [4], byteOffset: 0, byteLength: 16),
                                                   TensorEntry(name: "lm_head.weight", shape: [2, 2], byteOffset: 16, byteLength: 16)],
                                         frameLengths: [32], frameChecksums: [0])),
            .weightsRequest(WeightsRequest(actorId: "actor-1", haveVersion: 4)),
            .heartbeat(Heartbeat(senderId: "actor-1", role: .actor, sequence: 17, sentUnixMs: 1_700_000_000_123, policyVersion: 5, inFlightTickets: 2)),
            .control(Control(kind: .drain, reason: "checkpoint", deadlineUnixMs: 1_700_000_001_000)),
        ]
    }

    /// Every field at its zero value (what proto3 does not even put on the wire).
    static var empty: [WireMessage] {
        [
            .actorJoin(ActorJoin(actorId: "", host: "", pid: 0, blasThreads: 0, scorers: [], haveVersion: 0)),
            .ticketRequest(TicketRequest(actorId: "", count: 0)),
            .rolloutTicket(RolloutTicket(ticketId: 0, prompts: [], groupSize: 0,
                                         sampling: SamplingSettings(temperature: 0, topP: 0, topK: 0, maxNewTokens: 0, seed: 0, stopTokens: []),
                                         policyVersion: 0, leaseDeadlineUnixMs: 0, task: "")),
            .trajectoryGroup(TrajectoryGroup(ticketId: 0, actorId: "", promptId: "", promptTokens: [], samples: [])),
            .trajectoryGroup(TrajectoryGroup(ticketId: 0, actorId: "", promptId: "", promptTokens: [],
                                             samples: [TrajectorySample(completionTokens: [], behaviourLogProbs: [], tokenVersions: [], reward: 0,
                                                                        rewardComponents: [], finishReason: .unspecified)])),
            .weightsHeader(WeightsHeader(version: 0, dtype: .unspecified, tensors: [], frameLengths: [], frameChecksums: [])),
            .weightsRequest(WeightsRequest(actorId: "", haveVersion: 0)),
            .heartbeat(Heartbeat(senderId: "", role: .unspecified, sequence: 0, sentUnixMs: 0, policyVersion: 0, inFlightTickets: 0)),
            .control(Control(kind: .unspecified, reason: "", deadlineUnixMs: 0)),
        ]
    }

    /// Extreme values: the largest integers, negative int64s, long strings, long arrays.
    static var maximal: [WireMessage] {
        let long = String(repeating: "é", count: 5000)
        let tokens = (0..<10_000).map { UInt32.max - UInt32($0) }
        let maxSample = TrajectorySample(completionTokens: tokens, behaviourLogProbs: tokens.map { _ in -Float.greatestFiniteMagnitude },
                                         tokenVersions: tokens.map { _ in UInt64.max }, reward: -Double.greatestFiniteMagnitude,
                                         rewardComponents: (0..<100).map { RewardComponent(name: "\(long)\($0)", value: Double.leastNonzeroMagnitude) },
                                         finishReason: .error, generationSeconds: Double.greatestFiniteMagnitude, scoringSeconds: 1e-300,
                                         rewardVersion: long)
        return [
            .actorJoin(ActorJoin(actorId: long, host: long, pid: .max, blasThreads: .max, scorers: Array(repeating: long, count: 50), haveVersion: .max)),
            .ticketRequest(TicketRequest(actorId: long, count: .max)),
            .rolloutTicket(RolloutTicket(ticketId: .max, prompts: (0..<64).map { TicketPrompt(promptId: "\(long)\($0)", tokens: tokens) }, groupSize: .max,
                                         sampling: SamplingSettings(temperature: .greatestFiniteMagnitude, topP: -.greatestFiniteMagnitude, topK: .max,
                                                                    maxNewTokens: .max, seed: .max, stopTokens: tokens),
                                         policyVersion: .max, leaseDeadlineUnixMs: .min, task: long)),
            .trajectoryGroup(TrajectoryGroup(ticketId: .max, actorId: long, promptId: long, promptTokens: tokens, samples: Array(repeating: maxSample, count: 8))),
            .weightsHeader(WeightsHeader(version: .max, dtype: .float16,
                                         tensors: (0..<1000).map { TensorEntry(name: "\(long)\($0)", shape: [.max, .max, 0], frame: .max, byteOffset: .max, byteLength: .max) },
                                         frameLengths: Array(repeating: .max, count: 100), frameChecksums: Array(repeating: .max, count: 100))),
            .weightsRequest(WeightsRequest(actorId: long, haveVersion: .max)),
            .heartbeat(Heartbeat(senderId: long, role: .learner, sequence: .max, sentUnixMs: .min, policyVersion: .max, inFlightTickets: .max)),
            .control(Control(kind: .stop, reason: long, deadlineUnixMs: .max)),
        ]
    }

    /// The root of the repository (for proto/ and scripts/).
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Polls `condition` until it holds or `seconds` pass.
    static func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}
