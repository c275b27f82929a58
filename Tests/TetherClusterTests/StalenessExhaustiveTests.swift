import Foundation
import TetherCluster
import XCTest

/// Every interleaving, not a sample: for small η and B, two actors and a few prompts, the search
/// visits every state the real `StalenessController` reaches within `depth` moves of the world in
/// `ExplorationWorld` (requests, joins, deliveries in any order, duplicates, losses, lease expiry,
/// actors leaving, falling silent past the heartbeat timeout and restarting under a new pid, the
/// start gate, training, checkpoints, learner restart from a checkpoint, drain) and
/// checks the `StalenessLedger` laws on each. `TETHER_EXHAUSTIVE_DEPTH=N` searches every case to
/// depth N by hand: 8 visits 6·10⁶ states in about 6 minutes and 8 GB (the frontier holds whole worlds).
final class StalenessExhaustiveTests: XCTestCase {
    struct Case { var eta: Int; var b: Int; var promptsPerTicket: Int; var depth: Int; var expectedActors = 0; var mode = StalenessMode.bound }

    /// Depths chosen so the whole test takes about 40 s in a release build on a loaded 2-core
    /// machine (each level multiplies the states by 3-5); the larger machines get the shallower search.
    static let cases: [Case] = [
        Case(eta: 0, b: 1, promptsPerTicket: 1, depth: 8, expectedActors: 2),
        Case(eta: 1, b: 1, promptsPerTicket: 1, depth: 7),
        Case(eta: 1, b: 2, promptsPerTicket: 1, depth: 6),
        Case(eta: 2, b: 1, promptsPerTicket: 1, depth: 7, expectedActors: 2),
        Case(eta: 2, b: 2, promptsPerTicket: 2, depth: 6),
        Case(eta: 1, b: 1, promptsPerTicket: 1, depth: 6, mode: .exact),
        Case(eta: 2, b: 1, promptsPerTicket: 1, depth: 6, mode: .exact),
    ]

    func testEveryInterleavingKeepsTheInvariants() throws {
        let override = ProcessInfo.processInfo.environment["TETHER_EXHAUSTIVE_DEPTH"].flatMap { Int($0) }
        var coverage: [String: Int] = [:]
        var totalStates = 0
        var totalSeconds = 0.0
        for c in Self.cases {
            let depth = override ?? c.depth
            // Leases last 2 ticks, silence past 1.5 ticks is death, the gate's grace is 1.5 ticks.
            let membership = MembershipPolicy(expectedActors: c.expectedActors, startupGraceSeconds: 1.5, heartbeatTimeoutSeconds: 1.5)
            let policy = StalenessPolicy(maxStaleness: c.eta, mode: c.mode, groupsPerBatch: c.b, promptsPerTicket: c.promptsPerTicket,
                                         leaseSeconds: 2, membership: membership)
            let report = try StalenessExploration(policy: policy, depth: depth).run()
            print(String(format: "exhaustive staleness %@ η=%d B=%d prompts/ticket=%d, 2 actors: %d states, %d transitions, depth %d, %d liveness checks, %.2f s",
                         c.mode.rawValue, c.eta, c.b, c.promptsPerTicket, report.states, report.transitions, report.depthReached, report.livenessChecks, report.seconds))
            if let counterexample = report.counterexample {
                XCTFail("η=\(c.eta) B=\(c.b) prompts/ticket=\(c.promptsPerTicket): \(counterexample)")
                return
            }
            XCTAssertEqual(report.depthReached, depth, "the search ran out of states before depth \(depth)")
            coverage.merge(report.coverage, uniquingKeysWith: +)
            totalStates += report.states
            totalSeconds += report.seconds
        }
        print(String(format: "exhaustive staleness: %d states in %.2f s; coverage: %@", totalStates, totalSeconds,
                     coverage.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
        // The search must reach the paths that matter, or visiting every state proves little.
        for path in ["admitted with lag > 0", "dropped: too_stale", "dropped: duplicate", "dropped: expired_ticket",
                     "dropped: unknown_actor", "dropped: future_version", "re-queued: lease_expired", "re-queued: actor_left",
                     "re-queued: learner_restart", "reissued ticket", "wait for budget", "wait for weights", "batch ready",
                     "refused: draining", "drained", "grant at the fair share", "wait for start gate", "start gate opened",
                     "member joined", "member restarted", "member left", "member dead"] {
            XCTAssertGreaterThan(coverage[path, default: 0], 0, "no transition reached '\(path)'")
        }
    }
}
