import Foundation
import TetherCluster

/// A closed world around the real `StalenessController`: two actor processes, the network between
/// them and the learner, the learner's shell (every message becomes a join or heard event, the
/// incarnation fence after a restart) and its checkpoints. `StalenessExploration` searches every
/// interleaving of the moves below breadth-first; this type says what one move does.
///
/// The shell is modelled on `LearnerLoop`: a process sends its `ActorJoin` (with its pid) first and
/// is heard with every request after; the controller decides joins, restarts (a join under a new
/// pid), deaths (silence past the heartbeat timeout, so a running actor that stops asking is
/// declared dead and its groups then arrive late) and the start gate; groups of an earlier learner
/// incarnation never reach the controller (the ticket id carries the incarnation). Actors are modelled on `ActorProcess`: a ticket is sampled
/// at once with the weights the actor holds (fetching first if they are older than the ticket's
/// minimum), and every group goes onto the network, where it may be delivered in any order, twice,
/// or never.
struct ExplorationWorld: Hashable {
    struct ActorProcessModel: Hashable {
        var running = true
        /// The weights version it holds (after a learner restart possibly newer than the learner's).
        var weights = 0
        var pid: UInt32 = 1
        /// Whether this process has sent its `ActorJoin` (once, at start).
        var sentJoin = false
    }
    struct Message: Hashable {
        var arrival: GroupArrival
        /// A second copy of a delivered group (a duplicate delivery); not copied again.
        var isCopy: Bool
        var sortKey: [Int] { [arrival.ticket, arrival.promptID, isCopy ? 1 : 0, arrival.actor.name.hashValue] + arrival.sampleVersions }
    }
    struct Checkpoint: Hashable {
        var state: StalenessState
        var ledger: StalenessLedger
    }

    enum Move: Hashable, CustomStringConvertible {
        /// Actor i asks for a ticket (its process joining first if it has not yet), optionally
        /// after installing the newest weights.
        case request(actor: Int, fetchFirst: Bool)
        case deliver(Message, keepCopy: Bool)
        /// Actor i says goodbye (it may still run: its groups then arrive late).
        case leave(actor: Int)
        case kill(actor: Int)
        /// A new process (a new pid) under the same name joins (with the newest weights).
        case restart(actor: Int)
        /// One time unit passes: leases due expire, silent actors die, the start gate may open.
        case tick
        case train(checkpoint: Bool)
        /// The learner process dies and resumes from its last checkpoint.
        case restartLearner
        case drain

        var description: String {
            switch self {
            case let .request(a, fetch): return "a\(a) requests a ticket\(fetch ? " (after fetching the newest weights)" : "")"
            case let .deliver(m, copy):
                let what = "group (ticket \(m.arrival.ticket), prompt \(m.arrival.promptID), versions \(m.arrival.sampleVersions)) from \(m.arrival.actor)"
                return "deliver \(m.isCopy ? "a duplicate of " : "")\(what)\(copy ? ", a copy stays on the network" : "")"
            case .leave(let a): return "a\(a) says goodbye"
            case .kill(let a): return "SIGKILL a\(a)"
            case .restart(let a): return "a\(a) restarts (new pid) and joins"
            case .tick: return "one time unit passes (lease tick)"
            case .train(let cp): return "learner trains the announced batch\(cp ? " and checkpoints" : "")"
            case .restartLearner: return "learner restarts from its checkpoint"
            case .drain: return "learner drains"
            }
        }
    }

    /// What one move did, for the search's coverage figures and its counterexample traces.
    struct Outcome {
        var world: ExplorationWorld?
        var broken: [String] = []
        var directives: [StalenessDirective] = []
    }

    static let actorCount = 2
    static func actorID(_ i: Int) -> ActorID { ActorID("a\(i)") }

    var controller: StalenessController
    var ledger: StalenessLedger
    var actors: [ActorProcessModel]
    /// Groups sent and not yet delivered, kept sorted: the network is a multiset.
    var network: [Message] = []
    /// Always 0 between moves: times are shifted so the lease deadlines are relative to now, and
    /// two worlds that differ only by the clock are one state.
    var now = 0.0
    var checkpoint: Checkpoint

    init(policy: StalenessPolicy) throws {
        controller = try StalenessController(policy: policy)
        ledger = StalenessLedger(policy: policy)
        actors = Array(repeating: ActorProcessModel(), count: Self.actorCount)
        checkpoint = Checkpoint(state: controller.snapshot(), ledger: ledger)
    }

    static func == (a: ExplorationWorld, b: ExplorationWorld) -> Bool {
        a.controller.state == b.controller.state && a.ledger == b.ledger && a.actors == b.actors
            && a.network == b.network && a.now == b.now && a.checkpoint == b.checkpoint
    }

    func hash(into h: inout Hasher) {
        h.combine(controller.state)
        h.combine(ledger)
        h.combine(actors)
        h.combine(network)
        h.combine(checkpoint)
    }

    /// Every move possible in this world, in a fixed order.
    func moves() -> [Move] {
        var out: [Move] = []
        let st = controller.state
        for i in actors.indices {
            let id = Self.actorID(i)
            if actors[i].running {
                out.append(.request(actor: i, fetchFirst: false))
                if actors[i].weights != st.version { out.append(.request(actor: i, fetchFirst: true)) }
                out.append(.kill(actor: i))
            } else {
                out.append(.restart(actor: i))
            }
            if st.membership.contains(id) { out.append(.leave(actor: i)) }
        }
        var seen = Set<Message>()
        for m in network where seen.insert(m).inserted {
            out.append(.deliver(m, keepCopy: false))
            if !m.isCopy { out.append(.deliver(m, keepCopy: true)) }
        }
        // Time matters while tickets are out (leases, silence) or the start gate is closed (grace).
        if !st.liveTickets.isEmpty || !st.membership.gateOpen { out.append(.tick) }
        if ledger.announced != nil {
            out.append(.train(checkpoint: false))
            out.append(.train(checkpoint: true))
        }
        out.append(.restartLearner)
        if !st.draining { out.append(.drain) }
        return out
    }

    /// The world after `move`, with every law the controller broke on the way.
    func after(_ move: Move) -> Outcome {
        var o = Outcome()
        var w = self
        w.perform(move, into: &o)
        w.normaliseClock(into: &o)
        o.broken += w.ledger.violations(of: w.controller)
        o.world = w
        return o
    }

    private mutating func perform(_ move: Move, into o: inout Outcome) {
        switch move {
        case let .request(i, fetch):
            let id = Self.actorID(i)
            if fetch { actors[i].weights = controller.version }
            if actors[i].sentJoin {
                send(.actorHeard(id), into: &o)
            } else {
                actors[i].sentJoin = true
                send(.actorJoined(id, pid: actors[i].pid), into: &o)
            }
            send(.ticketRequested(actor: id, weightsVersion: actors[i].weights), into: &o)
        case let .deliver(m, keepCopy):
            network.remove(at: network.firstIndex(of: m)!)
            if keepCopy { enqueue(Message(arrival: m.arrival, isCopy: true)) }
            send(.groupArrived(m.arrival), into: &o)
        case .leave(let i):
            send(.actorLeft(Self.actorID(i)), into: &o)
        case .kill(let i):
            actors[i].running = false
        case .restart(let i):
            actors[i] = ActorProcessModel(running: true, weights: controller.version, pid: actors[i].pid + 1, sentJoin: true)
            send(.actorJoined(Self.actorID(i), pid: actors[i].pid), into: &o)
        case .tick:
            now += 1
            send(.tick, into: &o)
        case .train(let takeCheckpoint):
            send(.batchTrained(version: controller.version), into: &o)
            if takeCheckpoint { checkpoint = Checkpoint(state: controller.snapshot(), ledger: ledger) }
        case .restartLearner:
            do {
                controller = try StalenessController(restoring: checkpoint.state)
                let directives = try controller.resumeAfterRestart()
                ledger = checkpoint.ledger
                o.directives += directives
                o.broken += ledger.recordRestart(directives: directives, controller: controller)
            } catch {
                o.broken.append("restart from the checkpoint threw \(error)")
            }
            network.removeAll()  // the incarnation fence: earlier groups never reach the controller
        case .drain:
            send(.drain, into: &o)
        }
    }

    private mutating func send(_ event: StalenessEvent, into o: inout Outcome) {
        let directives: [StalenessDirective]
        do { directives = try controller.handle(event, now: now) } catch {
            o.broken.append("\(event) threw \(error)")
            return
        }
        o.directives += directives
        o.broken += ledger.record(event, directives: directives, controller: controller, now: now)
        for d in directives {
            switch d {
            case .issueTicket(let t):
                guard let i = actorIndex(t.actor), actors[i].running else { continue }  // sent to a dead process
                if actors[i].weights < t.minVersion { actors[i].weights = controller.version }
                for p in t.promptIDs {
                    enqueue(Message(arrival: GroupArrival(actor: t.actor, ticket: t.id, promptID: p, sampleVersions: [actors[i].weights]), isCopy: false))
                }
            case .waitForWeights(let actor, _):
                if let i = actorIndex(actor), actors[i].running { actors[i].weights = controller.version }
            default:
                break
            }
        }
    }

    private func actorIndex(_ id: ActorID) -> Int? { (0 ..< Self.actorCount).first { Self.actorID($0) == id } }

    private mutating func enqueue(_ m: Message) {
        let key = m.sortKey
        let at = network.firstIndex { $0.sortKey.lexicographicallyPrecedes(key) == false } ?? network.count
        network.insert(m, at: at)
    }

    /// Shifts every time so that now = 0: a tick compares deadlines, last-seen times and the start
    /// with now only. A start longer ago than the grace is clamped, as only "grace over" matters.
    private mutating func normaliseClock(into o: inout Outcome) {
        guard now != 0 else { return }
        func shifted(_ s: StalenessState) -> StalenessState {
            var s = s
            for id in s.liveTickets.keys { s.liveTickets[id]!.ticket.leaseDeadline -= now }
            for id in s.membership.members.keys { s.membership.members[id]!.lastSeen -= now }
            let grace = s.policy.membership.startupGraceSeconds
            s.membership.startedAt = s.membership.startedAt.map { max($0 - now, -grace - 1) }
            return s
        }
        do { controller = try StalenessController(restoring: shifted(controller.state)) } catch {
            o.broken.append("restoring a snapshot threw \(error)")
        }
        checkpoint.state = shifted(checkpoint.state)
        now = 0
    }

    /// From here, can one well-behaved actor still drive the learner forward until every prompt
    /// ever drawn is trained exactly once? Every known actor leaves, time passes beyond the start
    /// gate's grace, a fresh one joins and delivers each group at once with the newest weights,
    /// until two more versions are trained, nothing is in flight or waiting for re-issue and less
    /// than a batch is buffered; then `StalenessLedger.endOfRunViolation` must hold. Returns what
    /// failed, or nil.
    func finishes() -> String? {
        var c = controller
        var book = ledger
        var broken: [String] = []
        var now = 0.0
        func send(_ e: StalenessEvent) -> [StalenessDirective] {
            do {
                let d = try c.handle(e, now: now)
                broken += book.record(e, directives: d, controller: c, now: now)
                return d
            } catch {
                broken.append("\(e) threw \(error)")
                return []
            }
        }
        for id in c.state.membership.members.keys.sorted() { _ = send(.actorLeft(id)) }
        _ = send(.tick)
        now = c.policy.membership.startupGraceSeconds + 1
        _ = send(.tick)
        let finisher = ActorID("finisher")
        _ = send(.actorJoined(finisher, pid: 1))
        if c.state.draining { return book.fate.values.allSatisfy({ if case .inFlight = $0 { return false } else { return true } }) ? nil : "drained run left a prompt in flight" }
        let target = c.version + 2
        var steps = 0
        func settled() -> Bool {
            let s = c.statistics
            return c.version >= target && s.pendingReissue == 0 && s.bufferedGroups < book.settledBufferLimit && s.inFlightGroups == 0
        }
        while !settled(), broken.isEmpty, steps < 500 {
            steps += 1
            if book.announced != nil {
                _ = send(.batchTrained(version: c.version))
                continue
            }
            for d in send(.ticketRequested(actor: finisher, weightsVersion: c.version)) {
                guard case .issueTicket(let t) = d else { continue }
                for p in t.promptIDs {
                    _ = send(.groupArrived(GroupArrival(actor: finisher, ticket: t.id, promptID: p, sampleVersions: [c.version])))
                }
            }
        }
        broken += book.violations(of: c)
        if let first = broken.first { return "while finishing: \(first)" }
        if !settled() { return "no progress within 500 requests: version \(c.version), \(c.statistics)" }
        return book.endOfRunViolation()
    }
}

/// Breadth-first search over every world reachable in at most `depth` moves, each state visited
/// once (a set of 64-bit hashes of the visited states: hash compaction, as SPIN's; with n states a
/// collision, which could only hide a state, has probability about n²/2⁶⁵, 10⁻⁶ for 6·10⁶). The invariants are
/// checked on every transition and every state, liveness (`finishes`) once for every distinct pair of
/// controller state and book. The first violation ends the search with its trace.
struct StalenessExploration {
    struct Counterexample: CustomStringConvertible {
        var trace: [ExplorationWorld.Move]
        var broken: [String]
        var description: String {
            var lines = ["\(broken.count) law(s) broken after \(trace.count) move(s):"]
            lines += broken.prefix(5).map { "  ✗ \($0)" }
            lines.append("  trace:")
            lines += trace.enumerated().map { "   \($0.offset + 1). \($0.element)" }
            return lines.joined(separator: "\n")
        }
    }
    struct Report {
        var states = 0
        var transitions = 0
        var depthReached = 0
        var livenessChecks = 0
        var seconds = 0.0
        /// How often each kind of directive (and drop reason) was seen: proof the search reaches the paths.
        var coverage: [String: Int] = [:]
        var counterexample: Counterexample?
    }

    let policy: StalenessPolicy
    let depth: Int

    private struct LivenessKey: Hashable { var state: StalenessState; var ledger: StalenessLedger }

    func run() throws -> Report {
        let start = Date()
        var report = Report()
        let initial = try ExplorationWorld(policy: policy)
        var visited: Set<Int> = [initial.hashValue]
        var livenessChecked: Set<Int> = []
        var frontier: [(world: ExplorationWorld, trace: [ExplorationWorld.Move])] = [(initial, [])]
        report.states = 1
        for level in 0 ... depth {
            var next: [(world: ExplorationWorld, trace: [ExplorationWorld.Move])] = []
            for (world, trace) in frontier {
                let moves = level < depth ? world.moves() : []
                // Liveness depends on the controller and the book only: checked once per distinct pair.
                if livenessChecked.insert(LivenessKey(state: world.controller.state, ledger: world.ledger).hashValue).inserted {
                    report.livenessChecks += 1
                    if let failure = world.finishes() {
                        report.counterexample = Counterexample(trace: trace, broken: ["liveness: \(failure)"])
                        break
                    }
                }
                for move in moves {
                    let o = world.after(move)
                    report.transitions += 1
                    Self.count(o.directives, into: &report.coverage)
                    if let w = o.world, w.ledger.tally.grantsAtFairShare > world.ledger.tally.grantsAtFairShare {
                        report.coverage["grant at the fair share", default: 0] += 1
                    }
                    if !o.broken.isEmpty {
                        report.counterexample = Counterexample(trace: trace + [move], broken: o.broken)
                        break
                    }
                    if let w = o.world, visited.insert(w.hashValue).inserted { next.append((w, trace + [move])) }
                }
                if report.counterexample != nil { break }
            }
            report.depthReached = level
            if report.counterexample != nil || next.isEmpty { break }
            report.states += next.count
            frontier = next
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    static func count(_ directives: [StalenessDirective], into coverage: inout [String: Int]) {
        for d in directives {
            switch d {
            case .issueTicket(let t): coverage[t.isReissue ? "reissued ticket" : "fresh ticket", default: 0] += 1
            case .waitForWeights: coverage["wait for weights", default: 0] += 1
            case .waitForBudget: coverage["wait for budget", default: 0] += 1
            case .refuseTicket(_, let r): coverage["refused: \(r.rawValue)", default: 0] += 1
            case .admitGroup(let g): coverage[g.lag > 0 ? "admitted with lag > 0" : "admitted on-policy", default: 0] += 1
            case .dropGroup(_, let r): coverage["dropped: \(r.rawValue)", default: 0] += 1
            case .reissuePrompts(_, _, let r): coverage["re-queued: \(r.rawValue)", default: 0] += 1
            case .batchReady: coverage["batch ready", default: 0] += 1
            case .drained: coverage["drained", default: 0] += 1
            case .waitForStartGate: coverage["wait for start gate", default: 0] += 1
            case .memberJoined: coverage["member joined", default: 0] += 1
            case .memberRestarted: coverage["member restarted", default: 0] += 1
            case .memberLeft: coverage["member left", default: 0] += 1
            case .memberDead: coverage["member dead", default: 0] += 1
            case .startGateOpened: coverage["start gate opened", default: 0] += 1
            }
        }
    }
}
