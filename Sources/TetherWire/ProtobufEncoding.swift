import CTetherWire
#if canImport(Glibc)
import Glibc
#endif

/// Owns every C allocation made while building one protobuf-c message tree from Swift values,
/// and frees all of it at once: nothing built for encoding outlives the `pack` call.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for b in blocks { free(b) } }

    func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A C copy of `values` (nil for an empty array, as protobuf-c expects with a count of 0).
    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        if values.isEmpty { return nil }
        let p = allocate(T.self, count: values.count)
        values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: values.count) }
        return p
    }

    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    func strings(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        if values.isEmpty { return nil }
        let p = allocate(UnsafeMutablePointer<CChar>?.self, count: values.count)
        for (i, s) in values.enumerated() { p[i] = string(s) }
        return p
    }

    /// An array of pointers to messages built by `make`.
    func messages<S, T>(_ values: [S], _ make: (S) -> UnsafeMutablePointer<T>) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        if values.isEmpty { return nil }
        let p = allocate(UnsafeMutablePointer<T>?.self, count: values.count)
        for (i, v) in values.enumerated() { p[i] = make(v) }
        return p
    }
}

/// Swift value → protobuf-c struct, allocated in an arena.
struct ProtobufEncoder {
    let arena = CArena()

    func envelope(_ message: WireMessage) -> UnsafeMutablePointer<Tether__Envelope> {
        let e = arena.allocate(Tether__Envelope.self)
        tether__envelope__init(e)
        e.pointee.protocol_version = WireProtocol.version
        switch message {
        case .actorJoin(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_ACTOR_JOIN
            e.pointee.actor_join = actorJoin(m)
        case .ticketRequest(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_TICKET_REQUEST
            let c = arena.allocate(Tether__TicketRequest.self)
            tether__ticket_request__init(c)
            c.pointee.actor_id = arena.string(m.actorId)
            c.pointee.count = m.count
            e.pointee.ticket_request = c
        case .rolloutTicket(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_ROLLOUT_TICKET
            e.pointee.rollout_ticket = rolloutTicket(m)
        case .trajectoryGroup(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_TRAJECTORY_GROUP
            e.pointee.trajectory_group = trajectoryGroup(m)
        case .weightsHeader(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_WEIGHTS_HEADER
            e.pointee.weights_header = weightsHeader(m)
        case .weightsRequest(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_WEIGHTS_REQUEST
            let c = arena.allocate(Tether__WeightsRequest.self)
            tether__weights_request__init(c)
            c.pointee.actor_id = arena.string(m.actorId)
            c.pointee.have_version = m.haveVersion
            e.pointee.weights_request = c
        case .heartbeat(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_HEARTBEAT
            let c = arena.allocate(Tether__Heartbeat.self)
            tether__heartbeat__init(c)
            c.pointee.sender_id = arena.string(m.senderId)
            c.pointee.role = Tether__Role(rawValue: m.role.rawValue)
            c.pointee.sequence = m.sequence
            c.pointee.sent_unix_ms = m.sentUnixMs
            c.pointee.policy_version = m.policyVersion
            c.pointee.in_flight_tickets = m.inFlightTickets
            e.pointee.heartbeat = c
        case .control(let m):
            e.pointee.body_case = TETHER__ENVELOPE__BODY_CONTROL
            let c = arena.allocate(Tether__Control.self)
            tether__control__init(c)
            c.pointee.kind = Tether__ControlKind(rawValue: m.kind.rawValue)
            c.pointee.reason = arena.string(m.reason)
            c.pointee.deadline_unix_ms = m.deadlineUnixMs
            e.pointee.control = c
        }
        return e
    }

    private func actorJoin(_ m: ActorJoin) -> UnsafeMutablePointer<Tether__ActorJoin> {
        let c = arena.allocate(Tether__ActorJoin.self)
        tether__actor_join__init(c)
        c.pointee.actor_id = arena.string(m.actorId)
        c.pointee.host = arena.string(m.host)
        c.pointee.pid = m.pid
        c.pointee.blas_threads = m.blasThreads
        c.pointee.n_scorers = m.scorers.count
        c.pointee.scorers = arena.strings(m.scorers)
        c.pointee.have_version = m.haveVersion
        return c
    }

    private func rolloutTicket(_ m: RolloutTicket) -> UnsafeMutablePointer<Tether__RolloutTicket> {
        let c = arena.allocate(Tether__RolloutTicket.self)
        tether__rollout_ticket__init(c)
        c.pointee.ticket_id = m.ticketId
        c.pointee.n_prompts = m.prompts.count
        c.pointee.prompts = arena.messages(m.prompts) { p in
            let cp = arena.allocate(Tether__Prompt.self)
            tether__prompt__init(cp)
            cp.pointee.prompt_id = arena.string(p.promptId)
            cp.pointee.n_tokens = p.tokens.count
            cp.pointee.tokens = arena.copy(p.tokens)
            return cp
        }
        c.pointee.group_size = m.groupSize
        let s = arena.allocate(Tether__SamplingSettings.self)
        tether__sampling_settings__init(s)
        s.pointee.temperature = m.sampling.temperature
        s.pointee.top_p = m.sampling.topP
        s.pointee.top_k = m.sampling.topK
        s.pointee.max_new_tokens = m.sampling.maxNewTokens
        s.pointee.seed = m.sampling.seed
        s.pointee.n_stop_tokens = m.sampling.stopTokens.count
        s.pointee.stop_tokens = arena.copy(m.sampling.stopTokens)
        c.pointee.sampling = s
        c.pointee.policy_version = m.policyVersion
        c.pointee.lease_deadline_unix_ms = m.leaseDeadlineUnixMs
        c.pointee.task = arena.string(m.task)
        return c
    }

    private func trajectoryGroup(_ m: TrajectoryGroup) -> UnsafeMutablePointer<Tether__TrajectoryGroup> {
        let c = arena.allocate(Tether__TrajectoryGroup.self)
        tether__trajectory_group__init(c)
        c.pointee.ticket_id = m.ticketId
        c.pointee.actor_id = arena.string(m.actorId)
        c.pointee.prompt_id = arena.string(m.promptId)
        c.pointee.n_prompt_tokens = m.promptTokens.count
        c.pointee.prompt_tokens = arena.copy(m.promptTokens)
        c.pointee.unscored_reason = arena.string(m.unscoredReason)
        c.pointee.scoring_retries = m.scoringRetries
        c.pointee.n_samples = m.samples.count
        c.pointee.samples = arena.messages(m.samples) { s in
            let cs = arena.allocate(Tether__Sample.self)
            tether__sample__init(cs)
            cs.pointee.n_completion_tokens = s.completionTokens.count
            cs.pointee.completion_tokens = arena.copy(s.completionTokens)
            cs.pointee.n_behaviour_logprobs = s.behaviourLogProbs.count
            cs.pointee.behaviour_logprobs = arena.copy(s.behaviourLogProbs)
            cs.pointee.n_token_versions = s.tokenVersions.count
            cs.pointee.token_versions = arena.copy(s.tokenVersions)
            cs.pointee.reward = s.reward
            cs.pointee.n_reward_components = s.rewardComponents.count
            cs.pointee.reward_components = arena.messages(s.rewardComponents) { r in
                let cr = arena.allocate(Tether__RewardComponent.self)
                tether__reward_component__init(cr)
                cr.pointee.name = arena.string(r.name)
                cr.pointee.value = r.value
                return cr
            }
            cs.pointee.finish_reason = Tether__FinishReason(rawValue: s.finishReason.rawValue)
            cs.pointee.generation_seconds = s.generationSeconds
            cs.pointee.scoring_seconds = s.scoringSeconds
            cs.pointee.reward_version = arena.string(s.rewardVersion)
            return cs
        }
        return c
    }

    private func weightsHeader(_ m: WeightsHeader) -> UnsafeMutablePointer<Tether__WeightsHeader> {
        let c = arena.allocate(Tether__WeightsHeader.self)
        tether__weights_header__init(c)
        c.pointee.version = m.version
        c.pointee.dtype = Tether__DType(rawValue: m.dtype.rawValue)
        c.pointee.n_tensors = m.tensors.count
        c.pointee.tensors = arena.messages(m.tensors) { t in
            let ct = arena.allocate(Tether__TensorEntry.self)
            tether__tensor_entry__init(ct)
            ct.pointee.name = arena.string(t.name)
            ct.pointee.n_shape = t.shape.count
            ct.pointee.shape = arena.copy(t.shape)
            ct.pointee.frame = t.frame
            ct.pointee.byte_offset = t.byteOffset
            ct.pointee.byte_length = t.byteLength
            return ct
        }
        c.pointee.n_frame_lengths = m.frameLengths.count
        c.pointee.frame_lengths = arena.copy(m.frameLengths)
        c.pointee.n_frame_checksums = m.frameChecksums.count
        c.pointee.frame_checksums = arena.copy(m.frameChecksums)
        return c
    }
}
