import Foundation
import TetherCluster

/// An independent book of every prompt's fate, kept from the directives a `StalenessController`
/// returns, and the invariants that must hold between the book and the controller after every
/// event. Shared by the random property test (`StalenessSimulation`) and the exhaustive search
/// (`StalenessExploration`), so both check the same laws:
///
/// - a fresh prompt continues the data cursor and is never drawn twice; a re-issued one was lost;
/// - a group is admitted only from flight, trained only from the buffer: no prompt is trained
///   twice, none is lost without being re-queued;
/// - every trained group's lag, recomputed from the versions it arrived with, is ≤ η, and it is
///   trained at the version its slot predicted (⌊slot / B⌋);
/// - the accounting identities issued = trained + buffered + in flight + Σ lost,
///   Σ lost = re-issued + pending re-issue and issued = cursor + re-issued, and the budget
///   admitted + in flight ≤ (v + η + 1)·B;
/// - fair share: a grant leaves its actor holding at most ⌈((v + η + 1)·B − admitted) / live actors⌉
///   groups in flight, and a request waits for budget only when the budget is full or the actor
///   already holds that share;
/// - membership: a ticket goes only to an actor whose last membership directive was a join (one
///   declared dead or gone gets none until it joins again); an actor that restarts, leaves or is
///   declared dead has every group it held re-queued in the same event, each exactly once; an actor
///   is declared dead only after the heartbeat timeout, and after a tick no live actor is overdue;
///   no ticket is issued before the start gate opens, and it opens only when the expected actors
///   are live or the grace after the first tick ran out.
///
/// - exact mode (k = η): tickets ask for the current version, a group is admitted only if sampled
///   by it, a batch is announced only with the budget full and nothing in flight, and every trained
///   sample's lag is exactly min(k, version − the version the run or its last restart began at).
///
/// A value type without references, so the exhaustive search can hash it with the rest of a state.
struct StalenessLedger: Hashable {
    enum Fate: Hashable { case inFlight(TicketID), buffered, trained, awaitingReissue }
    /// How often a law was checked: a figure for the tests' reports, no part of the state (equal
    /// and hashed alike whatever it counts, so two states differing only in it are one).
    struct Tally: Hashable {
        var fairShareChecks = 0
        /// Grants that left the actor exactly at a fair share tighter than the budget: the rule bit.
        var grantsAtFairShare = 0
        static func == (_: Tally, _: Tally) -> Bool { true }
        func hash(into _: inout Hasher) {}
    }
    struct BufferedGroup: Hashable {
        var group: AdmittedGroup
        /// The oldest sample version the group arrived with (the lag is recomputed from it).
        var oldestSampleVersion: Int
    }

    let policy: StalenessPolicy
    var fate: [PromptID: Fate] = [:]
    var expectedCursor = 0
    /// Groups trained in this timeline (a learner restart rolls the book back with the weights).
    var trainedCount = 0
    var bufferBook: [BufferedGroup] = []
    var announced: [AdmittedGroup]?
    var drainedSeen = false
    /// The actor each ticket with a group in flight was issued to (the book for the fair share).
    var ticketOwner: [TicketID: ActorID] = [:]
    /// Actors live by the membership directives seen so far.
    var members: Set<ActorID> = []
    var gateOpen = false
    var tally = Tally()
    /// The version the current warm-up began at (0, or the version a learner restart resumed at).
    var warmupStart = 0

    init(policy: StalenessPolicy) { self.policy = policy }

    var eta: Int { policy.maxStaleness }
    var b: Int { policy.groupsPerBatch }
    var exact: Bool { policy.mode == .exact }
    /// Buffered groups a settled run may hold between batches: less than one batch, and in exact
    /// mode also the k·B fresher groups waiting for their turn.
    var settledBufferLimit: Int { exact ? (eta + 1) * b : b }

    /// Books the directives `controller` returned for `event` (handled at time `now`) and returns
    /// every law they broke, in words.
    mutating func record(_ event: StalenessEvent, directives: [StalenessDirective], controller: StalenessController,
                         now: Double) -> [String] {
        var broken: [String] = []
        if case .batchTrained(let version) = event { broken += recordTrained(version: version) }
        var revoking: Set<PromptID> = []
        for d in directives {
            switch d {
            case .memberRestarted(let actor, _, _), .memberLeft(let actor), .memberDead(let actor, _):
                revoking.formUnion(fate.compactMap { p, f in
                    if case .inFlight(let t) = f, ticketOwner[t] == actor { return p } else { return nil }
                })
            case let .reissuePrompts(_, prompts, .actorLeft):
                for p in prompts where revoking.remove(p) == nil {
                    broken.append("prompt \(p) re-queued as actor_left, but no actor holding it restarted, left or died")
                }
            default:
                break
            }
            broken += record(d, event: event, controller: controller, now: now)
        }
        if !revoking.isEmpty { broken.append("groups \(revoking.sorted()) of a departed or restarted actor were not re-queued") }
        if case .tick = event, let timeout = policy.membership.heartbeatTimeoutSeconds {
            for (actor, m) in controller.state.membership.members where now - m.lastSeen > timeout {
                broken.append("\(actor) silent for \(now - m.lastSeen) s > timeout \(timeout) s, still live after a tick")
            }
        }
        forgetSettledTickets()
        return broken
    }

    /// Books the directives of `resumeAfterRestart()` on a controller restored from a snapshot,
    /// after the book itself was rolled back to the same snapshot: the buffer is gone (it lived in
    /// learner memory), and so is any announced batch.
    mutating func recordRestart(directives: [StalenessDirective], controller: StalenessController) -> [String] {
        var broken: [String] = []
        for d in directives {
            guard case .reissuePrompts(_, _, let reason) = d, reason == .learnerRestart else {
                broken.append("learner restart returned \(d)")
                continue
            }
            broken += record(d, event: .tick, controller: controller, now: 0)
        }
        bufferBook.removeAll()
        announced = nil
        drainedSeen = false
        members = []
        gateOpen = false
        warmupStart = controller.version
        forgetSettledTickets()
        return broken
    }

    /// Keeps owners only of tickets still in flight, so finished tickets do not tell states apart.
    private mutating func forgetSettledTickets() {
        var live = Set<TicketID>()
        for case .inFlight(let t) in fate.values { live.insert(t) }
        ticketOwner = ticketOwner.filter { live.contains($0.key) }
    }

    /// Groups `actor` holds in flight, counted from the book.
    private func groupsHeld(by actor: ActorID) -> Int {
        fate.values.reduce(0) { n, f in
            if case .inFlight(let t) = f, ticketOwner[t] == actor { return n + 1 }
            return n
        }
    }

    /// ⌈room / live actors⌉, recomputed from the policy, the controller's version and admitted
    /// slots and the live actors of the book.
    private func fairShare(controller: StalenessController) -> (share: Int, room: Int) {
        let st = controller.state
        let room = max(0, (st.version + eta + 1) * b - st.admittedSlots)
        let actors = max(1, members.count)
        return ((room + actors - 1) / actors, room)
    }

    /// The end of a well-behaved run, once nothing is in flight or waiting for re-issue: every prompt
    /// drawn was trained exactly once or waits in the buffer for a batch that is not full yet (the
    /// fair share can clip a ticket to fewer prompts, so the drawn total need not end on a batch
    /// boundary). Returns what is wrong, or nil.
    func endOfRunViolation() -> String? {
        guard fate.values.allSatisfy({ $0 == .trained || $0 == .buffered }) else {
            return "a prompt drawn from the cursor was neither trained nor buffered"
        }
        let buffered = fate.values.filter { $0 == .buffered }.count
        return buffered < settledBufferLimit ? nil : "\(buffered) groups buffered, a full batch of \(b) left untrained"
    }

    private mutating func recordTrained(version: Int) -> [String] {
        guard let groups = announced else { return ["batch \(version) trained without an announced batch"] }
        var broken: [String] = []
        announced = nil
        for (k, g) in groups.enumerated() {
            if fate[g.promptID] != .buffered { broken.append("trained prompt \(g.promptID) was \(describe(g.promptID))") }
            fate[g.promptID] = .trained
            guard k < bufferBook.count else { continue }
            let lag = version - bufferBook[k].oldestSampleVersion
            if g.trainVersion != version { broken.append("group of prompt \(g.promptID) slotted for version \(g.trainVersion), trained at \(version)") }
            if lag > eta || lag < 0 { broken.append("prompt \(g.promptID) trained at version \(version) with lag \(lag) outside 0…η=\(eta)") }
            let exactLag = min(eta, version - warmupStart)
            if exact, lag != exactLag || g.sampleLags.contains(where: { $0 != exactLag }) {
                broken.append("exact mode: prompt \(g.promptID) trained at version \(version) with lags \(g.sampleLags), not \(exactLag)")
            }
        }
        bufferBook.removeFirst(min(groups.count, bufferBook.count))
        trainedCount += groups.count
        return broken
    }

    private mutating func record(_ d: StalenessDirective, event: StalenessEvent, controller: StalenessController, now: Double) -> [String] {
        var broken: [String] = []
        func check(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { broken.append(message()) } }
        let v = controller.version
        switch d {
        case .issueTicket(let t):
            check(t.minVersion <= v, "ticket \(t.id) asks for future version \(t.minVersion) > \(v)")
            check(t.leaseDeadline == now + policy.leaseSeconds, "ticket \(t.id) lease deadline \(t.leaseDeadline) ≠ now + lease")
            check(members.contains(t.actor), "ticket \(t.id) issued to \(t.actor), not live since it was declared dead, left or never joined")
            check(gateOpen, "ticket \(t.id) issued before the start gate opened")
            if eta == 0 || exact { check(t.minVersion == v, "η=0 or exact-mode ticket minVersion \(t.minVersion) ≠ v \(v)") }
            if t.isReissue {
                for p in t.promptIDs { check(fate[p] == .awaitingReissue, "re-issued prompt \(p) was \(describe(p))") }
            } else {
                check(t.promptIDs == Array(expectedCursor ..< expectedCursor + t.promptIDs.count),
                      "fresh prompts \(t.promptIDs) do not continue the cursor at \(expectedCursor)")
                expectedCursor += t.promptIDs.count
                for p in t.promptIDs { check(fate[p] == nil, "fresh prompt \(p) seen before") }
            }
            for p in t.promptIDs { fate[p] = .inFlight(t.id) }
            ticketOwner[t.id] = t.actor
            let (share, room) = fairShare(controller: controller)
            let held = groupsHeld(by: t.actor)
            check(held <= share, "actor \(t.actor) holds \(held) groups after ticket \(t.id), over its share ⌈\(room)/live actors⌉ = \(share)")
            tally.fairShareChecks += 1
            if held == share, share < room { tally.grantsAtFairShare += 1 }
        case .admitGroup(let g):
            check(g.lag <= eta && g.lag >= 0, "admitted lag \(g.lag) outside 0…\(eta)")
            check(g.sampleLags.allSatisfy { $0 >= 0 && $0 <= g.lag }, "sample lags \(g.sampleLags) vs group lag \(g.lag)")
            if eta == 0 { check(g.sampleLags.allSatisfy { $0 == 0 }, "η=0 but lags \(g.sampleLags)") }
            check(g.trainVersion >= v, "train version \(g.trainVersion) below current \(v)")
            if exact { check(g.sampleLags.allSatisfy { $0 == g.trainVersion - v }, "exact mode: admitted lags \(g.sampleLags) at version \(v), train version \(g.trainVersion)") }
            let slot = trainedCount + bufferBook.count
            check(g.trainVersion == slot / b, "group in slot \(slot) slotted for version \(g.trainVersion), not \(slot / b)")
            check(fate[g.promptID] == .inFlight(g.ticket), "admitted prompt \(g.promptID) was \(describe(g.promptID))")
            var oldest = Int.min
            if case .groupArrived(let arrival) = event, let o = arrival.sampleVersions.min() {
                oldest = o
                check(arrival.ticket == g.ticket && arrival.promptID == g.promptID && arrival.actor == g.actor,
                      "admitted \(g) for the arrival \(arrival)")
                check(g.lag == g.trainVersion - o && g.sampleLags == arrival.sampleVersions.map { g.trainVersion - $0 },
                      "lags \(g.lag) \(g.sampleLags) do not follow from versions \(arrival.sampleVersions) at \(g.trainVersion)")
            } else {
                check(false, "group admitted on \(event), not on its arrival")
            }
            fate[g.promptID] = .buffered
            bufferBook.append(BufferedGroup(group: g, oldestSampleVersion: oldest))
        case let .dropGroup(arrival, reason):
            if reason.losesLiveGroup {
                check(fate[arrival.promptID] == .inFlight(arrival.ticket), "lost group \(arrival.promptID) was \(describe(arrival.promptID)), not in flight")
            } else if let live = controller.state.liveTickets[arrival.ticket], live.ticket.actor == arrival.actor,
                      live.pending.contains(arrival.promptID), controller.state.membership.contains(arrival.actor) {
                check(false, "rejected (\(reason.rawValue)) the awaited arrival of a live group \(arrival)")
            }
        case let .reissuePrompts(ticket, prompts, reason):
            check(reason.losesLiveGroup, "re-issue with reason \(reason)")
            for p in prompts {
                let ok = fate[p] == .inFlight(ticket) || (reason == .learnerRestart && fate[p] == .buffered)
                check(ok, "re-queued prompt \(p) was \(describe(p))")
                fate[p] = .awaitingReissue
            }
        case let .batchReady(version, groups):
            check(version == v, "batch for \(version) announced at version \(v)")
            check(announced == nil, "second batch announced before the first was trained")
            check(groups.count == b, "batch of \(groups.count) groups")
            check(groups == bufferBook.prefix(b).map(\.group), "batch is not the oldest buffered groups")
            check(groups.allSatisfy { $0.trainVersion == version }, "batch groups with other train versions")
            if exact {
                let st = controller.state
                check(st.inFlightGroups == 0 && st.admittedSlots == st.capacity,
                      "exact mode: batch \(version) announced with \(st.inFlightGroups) in flight, \(st.admittedSlots) of \(st.capacity) slots admitted")
            }
            announced = groups
        case .drained:
            check(!drainedSeen, "drained twice")
            check(controller.state.inFlightGroups == 0, "drained with groups in flight")
            drainedSeen = true
        case .waitForWeights(_, let minVersion):
            check(minVersion <= v, "waiting for a version \(minVersion) not yet published (v = \(v))")
        case .waitForBudget(let actor):
            let st = controller.state
            let (share, _) = fairShare(controller: controller)
            let budgetFull = st.admittedSlots + st.inFlightGroups >= (st.version + eta + 1) * b
            check(budgetFull || groupsHeld(by: actor) >= share,
                  "\(actor) waits for budget with room left and \(groupsHeld(by: actor)) groups held, under its share \(share)")
        case .waitForStartGate:
            check(!gateOpen, "a request waits for the start gate, which is open")
        case .refuseTicket:
            break
        case .memberJoined(let actor):
            check(members.insert(actor).inserted, "\(actor) joined while live")
        case .memberRestarted(let actor, let previous, let pid):
            check(members.contains(actor), "\(actor) restarted while not live")
            check(previous != pid, "\(actor) restarted under the same pid \(pid)")
            if case .actorJoined(actor, pid) = event {} else { check(false, "\(actor) restarted on \(event), not on its join under pid \(pid)") }
        case .memberLeft(let actor):
            check(members.remove(actor) != nil, "\(actor) left while not live")
            check(event == .actorLeft(actor), "\(actor) left on \(event)")
        case let .memberDead(actor, silent):
            check(members.remove(actor) != nil, "\(actor) declared dead while not live")
            check(event == .tick, "\(actor) declared dead on \(event), not on a tick")
            if let timeout = policy.membership.heartbeatTimeoutSeconds {
                check(silent > timeout, "\(actor) declared dead after \(silent) s, within the timeout \(timeout) s")
            } else {
                check(false, "\(actor) declared dead without a heartbeat timeout")
            }
        case .startGateOpened(let live):
            check(!gateOpen, "start gate opened twice")
            gateOpen = true
            let m = controller.state.membership
            check(live == m.count && live == members.count, "gate opened with \(live) live actors, controller has \(m.count), book \(members.count)")
            // After the grace (counted from the first tick) any event may open it, e.g. a join.
            let graceOver = m.startedAt.map { now - $0 > policy.membership.startupGraceSeconds } == true
            check(live >= policy.membership.expectedActors || graceOver,
                  "start gate opened with \(live) of \(policy.membership.expectedActors) actors before the grace ran out")
        }
        return broken
    }

    /// The laws between the book and the controller's state; empty when all hold.
    func violations(of controller: StalenessController) -> [String] {
        var broken: [String] = []
        func check(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { broken.append(message()) } }
        let s = controller.statistics
        let st = controller.state
        check(s.accountingBalances, "accounting identity broken: issued \(s.issuedGroups), trained \(s.trainedGroups), buffered \(s.bufferedGroups), in flight \(s.inFlightGroups), lost \(s.totalLost), re-issued \(s.reissuedGroups), pending re-issue \(s.pendingReissue), cursor \(s.cursor)")
        check(s.issuedGroups == s.trainedGroups + s.totalLost + s.inFlightGroups + s.bufferedGroups, "issued ≠ trained + lost + in flight + buffered")
        check(s.cursor == expectedCursor, "cursor \(s.cursor) ≠ fresh prompts issued \(expectedCursor)")
        check(s.trainedGroups == s.version * b, "trained \(s.trainedGroups) ≠ version \(s.version) × B")
        check(trainedCount == s.trainedGroups, "trained: book \(trainedCount), controller \(s.trainedGroups)")
        check(fate.count == expectedCursor, "\(expectedCursor - fate.count) prompt(s) drawn without a fate")
        // Fate by fate, not only in number: each prompt is where the controller keeps it.
        var inFlight: [PromptID: TicketID] = [:]
        check(Set(st.membership.members.keys) == members, "live actors: controller \(st.membership.members.keys.sorted()), book \(members.sorted())")
        check(st.membership.gateOpen == gateOpen, "start gate: controller \(st.membership.gateOpen), book \(gateOpen)")
        for (id, live) in st.liveTickets {
            check(members.contains(live.ticket.actor), "ticket \(id) held by \(live.ticket.actor), not a live actor")
            for p in live.pending {
                check(inFlight[p] == nil, "prompt \(p) pending in two tickets")
                inFlight[p] = id
            }
        }
        let queued = Set(st.reissueQueue)
        check(queued.count == st.reissueQueue.count, "a prompt queued twice for re-issue: \(st.reissueQueue)")
        var trained = 0
        for (p, f) in fate {
            switch f {
            case .inFlight(let t): check(inFlight[p] == t, "book has prompt \(p) in flight on ticket \(t), controller on \(String(describing: inFlight[p]))")
            case .awaitingReissue: check(queued.contains(p), "book has prompt \(p) awaiting re-issue, controller has not queued it")
            case .buffered, .trained: check(inFlight[p] == nil && !queued.contains(p), "prompt \(p) \(f) but also in flight or queued")
            }
            if f == .trained { trained += 1 }
        }
        let inFlightBook = fate.values.filter { if case .inFlight = $0 { return true } else { return false } }.count
        check(inFlightBook == s.inFlightGroups, "in flight: book \(inFlightBook), controller \(s.inFlightGroups)")
        check(queued.count == fate.values.filter { $0 == .awaitingReissue }.count, "awaiting re-issue: book and controller differ")
        check(st.buffer == bufferBook.map(\.group), "buffer: controller \(st.buffer.map(\.promptID)), book \(bufferBook.map(\.group.promptID))")
        check(trained == trainedCount, "\(trained) prompts trained, \(trainedCount) groups trained: a prompt trained twice")
        check(st.admittedSlots + st.inFlightGroups <= (st.version + eta + 1) * b, "budget (v+η+1)·B exceeded")
        check(st.admittedSlots == st.version * b + st.buffer.count, "admitted slots \(st.admittedSlots) ≠ v·B + buffered")
        check(s.sampleLagHistogram.count == eta + 1 && s.groupLagHistogram.count == eta + 1, "histogram size")
        return broken
    }

    private func describe(_ p: PromptID) -> String { fate[p].map { "\($0)" } ?? "never drawn" }
}
