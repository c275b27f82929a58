import Foundation
import TetherCluster
import XCTest

final class ProgressLineAndLeaseTests: XCTestCase {
    func testProgressLineShowsEveryFigure() {
        typealias K = MetricsRecord.Key
        var record = MetricsRecord(step: 12, scalars: [
            K.version: 12, K.rewardMean: 0.41234, K.rewardStd: 0.1081, K.accuracy: 0.38,
            K.actorTokensPerSecond: 1234, K.learnerTokensPerSecond: 3_450_000, K.lagP50: 0, K.lagMax: 1,
        ])
        record.scalars[K.dropped(.tooStale)] = 2
        record.scalars[K.dropped(.leaseExpired)] = 1
        record.scalars[K.dropped(.duplicate)] = 0
        record.scalars[K.droppedTotal] = 3
        XCTAssertEqual(ProgressLine.format(record, totalSteps: 200),
                       "step 12/200  v12  reward 0.412±0.108  acc 38.0%  tok/s actor 1.2k learner 3.5M  lag p50 0 max 1  dropped 3 (too_stale 2, lease_expired 1)")
    }

    func testProgressLineMarksMissingAndNonFiniteFigures() {
        let record = MetricsRecord(step: 1, scalars: [MetricsRecord.Key.rewardMean: .nan, MetricsRecord.Key.actorTokensPerSecond: 950])
        XCTAssertEqual(ProgressLine.format(record, totalSteps: 5),
                       "step 1/5  v–  reward –  acc –  tok/s actor 950 learner –  lag p50 – max –  dropped 0")
    }

    func testProgressLineFromControllerStatistics() throws {
        var c = try StalenessController(policy: StalenessPolicy(maxStaleness: 1, groupsPerBatch: 1))
        _ = c.actorJoined("a", now: 0)
        _ = c.groupArrived(GroupArrival(actor: "a", ticket: 0, promptID: 0, sampleVersions: [0]), now: 0)
        var record = MetricsRecord(step: 0)
        record.addStaleness(c.statistics)
        XCTAssertTrue(ProgressLine.format(record, totalSteps: 1).hasSuffix("v0  reward –  acc –  tok/s actor – learner –  lag p50 – max –  dropped 1 (unknown_ticket 1)"),
                      ProgressLine.format(record, totalSteps: 1))
    }

    func testNextLeaseDeadlineTracksLiveTickets() throws {
        var c = try StalenessController(policy: StalenessPolicy(maxStaleness: 1, groupsPerBatch: 2, leaseSeconds: 30))
        _ = c.actorJoined("a", now: 0)
        XCTAssertNil(c.nextLeaseDeadline)
        _ = c.ticketRequested(by: "a", weightsVersion: 0, now: 5)
        _ = c.ticketRequested(by: "a", weightsVersion: 0, now: 7)
        XCTAssertEqual(c.nextLeaseDeadline, 35)
        _ = c.leaseTick(now: 35)
        XCTAssertEqual(c.nextLeaseDeadline, 37)
    }

    func testActorSideLeaseAbandonsWorkThatCannotFinishInTime() {
        let ticket = RolloutTicket(id: 0, actor: "a", promptIDs: [0, 1, 2, 3], minVersion: 0, leaseDeadline: 999, isReissue: false)
        let lease = TicketLease(ticket: ticket, receivedAt: 100, leaseSeconds: 60)
        XCTAssertEqual(lease.remaining(now: 130), 30)
        XCTAssertFalse(lease.shouldAbandon(now: 110, groupsDone: 0, groupsLeft: 4), "no rate known yet")
        XCTAssertFalse(lease.shouldAbandon(now: 120, groupsDone: 2, groupsLeft: 2), "10 s/group: done at 140 < 160")
        XCTAssertTrue(lease.shouldAbandon(now: 140, groupsDone: 1, groupsLeft: 3), "40 s/group: done at 260 > 160")
        XCTAssertTrue(lease.shouldAbandon(now: 160, groupsDone: 3, groupsLeft: 1))
        XCTAssertFalse(lease.shouldAbandon(now: 200, groupsDone: 4, groupsLeft: 0))
    }

    func testHeartbeatMonitorDeclaresSilentActorsDead() {
        var monitor = HeartbeatMonitor(timeoutSeconds: 10)
        monitor.heard(from: "a", now: 0)
        monitor.heard(from: "b", now: 5)
        XCTAssertEqual(monitor.nextExpiry, 10)
        XCTAssertEqual(monitor.expire(now: 9.9), [])
        monitor.heard(from: "a", now: 3)
        monitor.heard(from: "b", now: 1)  // a late-processed older heartbeat never moves last-seen back
        XCTAssertEqual(monitor.expire(now: 13), ["a"])
        XCTAssertEqual(monitor.expire(now: 14), [])
        XCTAssertEqual(monitor.expire(now: 15), ["b"])
        XCTAssertNil(monitor.nextExpiry)
    }
}
