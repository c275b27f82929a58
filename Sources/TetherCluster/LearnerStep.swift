import Foundation
import TetherModel
import TetherRL
import TetherWire

extension LearnerLoop {
    /// What the loop thread hands to the step thread, and gets back with the update's metrics.
    struct StepWork {
        var groups: [AdmittedGroup]
        var batch: RolloutBatch
        var batchLags: [Int]
        var version: Int
        var started: Date
        var stats = PolicyUpdateMetrics()
    }

    /// Converts the announced batch's payloads into the update's batch, once (loop thread).
    /// A batch admitted across a reward-version change trains only its newest version's groups
    /// (`RewardVersionGate.trainable`); the others are counted as `dropped/reward_version_mixed`.
    func prepareStep(_ announced: [AdmittedGroup]) throws -> StepWork {
        var parts: [RolloutBatch] = []
        var batchLags = [Int](repeating: 0, count: config.staleness.maxStaleness + 1)
        var payloadOf: [TrajectoryGroup] = []
        for admitted in announced {
            let key = GroupKey(ticket: admitted.ticket, prompt: admitted.promptID)
            guard let g = payloads.removeValue(forKey: key) else {
                throw ClusterError.processFailed("internal: admitted group \(key) has no payload")
            }
            payloadOf.append(g)
        }
        let kept = rewardVersions.trainable(payloadOf.map { $0.samples.first?.rewardVersion ?? "" })
        if kept.count < announced.count {
            shellDrops["reward_version_mixed", default: 0] += announced.count - kept.count
            logger.warning("batch of version \(controller.version) spans a reward-version change: training its \(kept.count) groups of the newest version, leaving out \(announced.count - kept.count)")
        }
        let groups = kept.map { announced[$0] }
        for i in announced.indices where !kept.contains(i) {
            _ = referenceScorer?.take(GroupKey(ticket: announced[i].ticket, prompt: announced[i].promptID))
        }
        for (gi, i) in kept.enumerated() {
            let admitted = announced[i], g = payloadOf[i]
            let key = GroupKey(ticket: admitted.ticket, prompt: admitted.promptID)
            var part = try RolloutBatch(trajectories: g, group: gi, verifierRewards: config.task.reward == .verifier)
            if let reference = referenceScorer?.take(key) { part.referenceLogProbs = reference }
            for lag in admitted.sampleLags { batchLags[min(max(lag, 0), batchLags.count - 1)] += 1 }
            parts.append(part)
        }
        return StepWork(groups: groups, batch: try RolloutBatch(concatenating: parts), batchLags: batchLags,
                        version: controller.version, started: Date())
    }

    /// Starts the optimizer step of `groups` on the step thread; the loop keeps serving meanwhile.
    func startStep(_ groups: [AdmittedGroup]) throws {
        var work = try prepareStep(groups)
        let update = self.update
        step.start(name: "tether.learner.step") {
            do { work.stats = try update.step(work.batch, learnerVersion: work.version) } catch var e as NonFiniteUpdate {
                e.version = work.version + 1
                throw e
            }
            return work
        }
    }

    /// After the step thread finished: advances the version, broadcasts it, and records the step.
    func finishStep(_ work: StepWork) throws {
        let (groups, batchLags, version, stats) = (work.groups, work.batchLags, work.version, work.stats)
        try perform(controller.batchTrained(version: version, now: nowSeconds()), now: nowSeconds())
        let v = controller.version
        let broadcast = v % max(1, config.learner.broadcastEverySteps) == 0 || v >= config.run.steps
        let publishSeconds = try broadcaster.publish(version: v, parameters: model.parameters, now: nowSeconds(), broadcast: broadcast)
        stepWindow.busySeconds += Date().timeIntervalSince(work.started)

        let elapsed = max(1e-9, Date().timeIntervalSince(stepWindow.start))
        var record = MetricsRecord(step: controller.version)
        record.addStaleness(controller.statistics)
        typealias K = MetricsRecord.Key
        record.addUpdate(stats)
        record.addRewardComponents(task.rewardTally(zip(work.batch.groupIDs, work.batch.completionTokens).map { (groups[$0].promptID, $1) }))
        record.scalars[K.actorTokensPerSecond] = Double(stepWindow.receivedCompletionTokens) / elapsed
        record.scalars[K.learnerIdleFraction] = max(0, 1 - stepWindow.busySeconds / elapsed)
        record.scalars["samples_per_s"] = Double(stats.sequences) / elapsed
        record.scalars[MetricsRecord.Key.stepSeconds] = elapsed
        record.scalars["weights/publish_seconds"] = publishSeconds
        if let l = broadcaster.latestLatency {
            record.scalars[K.weightBroadcastLatency] = l.seconds
            record.scalars["weights/latency_version"] = Double(l.version)
        }
        record.scalars["batch/lag_max"] = Double(batchLags.lastIndex(where: { $0 > 0 }) ?? 0)
        let wire = control.counters.snapshot().merging(trajectories.counters.snapshot(), uniquingKeysWith: +)
        for (reason, n) in wire { record.scalars["wire/errors/\(reason)"] = Double(n) }
        record.scalars["wire/errors_total"] = Double(wireErrorTotal)
        record.scalars["wire/denied_connections"] = Double(context.deniedConnections)
        record.scalars["wire/handshake_failures"] = Double(control.handshakeFailures + trajectories.handshakeFailures + weights.handshakeFailures)
        record.scalars["weights/live_snapshots"] = Double(WeightSnapshot.live)
        record.scalars["weights/direct_replies_skipped"] = Double(broadcaster.skippedDirectReplies)
        for (reason, n) in shellDrops { record.scalars["dropped/\(reason)"] = Double(n) }
        let s = controller.statistics
        record.scalars["groups/issued"] = Double(s.issuedGroups)
        record.scalars["groups/reissued"] = Double(s.reissuedGroups)
        record.scalars["groups/trained"] = Double(s.trainedGroups)
        record.scalars["groups/buffered"] = Double(s.bufferedGroups)
        record.scalars["groups/in_flight"] = Double(s.inFlightGroups)
        record.scalars["groups/pending_reissue"] = Double(s.pendingReissue)
        record.scalars["groups/cursor"] = Double(s.cursor)
        for (reason, n) in s.lost { record.scalars["groups/lost/\(reason.rawValue)"] = Double(n) }
        record.scalars["reward/retries"] = Double(rewardRetries)
        record.scalars["reward/version_changes"] = Double(rewardVersions.changes)
        if let v = rewardVersions.current { record.extras["reward_version"] = .string(v) }
        record.scalars["checkpoint/failures"] = Double(checkpointFailures)
        record.scalars["metrics/write_failures"] = Double(metrics.failedAppends)
        record.scalars["metrics/backlog"] = Double(metrics.backlog)
        record.scalars["actors"] = Double(routes.count)
        record.extras["batch_lag_histogram"] = .array(batchLags.map { .int($0) })
        record.extras["trained_prompts"] = .array(groups.map { .int($0.promptID) })
        record.extras["sample_lags"] = .array(groups.flatMap { $0.sampleLags.map { .int($0) } })
        record.extras["incarnation"] = .int(Int(incarnation))
        if let error = try metrics.write(record) {
            logger.error("metrics line of step \(record.step) kept in memory (\(metrics.backlog) waiting), retried at the next step: \(error)")
        }
        progress.report(record: record, totalSteps: config.run.steps, every: config.run.progressEverySteps)
        if let e = evaluation, e.isDue(version: controller.version, totalSteps: config.run.steps) {
            startEvaluation(version: controller.version)
        }

        if controller.version % max(1, config.checkpoint.everySteps) == 0 && controller.version < config.run.steps {
            // A failed checkpoint (full disk) costs only resumability: training goes on in memory,
            // the previous checkpoint stays intact, and the next checkpoint step tries again.
            do {
                try RunCheckpoint.write(run: run, version: controller.version, model: model, optimizer: update.optimizer,
                                        controller: controller, config: config, tokenizer: task.tokenizer)
            } catch {
                checkpointFailures += 1
                logger.error("checkpoint step-\(controller.version) failed, training continues and retries at step \(controller.version + max(1, config.checkpoint.everySteps)): \(error)")
            }
            do { try metrics.sync() } catch { logger.error("\(error)") }
        }
        stepWindow = StepWindow()
    }
}

extension RolloutBatch {
    /// A trajectory group as the update takes it (`group` indexes the group within its batch): the
    /// learner's one conversion from the wire. A sample's version is the oldest that sampled any of
    /// its tokens. With a verifier's reward a sample counts as correct when its reward is 1 (what a
    /// verifier gives a right answer); a reward model's samples have no notion of correct.
    public init(trajectories g: TrajectoryGroup, group: Int, verifierRewards: Bool) throws {
        let prompt = g.promptTokens.map { Int($0) }
        try self.init(
            promptTokens: g.samples.map { _ in prompt }, completionTokens: g.samples.map { $0.completionTokens.map { Int($0) } },
            behaviourLogProbs: g.samples.flatMap(\.behaviourLogProbs), rewards: g.samples.map { Float($0.reward) },
            groupIDs: g.samples.map { _ in group }, policyVersions: g.samples.map { Int(clamping: $0.tokenVersions.min() ?? 0) },
            correct: g.samples.map { verifierRewards ? $0.reward >= 1 - 1e-6 : nil })
    }
}

extension LearnerLoop {
    /// Starts a held-out evaluation of the current weights on the evaluator thread; the loop keeps
    /// serving, and starts no update until it is done (`PeriodicEvaluation`).
    func startEvaluation(version: Int) {
        guard let evaluation else { return }
        lastEvaluatedVersion = version
        let (model, task) = (self.model, self.task)
        evaluator.start(name: "tether.learner.eval") { try evaluation.run(version: version, model: model, task: task) }
    }

    /// Writes an evaluation as its own metrics line (step = the version evaluated) and keeps it for
    /// the progress line.
    func recordEvaluation(_ result: PeriodicEvaluation.Result) throws {
        logger.info("\(result.summary)")
        progress.lastEvaluation = result
        if let error = try metrics.write(MetricsRecord(step: result.version, scalars: result.scalars)) {
            logger.error("metrics line of the evaluation at version \(result.version) kept in memory, retried later: \(error)")
        }
    }
}

/// The one-line live summary (`progress: step 12/200 v12 reward … `) the learner prints to stderr;
/// `tether launch` redraws it in place.
struct ProgressReporter {
    static let prefix = "progress: "
    /// The latest held-out evaluation, appended to every line after it.
    var lastEvaluation: PeriodicEvaluation.Result?

    func report(record: MetricsRecord, totalSteps: Int, every: Int) {
        guard record.step % max(1, every) == 0 || record.step == totalSteps else { return }
        var line = ProgressLine.format(record, totalSteps: totalSteps)
        if let e = lastEvaluation { line += "  " + ProgressLine.heldOut(e.scalars) }
        FileHandle.standardError.write(Data((ProgressReporter.prefix + line + "\n").utf8))
    }

    func finish() {}
}
