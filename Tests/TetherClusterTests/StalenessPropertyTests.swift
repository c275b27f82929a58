import Foundation
import TetherCluster
import TetherKernels
import XCTest

/// Drives a controller with random actors joining, leaving, dying silently, stalling past the
/// heartbeat timeout, restarting under a new pid, arriving late, out of order and twice, behind a
/// start gate, with lease expiries and batches trained at random moments, and checks the
/// invariants (`StalenessLedger`) after every single step against an independent book of every
/// prompt's fate.
struct StalenessSimulation {
    struct HeldGroup { var arrival: GroupArrival }

    let eta: Int
    let b: Int
    var rng: SplitMix64
    var controller: StalenessController
    var ledger: StalenessLedger
    var now = 0.0
    var step = 0
    var nextActor = 0
    var alive: [ActorID: Int] = [:]  // actor → weights version it holds
    var dead: [ActorID] = []
    var pids: [ActorID: UInt32] = [:]
    var nextPid: UInt32 = 100
    var held: [HeldGroup] = []  // produced but not yet delivered (also by dead actors: zombies)
    var delivered: [GroupArrival] = []
    var maxLagSeen = 0
    var membershipCoverage: [String: Int] = [:]
    /// A reference, so `check` need not be `mutating` (its message autoclosure reads `self`).
    final class FailureLog { var items: [String] = [] }
    let log = FailureLog()
    var failures: [String] { log.items }

    init(seed: UInt64, eta: Int, b: Int, promptsPerTicket: Int, mode: StalenessMode = .bound) throws {
        self.eta = eta
        self.b = b
        rng = SplitMix64(seed: seed)
        let membership = MembershipPolicy(expectedActors: Int(seed % 3), startupGraceSeconds: 5, heartbeatTimeoutSeconds: 6)
        let policy = StalenessPolicy(maxStaleness: eta, mode: mode, groupsPerBatch: b, promptsPerTicket: promptsPerTicket, leaseSeconds: 10,
                                     membership: membership)
        controller = try StalenessController(policy: policy)
        ledger = StalenessLedger(policy: policy)
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition, log.items.count < 5 { log.items.append("step \(step): \(message())") }
    }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0 ..< 1, using: &rng) < p }

    mutating func send(_ event: StalenessEvent) {
        let directives: [StalenessDirective]
        do { directives = try controller.handle(event, now: now) } catch {
            check(false, "unexpected error \(error) for \(event)")
            return
        }
        for broken in ledger.record(event, directives: directives, controller: controller, now: now) { check(false, broken) }
        for d in directives { act(on: d) }
        for broken in ledger.violations(of: controller) { check(false, broken) }
        step += 1
    }

    /// What the simulated actors do with a directive: sample the prompts of a ticket.
    mutating func act(on d: StalenessDirective) {
        let v = controller.version
        switch d {
        case .issueTicket(let t):
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
            maxLagSeen = max(maxLagSeen, g.lag)
        case .memberJoined: membershipCoverage["joined", default: 0] += 1
        case .memberRestarted: membershipCoverage["restarted", default: 0] += 1
        case .memberLeft: membershipCoverage["left", default: 0] += 1
        case .memberDead: membershipCoverage["dead", default: 0] += 1
        case .waitForStartGate: membershipCoverage["wait for start gate", default: 0] += 1
        case .startGateOpened(let live):
            membershipCoverage[live >= controller.policy.membership.expectedActors ? "gate opened by joins" : "gate opened by grace", default: 0] += 1
        default:
            break
        }
    }

    mutating func trainAnnounced() {
        guard ledger.announced != nil else { return }
        send(.batchTrained(version: controller.version))
    }

    mutating func deliver(at index: Int) {
        let group = held.remove(at: index)
        guard alive[group.arrival.actor] != nil || chance(0.3) else { return }  // zombies rarely speak
        delivered.append(group.arrival)
        send(.groupArrived(group.arrival))
    }

    /// A new process for `id` (a new pid) sends its `ActorJoin`.
    mutating func startProcess(_ id: ActorID, weights: Int) {
        alive[id] = weights
        nextPid += 1
        pids[id] = nextPid
        send(.actorJoined(id, pid: nextPid))
    }

    mutating func chaos(steps: Int) {
        for _ in 0 ..< steps {
            let roll = Double.random(in: 0 ..< 1, using: &rng)
            let actors = alive.keys.sorted()
            switch roll {
            case ..<0.05 where alive.count < 6:
                let id = ActorID("a\(nextActor)")
                nextActor += 1
                startProcess(id, weights: controller.version)
            case ..<0.07 where !dead.isEmpty:
                // A restart: the learner may not have noticed the old process die.
                let id = dead.remove(at: Int.random(in: 0 ..< dead.count, using: &rng))
                startProcess(id, weights: max(0, controller.version - 1))
            case ..<0.10 where !actors.isEmpty:
                let id = actors.randomElement(using: &rng)!
                alive[id] = nil
                dead.append(id)
                if chance(0.5) { send(.actorLeft(id)) }  // else it dies silently; the heartbeat timeout catches it
            case ..<0.13 where !actors.isEmpty:
                send(.actorHeard(actors.randomElement(using: &rng)!))  // a heartbeat
            case ..<0.36 where !actors.isEmpty:
                let id = actors.randomElement(using: &rng)!
                send(.actorHeard(id))  // join on contact if it was declared dead while stalled
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
                send(.tick)
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
        for id in alive.keys.sorted() + dead {
            alive[id] = nil
            send(.actorLeft(id))
        }
        send(.tick)
        now += 1000
        send(.tick)  // every zombie ticket expires, the start gate's grace is over
        held.removeAll()
        let worker = ActorID("finisher")
        startProcess(worker, weights: controller.version)
        // Run until 3 more versions are trained, every lost prompt was re-issued and admitted, and
        // nothing is in flight: then `endOfRunViolation` holds (every prompt trained exactly once or
        // buffered for a batch that is not full yet).
        let target = controller.version + 3
        var guardSteps = 0
        func settled(_ sim: StalenessSimulation) -> Bool {
            let s = sim.controller.statistics
            return sim.controller.version >= target && s.pendingReissue == 0 && s.bufferedGroups < sim.ledger.settledBufferLimit && s.inFlightGroups == 0
        }
        while !settled(self), failures.isEmpty, guardSteps < 20_000 {
            guardSteps += 1
            alive[worker] = controller.version
            if ledger.announced != nil {
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
        if let broken = ledger.endOfRunViolation() { check(false, broken) }
        send(.drain)
        while !held.isEmpty, failures.isEmpty {  // in-flight groups are still admitted while draining
            var g = held.removeFirst()
            g.arrival.sampleVersions = [controller.version]
            send(.groupArrived(g.arrival))
        }
        check(ledger.drainedSeen, "drain with nothing in flight did not announce drained")
        check(controller.statistics.inFlightGroups == 0, "in flight after drain")
        check(ledger.fate.values.allSatisfy { if case .inFlight = $0 { return false } else { return true } }, "prompt in flight after drain")
    }
}

final class StalenessPropertyTests: XCTestCase {
    /// 4 η values × 150 seeds = 600 random event orders of 400 events each, invariants after every event.
    func testRandomEventOrdersKeepInvariants() throws {
        var totalAdmitted = 0, totalLostStale = 0, totalDuplicates = 0, totalExpired = 0, totalReissued = 0, orders = 0
        var fairShareChecks = 0, grantsAtFairShare = 0
        var membership: [String: Int] = [:]
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
                fairShareChecks += sim.ledger.tally.fairShareChecks
                grantsAtFairShare += sim.ledger.tally.grantsAtFairShare
                for (k, n) in sim.membershipCoverage { membership[k, default: 0] += n }
                orders += 1
                maxLag = max(maxLag, sim.maxLagSeen)
            }
            // The simulation must actually exercise staleness, not just stay on-policy.
            if eta > 0 { XCTAssertGreaterThan(maxLag, 0, "η=\(eta): no lagged group was ever admitted") }
            XCTAssertLessThanOrEqual(maxLag, eta)
        }
        XCTAssertGreaterThan(fairShareChecks, 1000)
        XCTAssertGreaterThan(grantsAtFairShare, 0, "no grant was ever held to a fair share tighter than the budget")
        print("staleness property: \(orders) event orders, \(fairShareChecks) grants within the fair share (\(grantsAtFairShare) at a share tighter than the budget), groups admitted \(totalAdmitted), too_stale \(totalLostStale), duplicates \(totalDuplicates), lease_expired \(totalExpired), re-issued \(totalReissued)")
        // The random orders must reach the interesting paths, or the invariants prove little.
        XCTAssertGreaterThan(totalAdmitted, 10_000)
        XCTAssertGreaterThan(totalLostStale, 0)
        XCTAssertGreaterThan(totalDuplicates, 0)
        XCTAssertGreaterThan(totalExpired, 0)
        print("staleness property, membership: \(membership.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        for path in ["joined", "restarted", "left", "dead", "gate opened by joins", "gate opened by grace", "wait for start gate"] {
            XCTAssertGreaterThan(membership[path, default: 0], 0, "no event order reached '\(path)'")
        }
    }
}

final class StalenessExactModeTests: XCTestCase {
    /// Exact mode under the same chaos as bound mode: the ledger checks after every event that every
    /// trained sample's lag is exactly min(k, version) (k = η), that a batch waits for the groups of
    /// its version, and (`finish`) that every prompt drawn is trained or buffered: nothing lost.
    func testRandomEventOrdersTrainEverySampleAtLagExactlyK() throws {
        var trainedAtK = 0, warmupSamples = 0, lostStale = 0
        for eta in [0, 1, 2, 4] {
            for seed in 0 ..< 100 {
                let b = 1 + seed % 4
                var sim = try StalenessSimulation(seed: UInt64(seed * 104_729 + eta), eta: eta, b: b, promptsPerTicket: 1 + seed % 3, mode: .exact)
                sim.chaos(steps: 400)
                if sim.failures.isEmpty { sim.finish() }
                XCTAssert(sim.failures.isEmpty, "exact η=\(eta) seed=\(seed) B=\(b): \(sim.failures.joined(separator: "; "))")
                if !sim.failures.isEmpty { return }
                let s = sim.controller.statistics
                XCTAssertGreaterThanOrEqual(s.version, 3)
                XCTAssertTrue(s.accountingBalances)
                trainedAtK += s.sampleLagHistogram[eta]
                warmupSamples += s.sampleLagHistogram.dropLast().reduce(0, +)
                lostStale += s.lost[.tooStale, default: 0]
            }
        }
        print("staleness exact mode: 400 event orders, samples admitted at lag k \(trainedAtK), in warm-up \(warmupSamples), lost as not sampled by the current version \(lostStale)")
        XCTAssertGreaterThan(trainedAtK, 10_000)
        XCTAssertGreaterThan(lostStale, 0, "no arrival sampled by another version was ever refused")
    }

    /// One prompt-perfect actor, k = 2, B = 2: version 0 hands out (k + 1)·B = 6 prompts, no batch is
    /// announced before all 6 are in, then each version hands out B and the lags of the trained
    /// batches are 0, 1, 2, 2, 2, … (warm-up: batches 0 and 1 come from version 0).
    func testWarmUpThenLagK() throws {
        let k = 2, b = 2
        var c = try StalenessController(policy: StalenessPolicy(maxStaleness: k, mode: .exact, groupsPerBatch: b, promptsPerTicket: 1))
        _ = c.actorJoined("solo", pid: 1, now: 0)
        var tickets: [TicketGrant] = []
        func request() { for d in c.ticketRequested(by: "solo", weightsVersion: c.version, now: 0) { if case .issueTicket(let t) = d { tickets.append(t) } } }
        for _ in 0 ..< 10 { request() }
        XCTAssertEqual(tickets.flatMap(\.promptIDs), Array(0 ..< (k + 1) * b), "version 0 hands out (k + 1)·B prompts")
        XCTAssertTrue(tickets.allSatisfy { $0.minVersion == 0 })
        var trainedLags: [[Int]] = []
        for v in 0 ..< 8 {
            var announced: [AdmittedGroup]?
            for (i, t) in tickets.enumerated() {
                for d in c.groupArrived(GroupArrival(actor: "solo", ticket: t.id, promptID: t.promptIDs[0], sampleVersions: [v, v]), now: 0) {
                    if case .batchReady(_, let groups) = d { announced = groups }
                }
                if i < tickets.count - 1 { XCTAssertNil(announced, "version \(v): batch announced before the version's groups were all in") }
            }
            let batch = try XCTUnwrap(announced, "version \(v): no batch")
            trainedLags.append(batch.flatMap(\.sampleLags))
            tickets = []
            // Requests queued while the budget was full are answered as the version moves on.
            for d in try c.batchTrained(version: v, now: 0) { if case .issueTicket(let t) = d { tickets.append(t) } }
            for _ in 0 ..< 10 { request() }
            XCTAssertEqual(tickets.count, b, "version \(v + 1) hands out B prompts")
            XCTAssertTrue(tickets.allSatisfy { $0.minVersion == v + 1 })
        }
        XCTAssertEqual(trainedLags, [0, 1, 2, 2, 2, 2, 2, 2].map { [Int](repeating: $0, count: 2 * b) })
        XCTAssertEqual(c.statistics.bufferedGroups, k * b, "the k·B fresher groups wait for their turn")
        // An arrival sampled by an older version is refused and its prompt re-issued, never trained.
        let t = try XCTUnwrap(tickets.first)
        let ds = c.groupArrived(GroupArrival(actor: "solo", ticket: t.id, promptID: t.promptIDs[0], sampleVersions: [c.version - 1, c.version]), now: 0)
        XCTAssertTrue(ds.contains { if case .dropGroup(_, .tooStale) = $0 { return true } else { return false } })
        XCTAssertTrue(ds.contains(.reissuePrompts(lostTicket: t.id, promptIDs: t.promptIDs, reason: .tooStale)), "\(ds)")
        XCTAssertEqual(c.statistics.lost[.tooStale], 1)
        XCTAssertTrue(c.statistics.accountingBalances)
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
        _ = c.actorJoined(hoarder, pid: 1, now: now)
        _ = c.actorJoined(honest, pid: 2, now: now)
        var maxHeld = 0
        var honestTickets: [TicketGrant] = []
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
            absorb(c.tick(now: now))
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
        _ = c.actorJoined("solo", pid: 1, now: 0)
        var issued = 0
        for _ in 0 ..< 10 {
            for d in c.ticketRequested(by: "solo", weightsVersion: 0, now: 0) { if case .issueTicket(let t) = d { issued += t.promptIDs.count } }
        }
        XCTAssertEqual(issued, (2 + 1) * 3, "one actor holds the whole (η + 1)·B")
    }
}
