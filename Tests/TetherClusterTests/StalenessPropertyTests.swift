import Foundation
import TetherCluster
import XCTest

/// SplitMix64 (Steele et al. 2014): a seeded generator so every failing order can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Drives a controller with random actors joining, leaving, dying silently, arriving late, out of
/// order and twice, with lease expiries and batches trained at random moments, and checks the
/// invariants after every single step against an independent book of every prompt's fate.
struct StalenessSimulation {
    enum Fate: Equatable { case inFlight(TicketID), buffered, trained, awaitingReissue }
    struct HeldGroup { var arrival: GroupArrival }

    let eta: Int
    let b: Int
    var rng: SplitMix64
    var controller: StalenessController
    var now = 0.0
    var step = 0
    var nextActor = 0
    var alive: [ActorID: Int] = [:]  // actor → weights version it holds
    var dead: [ActorID] = []
    var held: [HeldGroup] = []  // produced but not yet delivered (also by dead actors: zombies)
    var delivered: [GroupArrival] = []
    var fate: [PromptID: Fate] = [:]
    var expectedCursor = 0
    var announced: [AdmittedGroup]? = nil
    var bufferBook: [AdmittedGroup] = []
    var maxLagSeen = 0
    var drainedSeen = false
    /// Who each ticket went to (the book for the fair-share check).
    var ticketActor: [TicketID: ActorID] = [:]
    /// Live actors while grants of the current event were made (a re-join grants before re-adding).
    var actorsAtGrant = 0
    var fairShareChecks = 0
    /// A reference, so `check` need not be `mutating` (its message autoclosure reads `self`).
    final class FailureLog { var items: [String] = [] }
    let log = FailureLog()
    var failures: [String] { log.items }

    init(seed: UInt64, eta: Int, b: Int, promptsPerTicket: Int) throws {
        self.eta = eta
        self.b = b
        rng = SplitMix64(seed: seed)
        controller = try StalenessController(policy: StalenessPolicy(
            maxStaleness: eta, groupsPerBatch: b, promptsPerTicket: promptsPerTicket, leaseSeconds: 10))
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition, log.items.count < 5 { log.items.append("step \(step): \(message())") }
    }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0 ..< 1, using: &rng) < p }

    mutating func send(_ event: StalenessEvent) {
        let versionBefore = controller.version
        if case .actorJoined(let a) = event, controller.state.actors.contains(a) {
            actorsAtGrant = controller.state.actors.count - 1
        } else {
            actorsAtGrant = -1  // read after the event: it no longer changes once grants are made
        }
        let directives: [StalenessDirective]
        do { directives = try controller.handle(event, now: now) } catch {
            check(false, "unexpected error \(error) for \(event)")
            return
        }
        for d in directives { apply(d, versionBefore: versionBefore) }
        checkInvariants()
        step += 1
    }

    mutating func apply(_ d: StalenessDirective, versionBefore: Int) {
        let v = controller.version
        switch d {
        case .issueTicket(let t):
            check(t.minVersion <= v, "ticket \(t.id) asks for future version \(t.minVersion) > \(v)")
            check(t.leaseDeadline == now + 10, "lease deadline")
            if eta == 0 { check(t.minVersion == v, "η=0 ticket minVersion \(t.minVersion) ≠ v \(v)") }
            if t.isReissue {
                for p in t.promptIDs { check(fate[p] == .awaitingReissue, "re-issued prompt \(p) was \(String(describing: fate[p]))") }
            } else {
                check(t.promptIDs == Array(expectedCursor ..< expectedCursor + t.promptIDs.count),
                      "fresh prompts \(t.promptIDs) do not continue the cursor at \(expectedCursor)")
                expectedCursor += t.promptIDs.count
                for p in t.promptIDs { check(fate[p] == nil, "fresh prompt \(p) seen before") }
            }
            for p in t.promptIDs { fate[p] = .inFlight(t.id) }
            ticketActor[t.id] = t.actor
            // Fair share, recomputed from the book: the grant left the actor holding at most
            // ⌈((v + η + 1)·B − admitted) / live actors⌉ groups in flight.
            let st = controller.state
            let room = max(0, (st.version + eta + 1) * b - st.admittedSlots)
            let actors = max(1, actorsAtGrant >= 0 ? actorsAtGrant : st.actors.count)
            let heldByActor = fate.values.reduce(0) { n, f in
                if case .inFlight(let tid) = f, ticketActor[tid] == t.actor { return n + 1 }
                return n
            }
            check(heldByActor <= (room + actors - 1) / actors,
                  "actor \(t.actor) holds \(heldByActor) groups after ticket \(t.id), over its share ⌈\(room)/\(actors)⌉")
            fairShareChecks += 1
            // The actor samples with what it holds (≥ minVersion, enforced by the controller);
            // sometimes a sample spans an update, rarely the actor lies or is broken.
            // A silently dead actor can still be granted a queued request: the ticket just never comes back.
            guard let wv = alive[t.actor] else { return }
            check(wv >= t.minVersion, "actor holds \(wv) < minVersion \(t.minVersion)")
            for p in t.promptIDs {
                var versions: [Int] = []
                for _ in 0 ..< 3 { versions.append(chance(0.3) ? Int.random(in: wv ... v, using: &rng) : wv) }
                if chance(0.04) { versions[0] = max(0, wv - Int.random(in: 1 ... 3, using: &rng)) }
                if chance(0.01) { versions[1] = v + 1 }
                if chance(0.01) { versions = [] }
                held.append(HeldGroup(arrival: GroupArrival(actor: t.actor, ticket: t.id, promptID: p, sampleVersions: versions)))
            }
        case .admitGroup(let g):
            check(g.lag <= eta && g.lag >= 0, "admitted lag \(g.lag) outside 0…\(eta)")
            check(g.sampleLags.allSatisfy { $0 >= 0 && $0 <= g.lag }, "sample lags \(g.sampleLags) vs group lag \(g.lag)")
            if eta == 0 { check(g.sampleLags.allSatisfy { $0 == 0 }, "η=0 but lags \(g.sampleLags)") }
            check(g.trainVersion >= v, "train version \(g.trainVersion) below current \(v)")
            check(fate[g.promptID] == .inFlight(g.ticket), "admitted prompt \(g.promptID) was \(String(describing: fate[g.promptID]))")
            fate[g.promptID] = .buffered
            bufferBook.append(g)
            maxLagSeen = max(maxLagSeen, g.lag)
        case let .dropGroup(arrival, reason):
            if reason.losesLiveGroup {
                check(fate[arrival.promptID] == .inFlight(arrival.ticket), "lost group \(arrival.promptID) was not in flight")
            } else if case .inFlight(let t) = fate[arrival.promptID], t == arrival.ticket, alive[arrival.actor] != nil {
                check(false, "rejected (\(reason)) an arrival of a live group \(arrival)")
            }
        case let .reissuePrompts(ticket, prompts, reason):
            check(reason.losesLiveGroup, "re-issue with reason \(reason)")
            for p in prompts {
                let ok = fate[p] == .inFlight(ticket) || (reason == .learnerRestart && fate[p] == .buffered)
                check(ok, "re-queued prompt \(p) was \(String(describing: fate[p]))")
                fate[p] = .awaitingReissue
            }
        case let .batchReady(version, groups):
            check(version == v, "batch for \(version) announced at version \(v)")
            check(announced == nil, "second batch announced before the first was trained")
            check(groups.count == b, "batch of \(groups.count) groups")
            check(groups == Array(bufferBook.prefix(b)), "batch is not the oldest buffered groups")
            check(groups.allSatisfy { $0.trainVersion == version }, "batch groups with other train versions")
            announced = groups
        case .drained:
            check(!drainedSeen, "drained twice")
            drainedSeen = true
        case .waitForWeights(let actor, let minVersion):
            check(minVersion <= v, "waiting for a version \(minVersion) not yet published (v = \(v))")
            _ = actor  // (a queued request is judged by the version the actor had when it asked)
        case .waitForBudget, .refuseTicket:
            break
        }
    }

    mutating func checkInvariants() {
        let s = controller.statistics
        check(s.accountingBalances, "accounting identity broken: \(s)")
        // The brief's identity: issued = trained + dropped(lost, by reason) + in flight (+ buffered).
        check(s.issuedGroups == s.trainedGroups + s.totalLost + s.inFlightGroups + s.bufferedGroups, "issued identity")
        check(s.cursor == expectedCursor, "cursor \(s.cursor) ≠ fresh prompts issued \(expectedCursor)")
        var counts = (inFlight: 0, buffered: 0, trained: 0, awaiting: 0)
        for f in fate.values {
            switch f {
            case .inFlight: counts.inFlight += 1
            case .buffered: counts.buffered += 1
            case .trained: counts.trained += 1
            case .awaitingReissue: counts.awaiting += 1
            }
        }
        check(fate.count == expectedCursor, "a prompt has no fate")
        check(counts.inFlight == s.inFlightGroups, "in flight \(counts.inFlight) vs \(s.inFlightGroups)")
        check(counts.buffered == s.bufferedGroups, "buffered \(counts.buffered) vs \(s.bufferedGroups)")
        check(counts.trained == s.trainedGroups, "trained \(counts.trained) vs \(s.trainedGroups)")
        check(counts.awaiting == s.pendingReissue, "awaiting \(counts.awaiting) vs \(s.pendingReissue)")
        let st = controller.state
        check(st.admittedSlots + st.inFlightGroups <= (st.version + eta + 1) * b, "budget (v+η+1)·B exceeded")
        check(s.sampleLagHistogram.count == eta + 1, "histogram size")
    }

    mutating func trainAnnounced() {
        guard let groups = announced else { return }
        announced = nil
        for g in groups {
            check(fate[g.promptID] == .buffered, "trained prompt \(g.promptID) was \(String(describing: fate[g.promptID]))")
            fate[g.promptID] = .trained
        }
        bufferBook.removeFirst(groups.count)
        send(.batchTrained(version: controller.version))
    }

    mutating func deliver(at index: Int) {
        let group = held.remove(at: index)
        guard alive[group.arrival.actor] != nil || chance(0.3) else { return }  // zombies rarely speak
        delivered.append(group.arrival)
        send(.groupArrived(group.arrival))
    }

    mutating func chaos(steps: Int) {
        for _ in 0 ..< steps {
            let roll = Double.random(in: 0 ..< 1, using: &rng)
            let actors = alive.keys.sorted()
            switch roll {
            case ..<0.05 where alive.count < 6:
                let id = ActorID("a\(nextActor)")
                nextActor += 1
                alive[id] = controller.version
                send(.actorJoined(id))
            case ..<0.07 where !dead.isEmpty:
                let id = dead.remove(at: Int.random(in: 0 ..< dead.count, using: &rng))
                alive[id] = max(0, controller.version - 1)
                send(.actorJoined(id))
            case ..<0.10 where !actors.isEmpty:
                let id = actors.randomElement(using: &rng)!
                alive[id] = nil
                dead.append(id)
                if chance(0.5) { send(.actorLeft(id)) }  // else it dies silently; leases catch it
            case ..<0.36 where !actors.isEmpty:
                let id = actors.randomElement(using: &rng)!
                send(.ticketRequested(actor: id, weightsVersion: alive[id]!))
            case ..<0.42 where !actors.isEmpty:
                alive[actors.randomElement(using: &rng)!] = controller.version  // fetched latest weights
            case ..<0.70 where !held.isEmpty:
                deliver(at: Int.random(in: 0 ..< held.count, using: &rng))
            case ..<0.73 where !delivered.isEmpty:
                send(.groupArrived(delivered.randomElement(using: &rng)!))
            case ..<0.74:
                let id = actors.randomElement(using: &rng) ?? "ghost"
                send(.groupArrived(GroupArrival(actor: id, ticket: Int.random(in: -3 ... 10_000, using: &rng),
                                                promptID: Int.random(in: 0 ... 50, using: &rng), sampleVersions: [0])))
            case ..<0.82:
                now += Double.random(in: 0 ... 4, using: &rng)
                send(.leaseTick)
            case ..<0.97:
                trainAnnounced()
            case ..<0.98:
                snapshotRoundTrip()
            default:
                now += 0.5
            }
            if !failures.isEmpty { return }
        }
    }

    mutating func snapshotRoundTrip() {
        do {
            let data = try JSONEncoder().encode(controller.snapshot())
            let restored = try StalenessController(restoring: JSONDecoder().decode(StalenessState.self, from: data))
            check(restored.snapshot() == controller.snapshot(), "snapshot does not round-trip")
            controller = restored
        } catch { check(false, "snapshot round-trip threw \(error)") }
    }

    /// After the chaos, one well-behaved actor must be able to drive the learner forward: no
    /// deadlock of the budget, no prompt stuck. Then drain and check every prompt's final fate.
    mutating func finish() {
        // Heartbeats declare the silent ones dead too (otherwise their queued requests get tickets).
        for id in alive.keys.sorted() + dead {
            alive[id] = nil
            send(.actorLeft(id))
        }
        now += 1000
        send(.leaseTick)  // every zombie ticket of a silently dead actor expires
        held.removeAll()
        let worker = ActorID("finisher")
        alive[worker] = controller.version
        send(.actorJoined(worker))
        // Run until 3 more versions are trained, every lost prompt was re-issued and admitted, and
        // nothing is in flight: then every prompt ever drawn is trained exactly once, or waits in the
        // buffer for a batch that is not full yet (tickets of several prompts need not end on a
        // batch boundary).
        let target = controller.version + 3
        var guardSteps = 0
        func settled(_ sim: StalenessSimulation) -> Bool {
            let s = sim.controller.statistics
            return sim.controller.version >= target && s.pendingReissue == 0 && s.bufferedGroups < sim.b && s.inFlightGroups == 0
        }
        while !settled(self), failures.isEmpty, guardSteps < 20_000 {
            guardSteps += 1
            alive[worker] = controller.version
            if announced != nil {
                trainAnnounced()
            } else if !held.isEmpty {
                var g = held.removeFirst()
                g.arrival.sampleVersions = [controller.version]
                send(.groupArrived(g.arrival))
            } else {
                send(.ticketRequested(actor: worker, weightsVersion: controller.version))
            }
        }
        check(settled(self), "no progress: version \(controller.version), \(controller.statistics)")
        check(fate.values.allSatisfy { $0 == .trained || $0 == .buffered }, "a prompt drawn from the cursor was not trained exactly once")
        send(.drain)
        while !held.isEmpty, failures.isEmpty {  // in-flight groups are still admitted while draining
            var g = held.removeFirst()
            g.arrival.sampleVersions = [controller.version]
            send(.groupArrived(g.arrival))
        }
        check(drainedSeen, "drain with nothing in flight did not announce drained")
        check(controller.statistics.inFlightGroups == 0, "in flight after drain")
        check(fate.values.allSatisfy { if case .inFlight = $0 { return false } else { return true } }, "prompt in flight after drain")
    }
}

final class StalenessPropertyTests: XCTestCase {
    /// 4 η values × 150 seeds = 600 random event orders of 400 events each, invariants after every event.
    func testRandomEventOrdersKeepInvariants() throws {
        var totalAdmitted = 0, totalLostStale = 0, totalDuplicates = 0, totalExpired = 0, totalReissued = 0, orders = 0
        var fairShareChecks = 0
        for eta in [0, 1, 2, 4] {
            var maxLag = 0
            for seed in 0 ..< 150 {
                let b = 1 + seed % 4
                var sim = try StalenessSimulation(
                    seed: UInt64(seed * 7919 + eta), eta: eta, b: b, promptsPerTicket: 1 + seed % 3)
                sim.chaos(steps: 400)
                if sim.failures.isEmpty { sim.finish() }
                XCTAssert(sim.failures.isEmpty, "η=\(eta) seed=\(seed) B=\(b): \(sim.failures.joined(separator: "; "))")
                if !sim.failures.isEmpty { return }
                let s = sim.controller.statistics
                totalAdmitted += s.groupLagHistogram.reduce(0, +)
                totalLostStale += s.lost[.tooStale, default: 0]
                totalDuplicates += s.rejected[.duplicate, default: 0]
                totalExpired += s.lost[.leaseExpired, default: 0]
                totalReissued += s.reissuedGroups
                fairShareChecks += sim.fairShareChecks
                orders += 1
                maxLag = max(maxLag, sim.maxLagSeen)
            }
            // The simulation must actually exercise staleness, not just stay on-policy.
            if eta > 0 { XCTAssertGreaterThan(maxLag, 0, "η=\(eta): no lagged group was ever admitted") }
            XCTAssertLessThanOrEqual(maxLag, eta)
        }
        XCTAssertGreaterThan(fairShareChecks, 1000)
        print("staleness property: \(orders) event orders, \(fairShareChecks) grants within the fair share, groups admitted \(totalAdmitted), too_stale \(totalLostStale), duplicates \(totalDuplicates), lease_expired \(totalExpired), re-issued \(totalReissued)")
        // The random orders must reach the interesting paths, or the invariants prove little.
        XCTAssertGreaterThan(totalAdmitted, 10_000)
        XCTAssertGreaterThan(totalLostStale, 0)
        XCTAssertGreaterThan(totalDuplicates, 0)
        XCTAssertGreaterThan(totalExpired, 0)
    }
}

final class StalenessFairShareTests: XCTestCase {
    /// A hoarder asks for tickets as fast as it can and never returns a group; an honest actor
    /// returns every group at once. The hoarder never holds more than half of the room the budget
    /// leaves, the honest actor keeps training, and each lease expiry frees the hoarder's tickets.
    func testHoarderHoldsAtMostItsFairShareAndTheRunProgresses() throws {
        let b = 4, eta = 1
        var c = try StalenessController(policy: StalenessPolicy(maxStaleness: eta, groupsPerBatch: b, promptsPerTicket: 1, leaseSeconds: 5))
        let hoarder: ActorID = "hoarder", honest: ActorID = "honest"
        var now = 0.0
        _ = c.actorJoined(hoarder, now: now)
        _ = c.actorJoined(honest, now: now)
        var maxHeld = 0
        var honestTickets: [RolloutTicket] = []
        func absorb(_ ds: [StalenessDirective]) {
            for d in ds { if case .issueTicket(let t) = d, t.actor == honest { honestTickets.append(t) } }
        }
        for _ in 0 ..< 400 {
            now += 0.1
            for _ in 0 ..< 5 { absorb(c.ticketRequested(by: hoarder, weightsVersion: c.version, now: now)) }
            maxHeld = max(maxHeld, c.groupsHeld(by: hoarder))
            absorb(c.ticketRequested(by: honest, weightsVersion: c.version, now: now))
            while let t = honestTickets.first {
                honestTickets.removeFirst()
                for p in t.promptIDs {
                    let ds = c.groupArrived(GroupArrival(actor: honest, ticket: t.id, promptID: p, sampleVersions: [c.version]), now: now)
                    absorb(ds)
                    for d in ds { if case .batchReady(let v, _) = d { absorb(try c.batchTrained(version: v, now: now)) } }
                }
            }
            absorb(c.leaseTick(now: now))
        }
        // Room is at most (η + 1)·B = 8 groups: half of it is 4.
        XCTAssertEqual(maxHeld, (eta + 1) * b / 2, "the hoarder should reach, and never pass, half the room")
        XCTAssertGreaterThan(c.version, 40, "the honest actor must keep the learner training (40 s of simulated time)")
        XCTAssertGreaterThan(c.statistics.lost[.leaseExpired, default: 0], 0, "the hoarder's leases expired")
        XCTAssertTrue(c.statistics.accountingBalances)
    }

    /// Alone, an actor still gets the whole budget: the fair share is no cap on a single actor.
    func testSingleActorGetsTheWholeBudget() throws {
        var c = try StalenessController(policy: StalenessPolicy(maxStaleness: 2, groupsPerBatch: 3, promptsPerTicket: 2, leaseSeconds: 5))
        _ = c.actorJoined("solo", now: 0)
        var issued = 0
        for _ in 0 ..< 10 {
            for d in c.ticketRequested(by: "solo", weightsVersion: 0, now: 0) { if case .issueTicket(let t) = d { issued += t.promptIDs.count } }
        }
        XCTAssertEqual(issued, (2 + 1) * 3, "one actor holds the whole (η + 1)·B")
    }
}
