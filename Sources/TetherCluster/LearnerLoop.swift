import Foundation
import Logging
import TetherKernels
import TetherModel
import TetherRL
import TetherRewards
import TetherWire

/// The learner process (`tether learner`): the I/O shell around the pure `StalenessController`.
///
/// One thread runs this loop; each of the three sockets has its own owner thread (`WireSocket`), so
/// ZeroMQ never blocks here. Every iteration it drains the control and trajectory inboxes, feeds
/// the controller events (joins, heartbeats, ticket requests, arrivals, ticks) and performs the
/// directives it returns, in order: tickets go to actors, admitted groups are buffered, a ready
/// batch is trained (`PolicyUpdate`) on the step thread (`BackgroundStep`) while this loop
/// keeps serving, then the new version is broadcast (`WeightBroadcaster`), a metrics line is
/// written and, every `checkpoint.every_steps`, a checkpoint. Liveness, the start gate and restart
/// detection are the controller's too: this shell keeps only routes and the weights versions the
/// actors report.
public final class LearnerLoop {
    public struct Options: Sendable {
        public var runDirectory: URL
        public var resume: Bool
        /// Seconds to wait for in-flight groups when draining (Ctrl-C) before giving up on them.
        public var drainTimeout: Double = 30
        public init(runDirectory: URL, resume: Bool) { self.runDirectory = runDirectory; self.resume = resume }
    }

    let config: RunConfig
    let options: Options
    let logger: Logger
    let run: RunDirectory
    let task: RunTask
    let model: LlamaModel
    let update: PolicyUpdate
    var controller: StalenessController
    let incarnation: UInt32
    let context: WireContext
    let control: WireSocket
    let trajectories: WireSocket
    let weights: WireSocket
    let broadcaster: WeightBroadcaster
    let metrics: MetricsWriter

    // Actors: routing ids and the weights version each reported holding.
    var routes: [ActorID: [UInt8]] = [:]
    var actorVersion: [ActorID: Int] = [:]
    /// Payloads of admitted, untrained groups, by (ticket, prompt).
    var payloads: [GroupKey: TrajectoryGroup] = [:]
    var pendingBatch: [AdmittedGroup]?
    /// The optimizer step in progress, off the loop thread (`BackgroundStep`).
    let step = BackgroundStep<StepWork>()
    /// Held-out evaluation every `run.eval_every_steps` (nil: off). It runs on its own
    /// `BackgroundStep`, never while an update runs: both use the policy's weights.
    let evaluation: PeriodicEvaluation?
    let evaluator = BackgroundStep<PeriodicEvaluation.Result>()
    var lastEvaluatedVersion: Int?
    /// Reference log-probs of admitted groups, computed while they wait (nil without a KL term).
    let referenceScorer: ReferenceScorer<GroupKey>?
    var drained = false
    var draining = false
    /// Learner-side drops outside the controller (groups of an earlier learner incarnation, bad ids).
    var shellDrops: [String: Int] = [:]
    /// Reward versions seen and the no-mixing rule (`RewardVersionGate`).
    var rewardVersions: RewardVersionGate
    /// Failed reward-service attempts the actors reported (each retried on a restarted worker).
    var rewardRetries = 0
    /// Checkpoint writes that failed (full disk): the run went on and retried at the next one.
    var checkpointFailures = 0
    var stepWindow = StepWindow()
    var progress = ProgressReporter()

    struct GroupKey: Hashable, Sendable { var ticket: TicketID; var prompt: PromptID }

    /// Per-step accumulators, reset after each metrics line.
    struct StepWindow {
        var start = Date()
        var busySeconds = 0.0
        var receivedCompletionTokens = 0
        var receivedGroups = 0
        var survivorship = SurvivorshipTally()
    }

    public init(config given: RunConfig, options: Options, logger: Logger) throws {
        try given.validateForCluster()
        let config = try given.resolvingModel()
        self.config = config
        self.options = options
        self.logger = logger
        let runDir = try RunDirectory(root: options.runDirectory)
        run = runDir
        let runTask = try RunTask(config: config)
        try runTask.checkPromptLengths(runTask.trainPrompts, what: "training")
        task = runTask
        incarnation = UInt32.random(in: 1 ... UInt32.max)

        var restored: (checkpoint: LlamaCheckpoint, staleness: StalenessState, step: Int)?
        if options.resume {
            let r = try RunCheckpoint.readLatest(run: runDir)
            guard let staleness = r.staleness else {
                throw ClusterError.noCheckpoint("\(r.directory.path) was written by `tether train` (no \(RunCheckpoint.clusterStateFile)): continue it with `tether train --resume`")
            }
            restored = (r.checkpoint, staleness, r.step)
        }
        let policy: LlamaModel
        if let r = restored {
            policy = try LlamaModel(checkpoint: r.checkpoint)
        } else if !config.model.checkpoint.isEmpty {
            policy = try LlamaModel.load(from: config.model.checkpoint).model
        } else {
            policy = try LlamaModel(config: try config.policyArchitecture(), seed: UInt64(truncatingIfNeeded: config.run.seed), std: config.model.initStd)
        }
        model = policy
        try config.checkWeightsFitMessageLimit(policy.config)
        let heldOut = try runTask.heldOutPrompts(count: config.run.evalPrompts)
        let periodic = PeriodicEvaluation(config: config, heldOut: heldOut,
                                          scorer: config.run.evalEverySteps > 0 ? try RunTask.evaluationScorer(config: config) : nil)
        if periodic != nil { try runTask.checkPromptLengths(heldOut, what: "held-out") }
        evaluation = periodic
        if !options.resume { try runDir.writeResolvedConfig(config) }
        let reference = config.algorithm.klBeta > 0
            ? try runDir.referenceModel(config: config, policy: policy, tokenizer: runTask.tokenizer, resume: options.resume) : nil
        let policyUpdate = try PolicyUpdate(policy: policy, reference: reference, options: config.rlOptions(eosTokenId: nil, synchronous: false))
        policyUpdate.reserveWorkspaces(prompts: config.rollout.promptsPerBatch, promptTokens: config.task.maxPromptTokens)
        update = policyUpdate
        referenceScorer = try reference.flatMap {
            policyUpdate.needsReference ? try ReferenceScorer(reference: $0, microBatchTokens: config.learner.microBatchTokens) : nil
        }
        var staleness: StalenessController
        if let r = restored {
            if let o = r.checkpoint.optimizerState {
                try policyUpdate.optimizer.restore(step: o.step, firstMoment: o.firstMoment, secondMoment: o.secondMoment)
            }
            staleness = try StalenessController(restoring: r.staleness)
            let lost = try staleness.resumeAfterRestart(policy: config.stalenessPolicy)
            logger.info("resumed from checkpoint step-\(r.step): version \(staleness.version), optimizer step \(policyUpdate.optimizer.step), \(lost.count) tickets/groups re-queued")
        } else {
            staleness = try StalenessController(policy: config.stalenessPolicy)
        }
        controller = staleness

        let ctx = try ClusterSecurity.learnerContext(config: config)
        context = ctx
        let security = try ClusterSecurity.learnerSecurity(config: config)
        let validation = WireValidation(vocabularySize: policy.config.vocabSize, identityBinding: ClusterSecurity.identityBinding(config: config))
        var controlOptions = config.socketOptions(.control, learnerSide: true, security: security)
        controlOptions.validation = validation
        var trajectoryOptions = config.socketOptions(.trajectories, learnerSide: true, security: security)
        trajectoryOptions.validation = validation
        let controlSocket = try WireSocket(context: ctx, options: controlOptions)
        control = controlSocket
        trajectories = try WireSocket(context: ctx, options: trajectoryOptions)
        var weightsOptions = config.socketOptions(.weights, learnerSide: true, security: security)
        weightsOptions.sendHighWaterMark = WeightBroadcaster.publisherHighWaterMark
        let weightsSocket = try WireSocket(context: ctx, options: weightsOptions)
        weights = weightsSocket
        broadcaster = WeightBroadcaster(publisher: weightsSocket, control: controlSocket, layout: policy.layout,
                                        initial: WeightSnapshot(version: staleness.version, parameters: policy.parameters))
        metrics = try MetricsWriter(runDirectory: runDir)
        rewardVersions = RewardVersionGate(allowMixed: config.task.rewardService.allowMixedVersions)
    }

    /// Runs until `run.steps` versions are trained or a stop signal drains the run.
    public func run(shouldStop: () -> Bool = { StopSignal.requested }) throws {
        defer { context.close(); referenceScorer?.stop() }
        try broadcaster.publish(version: controller.version, parameters: model.parameters, now: nowSeconds())
        logger.info("learner \(LearnerIdentity.senderID(incarnation: incarnation)) serving \(config.learner.controlEndpoint) at version \(controller.version); η = \(config.staleness.maxStaleness), B = \(config.rollout.promptsPerBatch) groups of \(config.rollout.groupSize)")
        var lastTick = 0.0, lastHeartbeat = 0.0, drainStarted = 0.0
        var heartbeatSequence: UInt64 = 0
        // The starting point of the learning curve, measured while the actors sample the first batches.
        if controller.version == 0 { startEvaluation(version: 0) }
        while true {
            let now = nowSeconds()
            if !draining && (shouldStop() || controller.version >= config.run.steps) {
                draining = true
                drainStarted = now
                if controller.version < config.run.steps { logger.info("stop requested: draining in-flight tickets") }
                try perform(controller.drain(), now: now)
            }
            // A run stopped early (Ctrl-C, a time limit) still ends with an evaluation of its last version
            // (a batch still pending when the drain completes stays untrained, as without evaluation).
            if draining, evaluation != nil, !step.isBusy, !evaluator.isBusy, lastEvaluatedVersion != controller.version {
                startEvaluation(version: controller.version)
            }
            if draining && !step.isBusy && !evaluator.isBusy && (drained || controller.version >= config.run.steps || now - drainStarted > options.drainTimeout) { break }

            var handled = 0
            while handled < 256, let m = control.receive(timeout: 0) { handled += 1; try handleControl(m, now: nowSeconds()) }
            while handled < 512, let m = trajectories.receive(timeout: 0) { handled += 1; try handleTrajectory(m, now: nowSeconds()) }

            if now - lastTick > 0.25 {
                lastTick = now
                try perform(controller.tick(now: now), now: now)
            }
            if now - lastHeartbeat > config.actors.heartbeatSeconds {
                lastHeartbeat = now
                heartbeatSequence += 1
                sendHeartbeats(sequence: heartbeatSequence)
            }
            let finished: StepWork?
            do { finished = try step.finished() } catch {
                stopActors(reason: "learner stopping: \(error)")
                throw error
            }
            if let work = finished {
                try finishStep(work)
                continue
            }
            let evaluated: PeriodicEvaluation.Result?
            do { evaluated = try evaluator.finished() } catch let f as RewardServiceFailure {
                // The reward workers failed every attempt on a held-out sample: no figure rather
                // than one that counts a broken worker as a wrong answer; training goes on.
                logger.error("held-out evaluation at version \(lastEvaluatedVersion ?? 0) skipped: \(f) (\(f.reason))")
                continue
            }
            if let result = evaluated {
                try recordEvaluation(result)
                continue
            }
            if !step.isBusy, !evaluator.isBusy, let batch = pendingBatch, !draining || controller.version < config.run.steps {
                pendingBatch = nil
                try startStep(batch)
                continue
            }
            if handled == 0 { _ = waitForTraffic() }
        }
        stopActors(reason: controller.version >= config.run.steps ? "run finished" : "learner stopping")
        try RunCheckpoint.write(run: run, version: controller.version, model: model, optimizer: update.optimizer,
                                controller: controller, config: config, tokenizer: task.tokenizer)
        try metrics.sync()
        progress.finish()
        let s = controller.statistics
        logger.info("learner done: version \(s.version), trained \(s.trainedGroups) groups, issued \(s.issuedGroups), re-issued \(s.reissuedGroups), dropped \(s.droppedByReason.values.reduce(0, +)), wire errors \(wireErrorTotal)")
        Thread.sleep(forTimeInterval: 0.2)  // let the stop messages leave before the sockets close
    }

    /// Blocks briefly on the trajectory inbox (the busiest) so an idle learner does not spin.
    private func waitForTraffic() -> Bool {
        if let m = trajectories.receive(timeout: 0.003) {
            try? handleTrajectory(m, now: nowSeconds())
            return true
        }
        return false
    }

    var wireErrorTotal: Int { control.counters.total + trajectories.counters.total }

    /// The weights version an actor reports, checked against what this learner has published: a
    /// version it never published (a lie, or weights of a learner incarnation that has since
    /// restarted from an older checkpoint) counts as holding nothing, so the actor must fetch the
    /// current weights before it gets a ticket. Counted as `dropped/version_from_future`.
    func checkedReportedVersion(_ reported: UInt64) -> Int {
        guard let v = Int(exactly: reported), v <= broadcaster.current.version else {
            shellDrops["version_from_future", default: 0] += 1
            return -1
        }
        return v
    }

    /// Why a trajectory group cannot be trained, as a counter name, or nil when it can. Values are
    /// checked in the types the update uses: a reward as `Float` (a Double of 1e39 is inf there),
    /// log-probs against `learner.min_logprob`, token ids against the vocabulary.
    func untrainableReason(_ g: TrajectoryGroup) -> String? {
        let maxAbsReward = Float(config.learner.maxAbsReward), minLogprob = Float(config.learner.minLogprob)
        guard g.samples.count == config.rollout.groupSize else { return "wrong_group_size" }
        guard !g.promptTokens.isEmpty, g.promptTokens.count + config.rollout.maxNewTokens <= model.config.maxPositionEmbeddings else {
            return "bad_prompt_length"
        }
        for s in g.samples {
            guard !s.completionTokens.isEmpty, s.completionTokens.count <= config.rollout.maxNewTokens else { return "bad_completion_length" }
            guard s.behaviourLogProbs.count == s.completionTokens.count, s.tokenVersions.count == s.completionTokens.count else {
                return "length_mismatch"
            }
            let reward = Float(s.reward)
            guard reward.isFinite, abs(reward) <= maxAbsReward else { return "reward_out_of_range" }
            guard s.behaviourLogProbs.allSatisfy({ $0.isFinite && $0 <= 0 && $0 >= minLogprob }) else { return "logprob_out_of_range" }
            guard s.completionTokens.allSatisfy({ Int($0) < model.config.vocabSize }) else { return "token_out_of_vocabulary" }
            guard s.tokenVersions.allSatisfy({ Int(exactly: $0) != nil }) else { return "version_out_of_range" }
        }
        return nil
    }

    /// Passes the group's reward versions through the gate; the counter name when it is refused.
    func checkRewardVersion(_ g: TrajectoryGroup) -> String? {
        switch rewardVersions.arrival(versions: g.samples.map(\.rewardVersion)) {
        case .accept: return nil
        case .changed(let from, let to):
            if let from {
                let rule = config.task.rewardService.allowMixedVersions ? "batches may mix them (allow_mixed_versions)"
                    : "groups scored by the old one are no longer trained; their prompts are re-issued"
                logger.warning("reward version changed at version \(controller.version): \(PeerText.loggable(from)) → \(PeerText.loggable(to)) (first from actor \(PeerText.loggable(g.actorId))); \(rule)")
            } else {
                logger.info("reward version \(PeerText.loggable(to))")
            }
            return nil
        case .refuse(let reason): return reason
        }
    }

    // MARK: Messages

    /// A control message from actor `id`: remembers its route and tells the controller it is alive
    /// (`pid` when the message is its `ActorJoin`).
    private func heard(_ id: String, pid: UInt32? = nil, routingId: [UInt8]?, now: Double) throws -> ActorID {
        let actor = ActorID(id)
        if let r = routingId { routes[actor] = r }
        if let pid {
            try perform(controller.actorJoined(actor, pid: pid, now: now), now: now)
        } else {
            try perform(controller.actorHeard(actor, now: now), now: now)
        }
        return actor
    }

    func handleControl(_ m: WireReceived, now: Double) throws {
        switch m.message {
        case .actorJoin(let j):
            let actor = try heard(j.actorId, pid: j.pid, routingId: m.routingId, now: now)
            actorVersion[actor] = checkedReportedVersion(j.haveVersion)
        case .heartbeat(let h):
            guard h.role == .actor else { shellDrops["unexpected_message", default: 0] += 1; return }
            let actor = try heard(h.senderId, routingId: m.routingId, now: now)
            let version = checkedReportedVersion(h.policyVersion)
            actorVersion[actor] = version
            if version >= 0 { broadcaster.acknowledge(actor: h.senderId, version: version, now: now) }
        case .ticketRequest(let r):
            let actor = try heard(r.actorId, routingId: m.routingId, now: now)
            try perform(controller.ticketRequested(by: actor, weightsVersion: actorVersion[actor] ?? -1, now: now), now: now)
        case .control(let c) where c.kind == .stop:
            // An actor leaving cleanly (SIGTERM/SIGINT): forget it and re-issue its tickets now,
            // not after the heartbeat timeout.
            guard let r = m.routingId, let actor = routes.first(where: { $0.value == r })?.key else { return }
            logger.info("actor \(actor) left (\(PeerText.loggable(c.reason)))")
            try perform(controller.actorLeft(actor, now: now), now: now)
        case .weightsRequest(let w):
            _ = try heard(w.actorId, routingId: m.routingId, now: now)
            if let r = m.routingId { try broadcaster.send(to: r) }
        default:
            shellDrops["unexpected_message", default: 0] += 1
        }
    }

    func handleTrajectory(_ m: WireReceived, now: Double) throws {
        guard case .trajectoryGroup(let g) = m.message else { shellDrops["unexpected_message", default: 0] += 1; return }
        let id = WireTicketID(raw: g.ticketId)
        guard id.incarnation == incarnation else { shellDrops["earlier_learner", default: 0] += 1; return }
        guard let prompt = PromptID(g.promptId) else { shellDrops["bad_prompt_id", default: 0] += 1; return }
        let actor = ActorID(g.actorId)
        stepWindow.receivedGroups += 1
        stepWindow.receivedCompletionTokens += g.completionTokenCount
        // A group the learner cannot train (wrong size, inconsistent per-token arrays, values out of
        // range) reaches the controller with no versions: it is lost as `malformed` and re-issued
        // at once; the specific reason is counted as `dropped/<reason>`.
        // A group the actor could not score (its reward workers failed every attempt) carries no
        // samples: lost the same way, counted as `dropped/reward_<reason>`.
        rewardRetries += Int(g.scoringRetries)
        var versions: [Int] = []
        if !g.unscoredReason.isEmpty {
            let reason = RewardServiceFailure.allReasons.contains(g.unscoredReason) ? g.unscoredReason : "other"
            shellDrops["reward_\(reason)", default: 0] += 1
        } else if let reason = untrainableReason(g) {
            shellDrops[reason, default: 0] += 1
        } else if let refusal = checkRewardVersion(g) {
            shellDrops[refusal, default: 0] += 1
        } else {
            versions = g.samples.map { s in s.tokenVersions.lazy.compactMap { Int(exactly: $0) }.min() ?? -1 }
        }
        let arrival = GroupArrival(actor: actor, ticket: id.ticket, promptID: prompt, sampleVersions: versions)
        let directives = controller.groupArrived(arrival, now: now)
        if !versions.isEmpty { stepWindow.survivorship.generated.add(g) }
        for d in directives {
            if case .dropGroup(_, .tooStale) = d { stepWindow.survivorship.stale.add(g) }
            guard case .admitGroup(let a) = d else { continue }
            let key = GroupKey(ticket: a.ticket, prompt: a.promptID)
            payloads[key] = g
            if let group = try? RolloutBatch(trajectories: g, group: 0) { referenceScorer?.submit(key, group: group) }
        }
        try perform(directives, now: now)
    }

    // MARK: Directives

    func perform(_ directives: [StalenessDirective], now: Double) throws {
        for d in directives {
            switch d {
            case .issueTicket(let t):
                guard let route = routes[t.actor] else { continue }
                try control.send(.rolloutTicket(try wireTicket(t)), to: route, timeout: 5)
            case .waitForWeights(let actor, _):
                if let route = routes[actor] { try broadcaster.send(to: route) }
            case .waitForBudget, .waitForStartGate:
                break
            case .refuseTicket(let actor, let reason):
                if let route = routes[actor] {
                    try control.send(.control(Control(kind: .drain, reason: reason.rawValue)), to: route, timeout: 5)
                }
            case .admitGroup:
                break
            case .dropGroup(let arrival, let reason):
                logger.debug("dropped group ticket \(arrival.ticket) prompt \(arrival.promptID) from \(arrival.actor): \(reason.rawValue)")
            case .reissuePrompts(let ticket, let prompts, let reason):
                logger.info("ticket \(ticket) lost (\(reason.rawValue)): prompts \(prompts) go back to the queue")
            case .batchReady(_, let groups):
                pendingBatch = groups
            case .drained:
                drained = true
            case .memberJoined(let actor):
                logger.info("actor \(actor) joined")
            case let .memberRestarted(actor, previous, pid):
                logger.info("actor \(actor) restarted (pid \(previous) → \(pid)): re-issuing what the old process held")
            case .memberLeft(let actor):
                routes[actor] = nil
            case let .memberDead(actor, silent):
                logger.warning("actor \(actor) silent for \(String(format: "%.1f", silent)) s: presumed dead, re-issuing its tickets")
                routes[actor] = nil
            case .startGateOpened(let live):
                logger.info("\(live) actor(s) joined: handing out tickets")
            }
        }
    }

    func wireTicket(_ t: TicketGrant) throws -> RolloutTicket {
        let r = config.rollout
        let prompts = try t.promptIDs.map { id in
            TicketPrompt(promptId: String(id), tokens: try task.promptTokens(task.prompt(for: id)).map { UInt32($0) })
        }
        return RolloutTicket(
            ticketId: WireTicketID(incarnation: incarnation, ticket: t.id).raw, prompts: prompts, groupSize: UInt32(r.groupSize),
            sampling: SamplingSettings(temperature: Float(r.temperature), topP: Float(r.topP), topK: UInt32(r.topK),
                                       maxNewTokens: UInt32(r.maxNewTokens), seed: UInt64(truncatingIfNeeded: config.run.seed)),
            policyVersion: UInt64(t.minVersion), leaseDeadlineUnixMs: Int64(t.leaseDeadline * 1000), task: task.name)
    }

    func sendHeartbeats(sequence: UInt64) {
        let h = Heartbeat(senderId: LearnerIdentity.senderID(incarnation: incarnation), role: .learner, sequence: sequence,
                          sentUnixMs: Int64(nowSeconds() * 1000), policyVersion: UInt64(controller.version))
        for route in routes.values { _ = try? control.trySend(.heartbeat(h), to: route) }
    }

    func stopActors(reason: String) {
        for route in routes.values { _ = try? control.send(.control(Control(kind: .stop, reason: reason)), to: route, timeout: 1) }
    }
}
