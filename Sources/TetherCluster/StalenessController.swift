import Foundation

/// Admission control for asynchronous RL under a staleness limit η, as a pure state machine.
///
/// It follows AReaL (Fu et al. 2025, "AReaL: A Large-Scale Asynchronous Reinforcement Learning
/// System for Language Reasoning", §5.1): with learner version v (optimizer updates done) and B groups
/// per update, never have more live groups than can be consumed within η versions,
///
///     admitted + in flight ≤ (v + η + 1) · B,
///
/// and give each ticket the oldest version its actor may sample with. Groups fill the batch buffer in
/// arrival order, so the k-th admitted group (0-based) is trained at version ⌊k / B⌋, known exactly on
/// arrival; a group whose lag ⌊k/B⌋ − (oldest sample version) exceeds η is dropped and its prompt
/// re-queued (never trained silently). η = 0 is synchronous on-policy: every ticket asks for the very
/// version that will train it.
///
/// Deviation from AReaL's N_r (all trajectories ever generated): lost groups (stale, lease expired,
/// actor died) free their slot, otherwise each loss would shrink the budget for good and enough of
/// them would deadlock the run.
///
/// Fair share: one actor may hold at most ⌈W / n⌉ groups in flight, with W = (v + η + 1)·B − admitted
/// the room the budget leaves for groups in flight and n the live actors. An actor that takes
/// tickets and never returns them (a hoarder, or a stuck process) then blocks at most its share until
/// its leases expire, never the whole budget; one actor alone still gets all of it. A request over
/// the share waits like one over the budget, and does not hold up the queued requests behind it.
///
/// Membership is part of the same machine (`ClusterMembership`): an actor joins on first contact,
/// a join under a new pid is a restarted process whose tickets are re-queued, an actor silent for
/// longer than the heartbeat timeout is declared dead and loses its tickets, and no ticket is issued
/// before the start gate opens (the expected actors are live, or the startup grace ran out).
///
/// Exact mode (`StalenessMode.exact`, k = η): the same slots and budget, with two more rules that
/// make every lag exactly k. Tickets ask for the current version v and an arrival sampled by any
/// other version is lost as too stale (its prompt re-queued); and the batch of v is announced only
/// when the budget is full and nothing is in flight, i.e. when the (v + k + 1)·B − v·B = (k + 1)·B
/// groups buffered include all B sampled by v for the batch of v + k. So the version never moves
/// while a group is being sampled, and groups issued at v ≥ 1 fill slots trained at v + k. At the
/// start only version 0 exists: the first (k + 1)·B groups are all sampled by it and fill the batches
/// 0…k, whose lags are 0…k (likewise after `resumeAfterRestart`, from the restored version).
///
/// Like `SWIM.Instance` (apple/swift-cluster-membership) it owns no sockets and no clock: the learner
/// feeds events with the current time and performs the returned directives in order.
public struct StalenessController: Sendable {
    public private(set) var state: StalenessState

    public init(policy: StalenessPolicy) throws {
        try policy.validate()
        state = StalenessState(policy: policy)
    }

    /// Resumes exactly from a checkpointed `snapshot()`.
    public init(restoring snapshot: StalenessState) throws {
        try snapshot.policy.validate()
        guard snapshot.sampleLagHistogram.count >= snapshot.policy.maxStaleness + 1,
              snapshot.groupLagHistogram.count >= snapshot.policy.maxStaleness + 1 else {
            throw StalenessError.invalidPolicy("snapshot lag histograms are shorter than max_staleness \(snapshot.policy.maxStaleness) + 1")
        }
        state = snapshot
    }

    public func snapshot() -> StalenessState { state }

    public var policy: StalenessPolicy { state.policy }
    public var version: Int { state.version }

    /// ⌈W / n⌉: the most groups one actor may hold in flight now (see the type's doc comment).
    public var fairShare: Int {
        let room = max(0, state.capacity - state.admittedSlots)
        let actors = max(1, state.membership.count)
        return (room + actors - 1) / actors
    }

    /// Groups `actor` holds in flight (issued to it, not yet arrived or lost).
    public func groupsHeld(by actor: ActorID) -> Int {
        state.liveTickets.values.reduce(0) { $0 + ($1.ticket.actor == actor ? $1.pending.count : 0) }
    }

    public var statistics: StalenessStatistics {
        StalenessStatistics(
            version: state.version, cursor: state.cursor, issuedGroups: state.issuedGroups,
            reissuedGroups: state.reissuedGroups, trainedGroups: state.trainedGroups,
            bufferedGroups: state.buffer.count, inFlightGroups: state.inFlightGroups,
            pendingReissue: state.reissueQueue.count, lost: state.lost, rejected: state.rejected,
            sampleLagHistogram: state.sampleLagHistogram, groupLagHistogram: state.groupLagHistogram)
    }

    // MARK: Events

    public mutating func handle(_ event: StalenessEvent, now: Double) throws -> [StalenessDirective] {
        switch event {
        case let .actorJoined(actor, pid): return actorJoined(actor, pid: pid, now: now)
        case .actorHeard(let actor): return actorHeard(actor, now: now)
        case .actorLeft(let actor): return actorLeft(actor, now: now)
        case let .ticketRequested(actor, weightsVersion): return ticketRequested(by: actor, weightsVersion: weightsVersion, now: now)
        case .groupArrived(let arrival): return groupArrived(arrival, now: now)
        case .tick: return tick(now: now)
        case .batchTrained(let version): return try batchTrained(version: version, now: now)
        case .drain: return drain()
        }
    }

    /// An `ActorJoin` from process `pid`. The same name under a new pid is a restarted process:
    /// what the old one held is lost and re-queued, once.
    public mutating func actorJoined(_ actor: ActorID, pid: UInt32, now: Double) -> [StalenessDirective] {
        contact(actor, pid: pid, now: now)
    }

    /// Any other message from an actor: it is alive; one that is not live joins (join on contact).
    public mutating func actorHeard(_ actor: ActorID, now: Double) -> [StalenessDirective] {
        contact(actor, pid: nil, now: now)
    }

    /// The actor said goodbye: its undelivered prompts go back to the queue.
    public mutating func actorLeft(_ actor: ActorID, now: Double) -> [StalenessDirective] {
        guard state.membership.remove(actor) else { return [] }
        return [.memberLeft(actor)] + revoke(actor) + serveWaiters(now: now) + announceDrainedIfDone()
    }

    /// Time passed: expires due leases (in ticket order), declares actors silent for longer than
    /// the heartbeat timeout dead, and opens the start gate when its grace ran out.
    public mutating func tick(now: Double) -> [StalenessDirective] {
        if state.membership.startedAt == nil { state.membership.startedAt = now }
        var out: [StalenessDirective] = []
        for id in state.liveTickets.keys.sorted() where state.liveTickets[id]!.ticket.leaseDeadline <= now {
            out += loseTicket(id, reason: .leaseExpired)
        }
        for dead in state.membership.expire(now: now, timeout: state.policy.membership.heartbeatTimeoutSeconds) {
            out.append(.memberDead(dead.actor, silentSeconds: dead.silentSeconds))
            out += revoke(dead.actor)
        }
        out += openGateIfDue(now: now)
        out += serveWaiters(now: now)
        out += announceDrainedIfDone()
        return out
    }

    public mutating func ticketRequested(by actor: ActorID, weightsVersion: Int, now: Double) -> [StalenessDirective] {
        guard state.membership.contains(actor) else { return [.refuseTicket(actor: actor, reason: .unknownActor)] }
        guard !state.draining else { return [.refuseTicket(actor: actor, reason: .draining)] }
        state.membership.refresh(actor, now: now)
        state.budgetWaiters.removeAll { $0.actor == actor }
        guard state.membership.gateOpen else {
            state.budgetWaiters.append(.init(actor: actor, weightsVersion: weightsVersion))
            return [.waitForStartGate(actor: actor)]
        }
        if let directive = grant(to: actor, weightsVersion: weightsVersion, now: now) { return [directive] }
        state.budgetWaiters.append(.init(actor: actor, weightsVersion: weightsVersion))
        return [.waitForBudget(actor: actor)]
    }

    public mutating func groupArrived(_ arrival: GroupArrival, now: Double) -> [StalenessDirective] {
        state.membership.refresh(arrival.actor, now: now)
        if let reason = rejection(of: arrival) {
            state.rejected[reason, default: 0] += 1
            return [.dropGroup(arrival, reason: reason)]
        }
        // A live group: it leaves the in-flight set now, admitted or lost.
        var live = state.liveTickets[arrival.ticket]!
        live.pending.removeAll { $0 == arrival.promptID }
        state.liveTickets[arrival.ticket] = live.pending.isEmpty ? nil : live

        var out: [StalenessDirective] = []
        let trainVersion = state.admittedSlots / state.policy.groupsPerBatch
        if let lossReason = lossReason(of: arrival, trainVersion: trainVersion) {
            out.append(.dropGroup(arrival, reason: lossReason))
            out += lose([arrival.promptID], from: arrival.ticket, reason: lossReason)
        } else {
            let oldest = arrival.sampleVersions.min()!
            let group = AdmittedGroup(
                ticket: arrival.ticket, promptID: arrival.promptID, actor: arrival.actor,
                trainVersion: trainVersion, lag: trainVersion - oldest,
                sampleLags: arrival.sampleVersions.map { trainVersion - $0 })
            state.admittedSlots += 1
            state.buffer.append(group)
            state.groupLagHistogram[group.lag] += 1
            for lag in group.sampleLags { state.sampleLagHistogram[lag] += 1 }
            out.append(.admitGroup(group))
            out += announceBatchIfReady()
        }
        out += serveWaiters(now: now)
        out += announceDrainedIfDone()
        return out
    }

    /// The learner trained the announced batch of `version`; the version becomes `version + 1`.
    public mutating func batchTrained(version: Int, now: Double) throws -> [StalenessDirective] {
        guard state.batchAnnounced, version == state.version else {
            throw StalenessError.unexpectedBatchTrained(
                expectedVersion: state.version, got: version, batchAnnounced: state.batchAnnounced)
        }
        state.buffer.removeFirst(state.policy.groupsPerBatch)
        state.trainedGroups += state.policy.groupsPerBatch
        state.version += 1
        state.batchAnnounced = false
        var out = announceBatchIfReady()
        out += serveWaiters(now: now)
        out += announceDrainedIfDone()
        return out
    }

    /// Stops issuing tickets; groups in flight are still admitted; `.drained` once none is left.
    public mutating func drain() -> [StalenessDirective] {
        state.draining = true
        var out: [StalenessDirective] = state.budgetWaiters.map { .refuseTicket(actor: $0.actor, reason: .draining) }
        state.budgetWaiters.removeAll()
        out += announceDrainedIfDone()
        return out
    }

    /// After the learner restarts from a snapshot: the actors and what they held are gone (they join
    /// again on contact, behind a closed start gate), and so
    /// are the untrained buffered trajectories (they live in learner memory, not in the checkpoint).
    /// All of them are lost with reason `.learnerRestart` and their prompts re-queued.
    ///
    /// `policy` may change η, B, the ticket size or the lease here (a resumed run with a new config):
    /// with nothing live, slots restart at version·B and every bound is recomputed from the new values.
    public mutating func resumeAfterRestart(policy: StalenessPolicy? = nil) throws -> [StalenessDirective] {
        if let policy {
            try policy.validate()
            state.policy = policy
            let size = max(state.sampleLagHistogram.count, policy.maxStaleness + 1)
            state.sampleLagHistogram += Array(repeating: 0, count: size - state.sampleLagHistogram.count)
            state.groupLagHistogram += Array(repeating: 0, count: size - state.groupLagHistogram.count)
        }
        var out: [StalenessDirective] = []
        for id in state.liveTickets.keys.sorted() { out += loseTicket(id, reason: .learnerRestart) }
        for group in state.buffer { out += lose([group.promptID], from: group.ticket, reason: .learnerRestart) }
        state.buffer.removeAll()
        state.admittedSlots = state.version * state.policy.groupsPerBatch
        state.batchAnnounced = false
        state.membership = ClusterMembership()
        state.budgetWaiters.removeAll()
        state.draining = false
        state.drainedAnnounced = false
        return out
    }

    // MARK: Internals

    /// Issues a ticket if budget and the actor's fair share allow; `.waitForWeights` if the actor's
    /// weights are too old; nil when there is no budget or the actor holds its share.
    private mutating func grant(to actor: ActorID, weightsVersion: Int, now: Double) -> StalenessDirective? {
        let p = state.policy
        let available = min(state.capacity - state.liveGroups, fairShare - groupsHeld(by: actor))
        guard available > 0 else { return nil }
        let count = min(p.promptsPerTicket, available)
        // If everything live arrives first, this ticket's last group is trained at `predicted` ≤ v + η.
        let predicted = (state.liveGroups + count - 1) / p.groupsPerBatch
        let minVersion = p.mode == .exact ? state.version : max(0, predicted - p.maxStaleness)
        guard weightsVersion >= minVersion else { return .waitForWeights(actor: actor, minVersion: minVersion) }

        let prompts: [PromptID]
        let isReissue = !state.reissueQueue.isEmpty
        if isReissue {
            prompts = Array(state.reissueQueue.prefix(count))
            state.reissueQueue.removeFirst(prompts.count)
            for prompt in prompts { state.lostFrom[prompt] = nil }
            state.reissuedGroups += prompts.count
        } else {
            prompts = Array(state.cursor ..< state.cursor + count)
            state.cursor += count
        }
        let ticket = TicketGrant(
            id: state.nextTicketID, actor: actor, promptIDs: prompts, minVersion: minVersion,
            leaseDeadline: now + p.leaseSeconds, isReissue: isReissue)
        state.nextTicketID += 1
        state.issuedGroups += prompts.count
        state.liveTickets[ticket.id] = .init(ticket: ticket, pending: prompts)
        return .issueTicket(ticket)
    }

    /// Answers queued requests in FIFO order while budget lasts; a waiter at its fair share stays
    /// queued without blocking the ones behind it.
    private mutating func serveWaiters(now: Double) -> [StalenessDirective] {
        var out: [StalenessDirective] = []
        var index = 0
        while !state.draining, state.membership.gateOpen, index < state.budgetWaiters.count, state.capacity > state.liveGroups {
            let waiter = state.budgetWaiters[index]
            if let directive = grant(to: waiter.actor, weightsVersion: waiter.weightsVersion, now: now) {
                state.budgetWaiters.remove(at: index)
                out.append(directive)
            } else {
                index += 1
            }
        }
        return out
    }

    /// Why an arrival matches no live group, or nil when it does.
    private func rejection(of arrival: GroupArrival) -> DropReason? {
        guard state.membership.contains(arrival.actor) else { return .unknownActor }
        guard let live = state.liveTickets[arrival.ticket] else {
            guard arrival.ticket >= 0, arrival.ticket < state.nextTicketID else { return .unknownTicket }
            // Lost and not yet re-issued: "expired"; otherwise its prompt was delivered or re-issued.
            return state.lostFrom[arrival.promptID] == arrival.ticket ? .expiredTicket : .duplicate
        }
        guard live.ticket.actor == arrival.actor, live.ticket.promptIDs.contains(arrival.promptID) else {
            return .unknownTicket
        }
        return live.pending.contains(arrival.promptID) ? nil : .duplicate
    }

    /// Why a live group cannot be trained, or nil when it is admissible.
    private func lossReason(of arrival: GroupArrival, trainVersion: Int) -> DropReason? {
        guard let oldest = arrival.sampleVersions.min(), oldest >= 0 else { return .malformed }
        guard arrival.sampleVersions.max()! <= state.version else { return .futureVersion }
        // Exact mode: the version has not moved since the ticket was issued (see the type's doc).
        if state.policy.mode == .exact, oldest != state.version { return .tooStale }
        return trainVersion - oldest > state.policy.maxStaleness ? .tooStale : nil
    }

    /// A message from `actor`: joins it if it is not live, revokes what it held if its pid changed,
    /// and opens the start gate when this join completes the expected actors.
    private mutating func contact(_ actor: ActorID, pid: UInt32?, now: Double) -> [StalenessDirective] {
        var out: [StalenessDirective] = []
        switch state.membership.contact(actor, pid: pid, now: now) {
        case .joined:
            out.append(.memberJoined(actor))
            let opened = openGateIfDue(now: now)
            if !opened.isEmpty { out += opened + serveWaiters(now: now) }
        case .restarted(let previous):
            out.append(.memberRestarted(actor, previousPid: previous, pid: pid!))
            out += revoke(actor) + serveWaiters(now: now) + announceDrainedIfDone()
        case .alive:
            break
        }
        return out
    }

    /// Loses every ticket `actor` holds (left, dead or restarted) and drops its queued request; the
    /// caller serves the waiters once every departure of the event is booked.
    private mutating func revoke(_ actor: ActorID) -> [StalenessDirective] {
        state.budgetWaiters.removeAll { $0.actor == actor }
        var out: [StalenessDirective] = []
        for id in state.liveTickets.keys.sorted() where state.liveTickets[id]!.ticket.actor == actor {
            out += loseTicket(id, reason: .actorLeft)
        }
        return out
    }

    private mutating func openGateIfDue(now: Double) -> [StalenessDirective] {
        guard state.membership.openGateIfDue(now: now, policy: state.policy.membership) else { return [] }
        return [.startGateOpened(liveActors: state.membership.count)]
    }

    private mutating func loseTicket(_ id: TicketID, reason: DropReason) -> [StalenessDirective] {
        guard let live = state.liveTickets.removeValue(forKey: id) else { return [] }
        return lose(live.pending, from: id, reason: reason)
    }

    private mutating func lose(_ prompts: [PromptID], from ticket: TicketID, reason: DropReason) -> [StalenessDirective] {
        guard !prompts.isEmpty else { return [] }
        state.lost[reason, default: 0] += prompts.count
        state.reissueQueue += prompts
        // Only undelivered groups can still arrive late as "expired"; a delivered one is a duplicate.
        let undelivered = reason == .leaseExpired || reason == .actorLeft || reason == .learnerRestart
        for prompt in prompts { state.lostFrom[prompt] = undelivered ? ticket : nil }
        return [.reissuePrompts(lostTicket: ticket, promptIDs: prompts, reason: reason)]
    }

    private mutating func announceBatchIfReady() -> [StalenessDirective] {
        let b = state.policy.groupsPerBatch
        guard !state.batchAnnounced, state.buffer.count >= b else { return [] }
        // Exact mode: wait until the groups to be sampled by this version are all in.
        if state.policy.mode == .exact, state.admittedSlots < state.capacity || state.inFlightGroups > 0 { return [] }
        state.batchAnnounced = true
        return [.batchReady(version: state.version, groups: Array(state.buffer.prefix(b)))]
    }

    private mutating func announceDrainedIfDone() -> [StalenessDirective] {
        guard state.draining, !state.drainedAnnounced, state.liveTickets.isEmpty else { return [] }
        state.drainedAnnounced = true
        return [.drained]
    }
}
