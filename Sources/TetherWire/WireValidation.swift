/// What the receiver knows that a message must agree with. Checks that need no context (lengths,
/// finiteness, enum values, frame table, integer ranges, identifiers and text sizes) always run; the
/// others run when their field is set.
///
/// Every integer a receiver converts to `Int` is bounded here, so no conversion of peer data can
/// trap; every actor id is an identifier (`PeerText.identifierProblem`) and every free text is at
/// most `PeerText.maxTextBytes`, so nothing a peer sends can forge or flood a log line.
public struct WireValidation: Sendable, Equatable {
    /// Largest policy version accepted anywhere on the wire: 2^53, exact as a `Double` (metrics are
    /// JSON numbers) and far beyond any run (a version is one optimizer step).
    public static let maxVersion: UInt64 = 1 << 53
    /// Largest ticket count an actor may ask for in one request.
    public static let maxTicketRequestCount: UInt32 = 1 << 16
    /// Longest `Sample.reward_version`: a hash or a short user string, repeated on every sample.
    public static let maxRewardVersionBytes = 256

    /// With CURVE: which actor ids a sender may claim, given its key's name in the allow-list
    /// (the ZAP user id). Like a Kubernetes service account bound to its token, a key named
    /// `<actor-id>` may only act as that actor; a key whose name is in `sharedKeyNames` (the
    /// shared `actor` key, when the config allows it) may act as any actor.
    public struct IdentityBinding: Sendable, Equatable {
        public var sharedKeyNames: Set<String>
        public init(sharedKeyNames: Set<String> = []) { self.sharedKeyNames = sharedKeyNames }

        public func allows(key: String?, toClaim actorId: String) -> Bool {
            guard let key else { return false }
            return key == actorId || sharedKeyNames.contains(key)
        }
    }

    /// Token ids must be `< vocabularySize`.
    public var vocabularySize: Int?
    /// Policy versions in trajectories must be `<= currentPolicyVersion` (none from the future).
    public var currentPolicyVersion: UInt64?
    /// Actor ids of trajectory groups, ticket/weights requests and heartbeats must be in this set.
    /// `ActorJoin` is exempt: it is how an actor becomes known.
    public var knownActors: Set<String>?
    /// Verify each raw weights frame against its XXH64 in the header.
    public var verifyChecksums: Bool
    /// nil: any sender may claim any actor id (no CURVE, nothing to bind to).
    public var identityBinding: IdentityBinding?

    public init(vocabularySize: Int? = nil, currentPolicyVersion: UInt64? = nil, knownActors: Set<String>? = nil,
                verifyChecksums: Bool = true, identityBinding: IdentityBinding? = nil) {
        self.vocabularySize = vocabularySize; self.currentPolicyVersion = currentPolicyVersion
        self.knownActors = knownActors; self.verifyChecksums = verifyChecksums; self.identityBinding = identityBinding
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
            try requireIdentifier(m.actorId, "actor_join.actor_id")
            try requireText(m.host, "actor_join.host")
            try requireCount(m.scorers.count, "actor_join.scorers")
            for s in m.scorers { try requireText(s, "actor_join.scorers") }
            try requireVersion(m.haveVersion, "actor_join.have_version")
        case .ticketRequest(let m):
            try requireKnown(m.actorId, "ticket_request.actor_id")
            if m.count > Self.maxTicketRequestCount {
                throw WireError.integerOutOfRange(field: "ticket_request.count", value: UInt64(m.count), limit: UInt64(Self.maxTicketRequestCount))
            }
        case .rolloutTicket(let m):
            try validate(m)
        case .trajectoryGroup(let m):
            try validate(m)
        case .weightsHeader(let m):
            try validate(m)
        case .weightsRequest(let m):
            try requireKnown(m.actorId, "weights_request.actor_id")
            try requireVersion(m.haveVersion, "weights_request.have_version")
        case .heartbeat(let m):
            try requireIdentifier(m.senderId, "heartbeat.sender_id")
            if m.role == .actor { try requireKnown(m.senderId, "heartbeat.sender_id") }
            try requireVersion(m.policyVersion, "heartbeat.policy_version")
        case .control(let m):
            try requireText(m.reason, "control.reason")
        }
    }

    /// The actor id `message` claims to come from (nil for messages that name no actor).
    public static func claimedActor(_ message: WireMessage) -> String? {
        switch message {
        case .actorJoin(let m): return m.actorId
        case .ticketRequest(let m): return m.actorId
        case .trajectoryGroup(let m): return m.actorId
        case .weightsRequest(let m): return m.actorId
        case .heartbeat(let m) where m.role == .actor: return m.senderId
        default: return nil
        }
    }

    /// Throws `identityMismatch` when `identityBinding` forbids the sender's key (`peerUserId`) to
    /// claim the actor id the message names.
    public func checkIdentity(_ message: WireMessage, peerUserId: String?) throws {
        guard let binding = identityBinding, let claimed = Self.claimedActor(message) else { return }
        if !binding.allows(key: peerUserId, toClaim: claimed) {
            throw WireError.identityMismatch(claimed: claimed, key: peerUserId ?? "(none)")
        }
    }

    private func requireIdentifier(_ id: String, _ field: String) throws {
        if let problem = PeerText.identifierProblem(id) { throw WireError.invalidIdentifier(field: field, problem: problem) }
    }

    private func requireKnown(_ id: String, _ field: String) throws {
        try requireIdentifier(id, field)
        if let known = knownActors, !known.contains(id) { throw WireError.unknownActor(id) }
    }

    private func requireText(_ text: String, _ field: String) throws {
        let n = text.utf8.count
        if n > PeerText.maxTextBytes { throw WireError.textTooLong(field: field, bytes: n, limit: PeerText.maxTextBytes) }
    }

    /// Lists of names (scorers, reward components) are small; a long one is a flood, not data.
    private func requireCount(_ n: Int, _ field: String) throws {
        if n > 256 { throw WireError.integerOutOfRange(field: "\(field) count", value: UInt64(n), limit: 256) }
    }

    private func requireVersion(_ v: UInt64, _ field: String) throws {
        if v > Self.maxVersion { throw WireError.integerOutOfRange(field: field, value: v, limit: Self.maxVersion) }
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
        try requireVersion(m.policyVersion, "rollout_ticket.policy_version")
        try requireText(m.task, "rollout_ticket.task")
        for p in m.prompts { try requireText(p.promptId, "rollout_ticket.prompts.prompt_id") }
        if m.groupSize == 0 { throw WireError.invalidField(field: "rollout_ticket.group_size", problem: "must be positive") }
        if !m.sampling.temperature.isFinite { throw WireError.nonFiniteValue(field: "rollout_ticket.sampling.temperature") }
        if !m.sampling.topP.isFinite { throw WireError.nonFiniteValue(field: "rollout_ticket.sampling.top_p") }
        for (i, p) in m.prompts.enumerated() { try checkTokens(p.tokens, "rollout_ticket.prompts[\(i)].tokens") }
        try checkTokens(m.sampling.stopTokens, "rollout_ticket.sampling.stop_tokens")
    }

    private func validate(_ m: TrajectoryGroup) throws {
        try requireKnown(m.actorId, "trajectory_group.actor_id")
        try requireText(m.promptId, "trajectory_group.prompt_id")
        try checkTokens(m.promptTokens, "trajectory_group.prompt_tokens")
        try requireText(m.unscoredReason, "trajectory_group.unscored_reason")
        for (i, s) in m.samples.enumerated() {
            try requireCount(s.rewardComponents.count, "trajectory_group.samples[\(i)].reward_components")
            for c in s.rewardComponents { try requireText(c.name, "trajectory_group.samples[\(i)].reward_components.name") }
            if s.rewardVersion.utf8.count > Self.maxRewardVersionBytes {
                throw WireError.textTooLong(field: "trajectory_group.samples[\(i)].reward_version", bytes: s.rewardVersion.utf8.count,
                                            limit: Self.maxRewardVersionBytes)
            }
            if let newest = s.tokenVersions.max() { try requireVersion(newest, "trajectory_group.samples[\(i)].token_versions") }
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
        try requireVersion(m.version, "weights_header.version")
        for t in m.tensors { try requireText(t.name, "weights_header.tensors.name") }
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
