import CTetherWire

/// protobuf-c struct → Swift value. Reads only; the caller frees the unpacked tree.
enum ProtobufDecoder {
    static func envelope(_ e: UnsafePointer<Tether__Envelope>) throws -> WireMessage {
        let env = e.pointee
        guard env.protocol_version == WireProtocol.version else {
            throw WireError.unsupportedProtocolVersion(got: env.protocol_version, supported: WireProtocol.version)
        }
        switch env.body_case {
        case TETHER__ENVELOPE__BODY_ACTOR_JOIN:
            let c = try present(env.actor_join, "actor_join").pointee
            return .actorJoin(ActorJoin(
                actorId: string(c.actor_id), host: string(c.host), pid: c.pid, blasThreads: c.blas_threads,
                scorers: strings(c.scorers, c.n_scorers), haveVersion: c.have_version))
        case TETHER__ENVELOPE__BODY_TICKET_REQUEST:
            let c = try present(env.ticket_request, "ticket_request").pointee
            return .ticketRequest(TicketRequest(actorId: string(c.actor_id), count: c.count))
        case TETHER__ENVELOPE__BODY_ROLLOUT_TICKET:
            return .rolloutTicket(try rolloutTicket(try present(env.rollout_ticket, "rollout_ticket").pointee))
        case TETHER__ENVELOPE__BODY_TRAJECTORY_GROUP:
            return .trajectoryGroup(try trajectoryGroup(try present(env.trajectory_group, "trajectory_group").pointee))
        case TETHER__ENVELOPE__BODY_WEIGHTS_HEADER:
            return .weightsHeader(try weightsHeader(try present(env.weights_header, "weights_header").pointee))
        case TETHER__ENVELOPE__BODY_WEIGHTS_REQUEST:
            let c = try present(env.weights_request, "weights_request").pointee
            return .weightsRequest(WeightsRequest(actorId: string(c.actor_id), haveVersion: c.have_version))
        case TETHER__ENVELOPE__BODY_HEARTBEAT:
            let c = try present(env.heartbeat, "heartbeat").pointee
            return .heartbeat(Heartbeat(
                senderId: string(c.sender_id), role: try enumValue(c.role.rawValue, "heartbeat.role"),
                sequence: c.sequence, sentUnixMs: c.sent_unix_ms, policyVersion: c.policy_version,
                inFlightTickets: c.in_flight_tickets))
        case TETHER__ENVELOPE__BODY_CONTROL:
            let c = try present(env.control, "control").pointee
            return .control(Control(kind: try enumValue(c.kind.rawValue, "control.kind"), reason: string(c.reason),
                                    deadlineUnixMs: c.deadline_unix_ms))
        default:
            // protobuf-c keeps fields it does not know as unknown fields: a body from a newer schema.
            let base = env.base
            if base.n_unknown_fields > 0, let fields = base.unknown_fields {
                let tags = (0..<base.n_unknown_fields).map { fields[Int($0)].tag }
                throw WireError.unknownMessageType(fieldNumbers: tags)
            }
            throw WireError.missingMessageType
        }
    }

    private static func present<T>(_ p: UnsafeMutablePointer<T>?, _ field: String) throws -> UnsafeMutablePointer<T> {
        guard let p else { throw WireError.invalidField(field: field, problem: "body is null") }
        return p
    }

    private static func enumValue<E: RawRepresentable>(_ raw: UInt32, _ field: String) throws -> E where E.RawValue == UInt32 {
        guard let v = E(rawValue: raw) else { throw WireError.invalidEnumValue(field: field, value: raw) }
        return v
    }

    static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p)
    }

    static func strings(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ n: Int) -> [String] {
        guard let p, n > 0 else { return [] }
        return (0..<n).map { string(p[$0]) }
    }

    static func array<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> [T] {
        guard let p, n > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: n))
    }

    static func messages<C, S>(_ p: UnsafeMutablePointer<UnsafeMutablePointer<C>?>?, _ n: Int, _ field: String,
                               _ convert: (C) throws -> S) throws -> [S] {
        guard let p, n > 0 else { return [] }
        var out: [S] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            guard let item = p[i] else { throw WireError.invalidField(field: "\(field)[\(i)]", problem: "null entry") }
            out.append(try convert(item.pointee))
        }
        return out
    }

    private static func rolloutTicket(_ c: Tether__RolloutTicket) throws -> RolloutTicket {
        let prompts = try messages(c.prompts, c.n_prompts, "rollout_ticket.prompts") { p in
            TicketPrompt(promptId: string(p.prompt_id), tokens: array(p.tokens, p.n_tokens))
        }
        var sampling = SamplingSettings()
        if let s = c.sampling?.pointee {
            sampling = SamplingSettings(temperature: s.temperature, topP: s.top_p, topK: s.top_k,
                                        maxNewTokens: s.max_new_tokens, seed: s.seed,
                                        stopTokens: array(s.stop_tokens, s.n_stop_tokens))
        }
        return RolloutTicket(ticketId: c.ticket_id, prompts: prompts, groupSize: c.group_size, sampling: sampling,
                             policyVersion: c.policy_version, leaseDeadlineUnixMs: c.lease_deadline_unix_ms,
                             task: string(c.task))
    }

    private static func trajectoryGroup(_ c: Tether__TrajectoryGroup) throws -> TrajectoryGroup {
        let samples = try messages(c.samples, c.n_samples, "trajectory_group.samples") { s in
            TrajectorySample(
                completionTokens: array(s.completion_tokens, s.n_completion_tokens),
                behaviourLogProbs: array(s.behaviour_logprobs, s.n_behaviour_logprobs),
                tokenVersions: array(s.token_versions, s.n_token_versions),
                reward: s.reward,
                rewardComponents: try messages(s.reward_components, s.n_reward_components, "sample.reward_components") { r in
                    RewardComponent(name: string(r.name), value: r.value)
                },
                finishReason: try enumValue(s.finish_reason.rawValue, "sample.finish_reason"),
                generationSeconds: s.generation_seconds, scoringSeconds: s.scoring_seconds,
                rewardVersion: string(s.reward_version))
        }
        return TrajectoryGroup(ticketId: c.ticket_id, actorId: string(c.actor_id), promptId: string(c.prompt_id),
                               promptTokens: array(c.prompt_tokens, c.n_prompt_tokens), samples: samples,
                               unscoredReason: string(c.unscored_reason), scoringRetries: c.scoring_retries)
    }

    private static func weightsHeader(_ c: Tether__WeightsHeader) throws -> WeightsHeader {
        let tensors = try messages(c.tensors, c.n_tensors, "weights_header.tensors") { t in
            TensorEntry(name: string(t.name), shape: array(t.shape, t.n_shape), frame: t.frame,
                        byteOffset: t.byte_offset, byteLength: t.byte_length)
        }
        return WeightsHeader(version: c.version, dtype: try enumValue(c.dtype.rawValue, "weights_header.dtype"),
                             tensors: tensors, frameLengths: array(c.frame_lengths, c.n_frame_lengths),
                             frameChecksums: array(c.frame_checksums, c.n_frame_checksums))
    }
}
