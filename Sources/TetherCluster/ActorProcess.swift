import Foundation
import Logging
import TetherKernels
import TetherModel
import TetherRewards
import TetherWire

/// An actor process (`tether actor`): joins the learner, keeps the newest weights it has received,
/// takes one ticket at a time, samples G completions per prompt with the KV-cache sampler, scores
/// them with the task's verifier, and pushes each group with per-token behaviour log-probs and
/// versions.
///
/// It never runs ahead on its own: it asks for the next ticket only after pushing the last one, and
/// the learner answers only within the staleness budget, so an actor that is too far ahead simply
/// waits for the answer (admission control, AReaL §5.1) instead of sampling groups that would be
/// dropped. A background thread drains the weights SUB socket and acknowledges each new version
/// at once (the learner's broadcast-latency figure); the main thread installs the newest copy
/// between tickets. When the learner restarts (new incarnation in its heartbeats, or silence for
/// `actors.heartbeat_timeout_seconds`) the actor re-joins and resumes; ZeroMQ reconnects by itself.
public final class ActorProcess {
    let config: RunConfig
    let actorID: String
    let logger: Logger
    let task: RunTask
    let model: LlamaModel
    let context: WireContext
    let control: WireSocket
    let trajectories: WireSocket
    let weights: WireSocket
    let inbox = LatestWeights()
    /// Version of the weights in `model`; -1 until the first weights arrive.
    var installedVersion = -1
    var heartbeatSequence: UInt64 = 0
    public private(set) var groupsPushed = 0
    /// Seconds to sleep before pushing each group: simulates a slow actor (fault-injection tests).
    public var simulatedDelaySeconds = 0.0
    /// Set when a stop arrives while a ticket is being served.
    var stopRequested = false
    /// The reward workers (`task.reward: service`), started lazily by their first request.
    let rewardService: RewardServicePool?

    public init(config: RunConfig, actorID: String, logger: Logger) throws {
        self.config = config
        self.actorID = actorID
        self.logger = logger
        try config.validateForCluster()
        task = try RunTask(config: config)
        rewardService = config.task.reward == .service ? try RewardServicePool(options: config.task.rewardService.options) : nil
        model = try LlamaModel(config: try config.policyArchitecture())
        let ctx = try WireContext()
        context = ctx
        let security = try ClusterSecurity.actorSecurity(config: config, actorID: actorID)
        control = try WireSocket(context: ctx, options: config.socketOptions(.control, learnerSide: false, security: security))
        trajectories = try WireSocket(context: ctx, options: config.socketOptions(.trajectories, learnerSide: false, security: security))
        var sub = config.socketOptions(.weights, learnerSide: false, security: security)
        sub.validation = WireValidation(verifyChecksums: true)
        weights = try WireSocket(context: ctx, options: sub)
    }

    /// The newest weights received by the SUB thread, waiting to be installed.
    final class LatestWeights: @unchecked Sendable {
        // @unchecked Sendable: all state behind `lock`.
        private let lock = NSLock()
        private var pending: (version: Int, values: [Float])?
        private var newest = -1
        private var installed = -1
        private var stopped = false

        /// Keeps `values` if newer than anything seen. `authoritative`: a direct reply from the
        /// learner, which is its current version even when older than what we hold (it restarted
        /// from a checkpoint): always kept, and broadcasts are then compared against it.
        func offer(version: Int, values: [Float], authoritative: Bool = false) -> Bool {
            lock.lock(); defer { lock.unlock() }
            guard version > newest || (authoritative && version != installed) else { return false }
            newest = version
            pending = (version, values)
            return true
        }
        func take() -> (version: Int, values: [Float])? {
            lock.lock(); defer { lock.unlock() }
            let p = pending
            pending = nil
            return p
        }
        /// The version the main thread has installed in the model (-1: none yet).
        var installedVersion: Int {
            get { lock.lock(); defer { lock.unlock() }; return installed }
            set { lock.lock(); installed = newValue; lock.unlock() }
        }
        /// What heartbeats report: the newest version held or about to be installed.
        var reportedVersion: Int { lock.lock(); defer { lock.unlock() }; return max(0, pending?.version ?? installed) }
        var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }
        func stop() { lock.lock(); stopped = true; lock.unlock() }
    }

    /// Runs until the learner says stop or a signal arrives. Returns normally in both cases.
    public func run(shouldStop: () -> Bool = { StopSignal.requested }) throws {
        defer { context.close(); rewardService?.stop() }
        let layout = model.layout
        let heartbeatPeriod = config.actors.heartbeatSeconds
        let subscriberDone = DispatchSemaphore(value: 0)
        let subscriber = Thread { [weights, inbox, control, actorID, logger] in
            defer { subscriberDone.signal() }
            // Heartbeats come from this thread so that a long generation never looks like a dead
            // actor to the learner (slow actors are the lease's business, dead ones the heartbeat's).
            var lastBeat = 0.0
            var sequence: UInt64 = 0
            while !inbox.isStopped {
                let now = nowSeconds()
                if now - lastBeat >= heartbeatPeriod {
                    lastBeat = now
                    sequence += 1
                    let h = Heartbeat(senderId: actorID, role: .actor, sequence: sequence, sentUnixMs: Int64(now * 1000),
                                      policyVersion: UInt64(inbox.reportedVersion))
                    _ = try? control.trySend(.heartbeat(h))
                }
                guard let m = weights.receive(timeout: min(0.1, heartbeatPeriod)) else { continue }
                do {
                    let (version, values) = try WeightReceiver.unpack(m, layout: layout)
                    if inbox.offer(version: version, values: values) {
                        // Acknowledge at once: the learner measures broadcast latency from this.
                        let h = Heartbeat(senderId: actorID, role: .actor, sequence: 0, sentUnixMs: Int64(nowSeconds() * 1000),
                                          policyVersion: UInt64(version))
                        _ = try? control.trySend(.heartbeat(h))
                    }
                } catch {
                    logger.error("\(error)")
                }
            }
        }
        subscriber.name = "tether.actor.weights"
        subscriber.start()
        defer { inbox.stop() }

        var learnerName: String?
        var lastHeard = nowSeconds()
        var waitingForTicket = false
        var paused = false
        join()
        while !shouldStop() {
            let now = nowSeconds()
            installPendingWeights()
            if now - lastHeard > config.actors.heartbeatTimeoutSeconds {
                logger.warning("no word from the learner for \(Int(now - lastHeard)) s: re-joining")
                lastHeard = now
                waitingForTicket = false
                join()
            }
            if installedVersion >= 0 && !waitingForTicket && !paused {
                sendHeartbeat()  // the learner reads our weights version from it before the request
                try? control.send(.ticketRequest(TicketRequest(actorId: actorID, count: 1)), timeout: 1)
                waitingForTicket = true
            }
            guard let m = control.receive(timeout: 0.05) else { continue }
            lastHeard = nowSeconds()
            switch m.message {
            case .heartbeat(let h) where h.role == .learner:
                if let known = learnerName, known != h.senderId {
                    logger.info("learner restarted (\(known) → \(h.senderId)): re-joining")
                    waitingForTicket = false
                    join()
                }
                learnerName = h.senderId
            case .weightsHeader:
                do {
                    let (version, values) = try WeightReceiver.unpack(m, layout: layout)
                    if inbox.offer(version: version, values: values, authoritative: true) { installPendingWeights() }
                } catch { logger.error("\(error)") }
                waitingForTicket = false  // sent because our weights were too old: ask again
            case .rolloutTicket(let ticket):
                try sample(ticket, shouldStop: shouldStop)
                waitingForTicket = false
                lastHeard = nowSeconds()  // we were busy, the learner was not silent
                if stopRequested { logger.info("learner says stop; \(groupsPushed) groups pushed"); return }
            case .control(let c):
                switch c.kind {
                case .stop:
                    logger.info("learner says stop (\(c.reason)); \(groupsPushed) groups pushed")
                    return
                case .drain: paused = true
                case .resume: paused = false
                case .unspecified: break
                }
            default:
                break
            }
        }
        logger.info("stopping on signal; \(groupsPushed) groups pushed")
        leave(subscriberDone: subscriberDone)
    }

    /// Tells the learner we are going (SIGTERM/SIGINT), so it forgets us and re-issues whatever we
    /// held at once instead of after `actors.heartbeat_timeout_seconds` of silence. The heartbeat
    /// thread stops first: a heartbeat after the goodbye would make the learner think we re-joined.
    private func leave(subscriberDone: DispatchSemaphore) {
        inbox.stop()
        _ = subscriberDone.wait(timeout: .now() + 1)
        try? control.send(.control(Control(kind: .stop, reason: "actor \(actorID) leaving")), timeout: 1)
        Thread.sleep(forTimeInterval: 0.2)  // linger is 0: let the goodbye leave before the socket closes
    }

    private func join() {
        let join = ActorJoin(actorId: actorID, host: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                             blasThreads: 1, scorers: [rewardService == nil ? task.verifier.name : "reward_service"], haveVersion: UInt64(max(0, installedVersion)))
        try? control.send(.actorJoin(join), timeout: 1)
        try? control.send(.weightsRequest(WeightsRequest(actorId: actorID, haveVersion: UInt64(max(0, installedVersion)))), timeout: 1)
    }

    private func sendHeartbeat() {
        heartbeatSequence += 1
        let h = Heartbeat(senderId: actorID, role: .actor, sequence: heartbeatSequence, sentUnixMs: Int64(nowSeconds() * 1000),
                          policyVersion: UInt64(inbox.reportedVersion))
        _ = try? control.trySend(.heartbeat(h))
    }

    private func installPendingWeights() {
        guard let latest = inbox.take(), latest.version != installedVersion else { return }
        latest.values.withUnsafeBufferPointer { src in model.parameters.pointer.update(from: src.baseAddress!, count: src.count) }
        installedVersion = latest.version
        inbox.installedVersion = latest.version
    }

    /// Samples and pushes every prompt of a ticket. Weights older than the ticket's minimum version
    /// are first replaced (waiting for the broadcast or fetching), as the staleness budget requires.
    private func sample(_ ticket: RolloutTicket, shouldStop: () -> Bool) throws {
        let minVersion = Int(ticket.policyVersion)
        let giveUp = nowSeconds() + 2 * config.actors.heartbeatTimeoutSeconds
        var lastAsk = 0.0
        while installedVersion < minVersion {
            // Abandoning the ticket is safe: its lease expires and the learner re-issues it.
            if shouldStop() || nowSeconds() > giveUp { return }
            if nowSeconds() - lastAsk > 1 {
                lastAsk = nowSeconds()
                try? control.send(.weightsRequest(WeightsRequest(actorId: actorID, haveVersion: UInt64(max(0, installedVersion)))), timeout: 1)
            }
            if let m = control.receive(timeout: 0.05) {
                switch m.message {
                case .weightsHeader:
                    if let unpacked = try? WeightReceiver.unpack(m, layout: model.layout) {
                        _ = inbox.offer(version: unpacked.version, values: unpacked.values, authoritative: true)
                    }
                case .control(let c) where c.kind == .stop:
                    stopRequested = true
                    return
                default:
                    break
                }
            }
            installPendingWeights()
        }
        let version = installedVersion
        let g = Int(ticket.groupSize)
        let s = ticket.sampling
        let prompts = ticket.prompts.flatMap { p in Array(repeating: p.tokens.map { Int($0) }, count: g) }
        let start = Date()
        let completions = try model.generate(
            prompts: prompts, maxNewTokens: Int(s.maxNewTokens),
            sampling: SamplingParameters(temperature: s.temperature, topK: Int(s.topK), topP: s.topP, eosTokenId: task.tokenizer.eosId),
            seed: s.seed ^ ticket.ticketId &* 0x9E37_79B9_7F4A_7C15)
        let genSeconds = Date().timeIntervalSince(start) / Double(max(1, prompts.count))
        let groups = try score(ticket, completions: completions, policyVersion: version, generationSeconds: genSeconds)
        for group in groups {
            if simulatedDelaySeconds > 0 { Thread.sleep(forTimeInterval: simulatedDelaySeconds) }
            try trajectories.send(.trajectoryGroup(group), timeout: 30)
            groupsPushed += 1
        }
    }
}

extension ActorProcess {
    /// The scored groups of a ticket, one per prompt, in order: by the task's verifier in this
    /// process, or through the reward workers (a ticket's groups in parallel, one request each).
    /// A group the workers could not score after every attempt goes out without samples and with
    /// its reason (`unscored_reason`): the learner re-issues its prompt; it never becomes a zero reward.
    func score(_ ticket: RolloutTicket, completions: [Completion], policyVersion version: Int,
               generationSeconds: Double) throws -> [TrajectoryGroup] {
        let g = Int(ticket.groupSize)
        let sample = { (c: Completion, reward: RewardBreakdown, seconds: Double, rewardVersion: String) in
            TrajectorySample(
                completionTokens: c.tokens.map { UInt32($0) }, behaviourLogProbs: c.rawLogProbs,
                tokenVersions: Array(repeating: UInt64(version), count: c.tokens.count), reward: Double(reward.reward),
                rewardComponents: reward.components.map { TetherWire.RewardComponent(name: $0.name, value: Double($0.value)) },
                finishReason: c.finishReason == .eos ? .stop : .length,
                generationSeconds: generationSeconds, scoringSeconds: seconds, rewardVersion: rewardVersion)
        }
        let known = ticket.prompts.enumerated().compactMap { (pi, p) in PromptID(p.promptId).map { (pi, p, task.prompt(for: $0)) } }
        guard let rewardService else {
            return try known.map { (pi, p, prompt) in
                let samples = try completions[pi * g ..< (pi + 1) * g].map { c in
                    let scoreStart = Date()
                    let reward = try task.score(completionTokens: c.tokens, for: prompt)
                    return sample(c, reward, Date().timeIntervalSince(scoreStart), task.rewardVersion)
                }
                return TrajectoryGroup(ticketId: ticket.ticketId, actorId: actorID, promptId: p.promptId, promptTokens: p.tokens, samples: samples)
            }
        }
        let requests = try known.map { (pi, _, prompt) in
            try completions[pi * g ..< (pi + 1) * g].map { c in
                RewardServiceSample(prompt: prompt.prompt, completion: try PolicyEvaluator.text(of: c.tokens, tokenizer: task.tokenizer),
                                    answer: prompt.answer,
                                    metadata: ["task": prompt.task, "prompt_id": prompt.id, "finish_reason": c.finishReason == .eos ? "stop" : "length"])
            }
        }
        let scored = rewardService.score(requests)
        return zip(known, scored).map { (entry, result) in
            let (pi, p, _) = entry
            let retries = UInt32(clamping: result.failures.count)
            for f in result.failures { logger.warning("reward service, prompt \(p.promptId): \(f)") }
            switch result.result {
            case .success(let reply):
                let perSample = result.seconds / Double(max(1, g))
                let samples = zip(completions[pi * g ..< (pi + 1) * g], reply.rewards).map { sample($0, $1, perSample, reply.version) }
                return TrajectoryGroup(ticketId: ticket.ticketId, actorId: actorID, promptId: p.promptId, promptTokens: p.tokens,
                                       samples: samples, scoringRetries: retries)
            case .failure(let f):
                logger.error("reward service gave up on prompt \(p.promptId) after \(result.failures.count) attempts (\(f.reason)): the learner re-issues it")
                return TrajectoryGroup(ticketId: ticket.ticketId, actorId: actorID, promptId: p.promptId, promptTokens: p.tokens,
                                       samples: [], unscoredReason: f.reason, scoringRetries: retries)
            }
        }
    }
}
