/// What the receiver knows that a message must agree with. Checks that need no context (lengths,
/// finiteness, enum values, frame table) always run; the others run when their field is set.
public struct WireValidation: Sendable, Equatable {
    /// Token ids must be `< vocabularySize`.
    public var vocabularySize: Int?
    /// Policy versions in trajectories must be `<= currentPolicyVersion` (none from the future).
    public var currentPolicyVersion: UInt64?
    /// Actor ids of trajectory groups, ticket/weights requests and heartbeats must be in this set.
    /// `ActorJoin` is exempt: it is how an actor becomes known.
    public var knownActors: Set<String>?
    /// Verify each raw weights frame against its XXH64 in the header.
    public var verifyChecksums: Bool

    public init(vocabularySize: Int? = nil, currentPolicyVersion: UInt64? = nil, knownActors: Set<String>? = nil,
                verifyChecksums: Bool = true) {
        self.vocabularySize = vocabularySize; self.currentPolicyVersion = currentPolicyVersion
        self.knownActors = knownActors; self.verifyChecksums = verifyChecksums
    }

    /// Structural checks only.
    public static let structural = WireValidation()

    /// Checks `message` against this context and against the sizes of the raw frames that came
    /// after its envelope. Throws the first problem found.
    public func validate(_ message: WireMessage, attachmentSizes: [UInt64]) throws {
        let expected = message.expectedAttachmentSizes
        guard expected.count == attachmentSizes.count else {
            throw WireError.frameCountMismatch(expected: 1 + expected.count, got: 1 + attachmentSizes.count)
        }
        for (i, (e, g)) in zip(expected, attachmentSizes).enumerated() where e != g {
            throw WireError.frameSizeMismatch(frame: i + 1, expected: e, got: g)
        }
        switch message {
        case .actorJoin(let m):
            try requireNonEmpty(m.actorId, "actor_join.actor_id")
        case .ticketRequest(let m):
            try requireKnown(m.actorId, "ticket_request.actor_id")
        case .rolloutTicket(let m):
            try validate(m)
        case .trajectoryGroup(let m):
            try validate(m)
        case .weightsHeader(let m):
            try validate(m)
        case .weightsRequest(let m):
            try requireKnown(m.actorId, "weights_request.actor_id")
        case .heartbeat(let m):
            try requireNonEmpty(m.senderId, "heartbeat.sender_id")
            if m.role == .actor { try requireKnown(m.senderId, "heartbeat.sender_id") }
        case .control:
            break
        }
    }

    private func requireNonEmpty(_ id: String, _ field: String) throws {
        if id.isEmpty { throw WireError.invalidField(field: field, problem: "must not be empty") }
    }

    private func requireKnown(_ id: String, _ field: String) throws {
        try requireNonEmpty(id, field)
        if let known = knownActors, !known.contains(id) { throw WireError.unknownActor(id) }
    }

    private func checkTokens(_ tokens: [UInt32], _ field: String) throws {
        guard let vocab = vocabularySize else { return }
        // One pass for the maximum keeps this vectorizable; the offender is searched only on failure.
        let limit = UInt32(clamping: vocab)
        if let maxToken = tokens.max(), maxToken >= limit {
            throw WireError.tokenOutOfVocabulary(field: field, token: maxToken, vocabularySize: vocab)
        }
    }

    private func checkFinite(_ value: Double, _ field: String) throws {
        if !value.isFinite { throw WireError.nonFiniteValue(field: field) }
    }

    private func validate(_ m: RolloutTicket) throws {
        if m.groupSize == 0 { throw WireError.invalidField(field: "rollout_ticket.group_size", problem: "must be positive") }
        if !m.sampling.temperature.isFinite { throw WireError.nonFiniteValue(field: "rollout_ticket.sampling.temperature") }
        if !m.sampling.topP.isFinite { throw WireError.nonFiniteValue(field: "rollout_ticket.sampling.top_p") }
        for (i, p) in m.prompts.enumerated() { try checkTokens(p.tokens, "rollout_ticket.prompts[\(i)].tokens") }
        try checkTokens(m.sampling.stopTokens, "rollout_ticket.sampling.stop_tokens")
    }

    private func validate(_ m: TrajectoryGroup) throws {
        try requireKnown(m.actorId, "trajectory_group.actor_id")
        try checkTokens(m.promptTokens, "trajectory_group.prompt_tokens")
        for (i, s) in m.samples.enumerated() {
            let n = s.completionTokens.count
            if s.behaviourLogProbs.count != n {
                throw WireError.lengthMismatch(field: "trajectory_group.samples[\(i)].behaviour_logprobs", expected: n, got: s.behaviourLogProbs.count)
            }
            if s.tokenVersions.count != n {
                throw WireError.lengthMismatch(field: "trajectory_group.samples[\(i)].token_versions", expected: n, got: s.tokenVersions.count)
            }
            try checkTokens(s.completionTokens, "trajectory_group.samples[\(i)].completion_tokens")
            let allFinite = s.behaviourLogProbs.withUnsafeBufferPointer { buf in
                buf.reduce(true) { $0 && $1.isFinite }
            }
            if !allFinite { throw WireError.nonFiniteValue(field: "trajectory_group.samples[\(i)].behaviour_logprobs") }
            try checkFinite(s.reward, "trajectory_group.samples[\(i)].reward")
            for (j, c) in s.rewardComponents.enumerated() {
                try checkFinite(c.value, "trajectory_group.samples[\(i)].reward_components[\(j)] (\(c.name))")
            }
            try checkFinite(s.generationSeconds, "trajectory_group.samples[\(i)].generation_seconds")
            try checkFinite(s.scoringSeconds, "trajectory_group.samples[\(i)].scoring_seconds")
            if let current = currentPolicyVersion, let newest = s.tokenVersions.max(), newest > current {
                throw WireError.versionFromFuture(field: "trajectory_group.samples[\(i)].token_versions", version: newest, current: current)
            }
        }
    }

    private func validate(_ m: WeightsHeader) throws {
        if m.frameChecksums.count != m.frameLengths.count {
            throw WireError.lengthMismatch(field: "weights_header.frame_checksums", expected: m.frameLengths.count, got: m.frameChecksums.count)
        }
        let width = UInt64(m.dtype.byteWidth)
        if width == 0 { throw WireError.invalidField(field: "weights_header.dtype", problem: "must be set") }
        for t in m.tensors {
            guard Int(t.frame) < m.frameLengths.count else {
                throw WireError.invalidTensorLayout(name: t.name, problem: "frame \(t.frame) does not exist (\(m.frameLengths.count) frame(s))")
            }
            let frameLength = m.frameLengths[Int(t.frame)]
            let (end, overflow) = t.byteOffset.addingReportingOverflow(t.byteLength)
            if overflow || end > frameLength {
                throw WireError.invalidTensorLayout(name: t.name, problem: "bytes \(t.byteOffset)..<\(t.byteOffset &+ t.byteLength) leave frame \(t.frame) of \(frameLength) bytes")
            }
            var elements: UInt64 = 1
            for d in t.shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                if o { throw WireError.invalidTensorLayout(name: t.name, problem: "shape \(t.shape) overflows") }
                elements = p
            }
            let (bytes, o) = elements.multipliedReportingOverflow(by: width)
            if o || bytes != t.byteLength {
                throw WireError.invalidTensorLayout(name: t.name, problem: "shape \(t.shape) of \(m.dtype) needs \(elements) × \(width) bytes, header says \(t.byteLength)")
            }
        }
    }
}
