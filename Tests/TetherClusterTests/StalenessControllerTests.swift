import Foundation
import TetherCluster
import XCTest

/// One test per directive and per drop reason, on hand-built event orders.
final class StalenessControllerTests: XCTestCase {
    let a: ActorID = "a"
    let b: ActorID = "b"

    func makeController(eta: Int, batch: Int, perTicket: Int = 1, lease: Double = 10) throws -> StalenessController {
        var c = try StalenessController(policy: StalenessPolicy(
            maxStaleness: eta, groupsPerBatch: batch, promptsPerTicket: perTicket, leaseSeconds: lease))
        _ = c.actorJoined(a, pid: 1, now: 0)
        _ = c.actorJoined(b, pid: 2, now: 0)
        return c
    }

    func ticket(_ ds: [StalenessDirective], file: StaticString = #filePath, line: UInt = #line) throws -> TicketGrant {
        for d in ds { if case .issueTicket(let t) = d { return t } }
        XCTFail("no ticket in \(ds)", file: file, line: line)
        throw XCTSkip("no ticket")
    }

    func arrival(_ t: TicketGrant, _ prompt: Int? = nil, versions: [Int]) -> GroupArrival {
        GroupArrival(actor: t.actor, ticket: t.id, promptID: prompt ?? t.promptIDs[0], sampleVersions: versions)
    }

    func testIssueTicketTakesPromptsFromCursorAndSetsLease() throws {
        var c = try makeController(eta: 1, batch: 4, perTicket: 2, lease: 30)
        let t1 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 5))
        let t2 = try ticket(c.ticketRequested(by: b, weightsVersion: 0, now: 6))
        XCTAssertEqual(t1.promptIDs, [0, 1])
        XCTAssertEqual(t2.promptIDs, [2, 3])
        XCTAssertEqual(t1.leaseDeadline, 35)
        XCTAssertEqual([t1.id, t2.id], [0, 1])
        XCTAssertFalse(t1.isReissue)
        XCTAssertEqual(c.statistics.cursor, 4)
        XCTAssertEqual(c.statistics.inFlightGroups, 4)
    }

    func testBudgetIsVPlusEtaPlusOneBatchesAndWaitersAreServedAfterTraining() throws {
        var c = try makeController(eta: 1, batch: 2)
        var tickets: [TicketGrant] = []
        // Each of the two actors may hold ⌈4 / 2⌉ = 2 groups (fair share): they alternate.
        for i in 0 ..< 4 { tickets.append(try ticket(c.ticketRequested(by: i % 2 == 0 ? a : b, weightsVersion: 0, now: 0))) }
        // (v + η + 1)·B = 4 groups live: the fifth request waits.
        XCTAssertEqual(c.ticketRequested(by: b, weightsVersion: 0, now: 0), [.waitForBudget(actor: b)])
        // The first two tickets are trained at version 0 (minVersion 0), the next two at version 1.
        XCTAssertEqual(tickets.map(\.minVersion), [0, 0, 0, 0])
        var out = c.groupArrived(arrival(tickets[0], versions: [0]), now: 1)
        out += c.groupArrived(arrival(tickets[1], versions: [0]), now: 1)
        guard case .batchReady(0, let groups) = out.last else { return XCTFail("no batch in \(out)") }
        XCTAssertEqual(groups.map(\.promptID), [0, 1])
        // Budget grows to 6 and the queued request of b is answered without asking again: its group
        // would be trained at version ⌊(2 + 2 + 1 − 1)/2⌋ = 2, so lag ≤ 1 needs weights ≥ 1.
        XCTAssertEqual(try c.batchTrained(version: 0, now: 2), [.waitForWeights(actor: b, minVersion: 1)])
        let granted = try ticket(c.ticketRequested(by: b, weightsVersion: 1, now: 3))
        XCTAssertEqual(granted.promptIDs, [4])
        XCTAssertEqual(granted.minVersion, 1)
    }

    func testWaitForWeightsWhenActorHoldsTooOldVersion() throws {
        var c = try makeController(eta: 0, batch: 1)
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        _ = c.groupArrived(arrival(t, versions: [0]), now: 0)
        _ = try c.batchTrained(version: 0, now: 0)
        XCTAssertEqual(c.ticketRequested(by: b, weightsVersion: 0, now: 0), [.waitForWeights(actor: b, minVersion: 1)])
        XCTAssertEqual(c.statistics.cursor, 1, "a refused request must not advance the cursor")
        let t2 = try ticket(c.ticketRequested(by: b, weightsVersion: 1, now: 0))
        XCTAssertEqual(t2.minVersion, 1, "η = 0: sample from the version about to be trained")
    }

    func testSynchronousEtaZeroAllowsOnlyOneBatchInFlight() throws {
        var c = try makeController(eta: 0, batch: 3, perTicket: 2)
        let t1 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        let t2 = try ticket(c.ticketRequested(by: b, weightsVersion: 0, now: 0))
        XCTAssertEqual(t1.promptIDs.count + t2.promptIDs.count, 3, "the last ticket shrinks to the remaining budget")
        XCTAssertEqual(c.ticketRequested(by: a, weightsVersion: 0, now: 0), [.waitForBudget(actor: a)])
    }

    func testRefusesUnknownActorAndAfterDrain() throws {
        var c = try makeController(eta: 1, batch: 2)
        XCTAssertEqual(c.ticketRequested(by: "stranger", weightsVersion: 0, now: 0),
                       [.refuseTicket(actor: "stranger", reason: .unknownActor)])
        XCTAssertEqual(c.drain(), [.drained])
        XCTAssertEqual(c.ticketRequested(by: a, weightsVersion: 0, now: 0), [.refuseTicket(actor: a, reason: .draining)])
    }

    func testAdmitRecordsLagOfOldestSampleAndPerSampleLags() throws {
        var c = try makeController(eta: 2, batch: 1)
        let t0 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        let t1 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        _ = c.groupArrived(arrival(t0, versions: [0]), now: 0)
        _ = try c.batchTrained(version: 0, now: 0)
        let out = c.groupArrived(arrival(t1, versions: [1, 0, 1]), now: 0)
        guard case .admitGroup(let g) = out.first else { return XCTFail("\(out)") }
        XCTAssertEqual(g.trainVersion, 1)
        XCTAssertEqual(g.lag, 1, "a sample spanning versions counts from its oldest token")
        XCTAssertEqual(g.sampleLags, [0, 1, 0])
        XCTAssertEqual(c.statistics.sampleLagHistogram, [3, 1, 0])
        XCTAssertEqual(c.statistics.groupLagHistogram, [1, 1, 0])
    }

    func testTooStaleGroupIsDroppedAndItsPromptReissuedWithoutAdvancingCursor() throws {
        var c = try makeController(eta: 1, batch: 1)
        let slow = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        let fast = try ticket(c.ticketRequested(by: b, weightsVersion: 0, now: 0))
        _ = c.groupArrived(arrival(fast, versions: [0]), now: 0)
        _ = try c.batchTrained(version: 0, now: 0)
        // Another group overtakes the slow one and is trained too: v = 2, the slow group's slot
        // would be trained at version 2, lag 2 > η.
        let t3 = try ticket(c.ticketRequested(by: b, weightsVersion: 1, now: 0))
        _ = c.groupArrived(arrival(t3, versions: [1]), now: 0)
        _ = try c.batchTrained(version: 1, now: 0)
        let out = c.groupArrived(arrival(slow, versions: [0]), now: 0)
        XCTAssertEqual(out.prefix(2), [
            .dropGroup(arrival(slow, versions: [0]), reason: .tooStale),
            .reissuePrompts(lostTicket: slow.id, promptIDs: slow.promptIDs, reason: .tooStale),
        ])
        let cursor = c.statistics.cursor
        let again = try ticket(c.ticketRequested(by: a, weightsVersion: 2, now: 0))
        XCTAssertTrue(again.isReissue)
        XCTAssertEqual(again.promptIDs, slow.promptIDs)
        XCTAssertEqual(c.statistics.cursor, cursor)
        XCTAssertEqual(c.statistics.lost[.tooStale], 1)
        XCTAssertTrue(c.statistics.accountingBalances)
    }

    func testRejectsUnknownTicketPromptAndActor() throws {
        var c = try makeController(eta: 1, batch: 2)
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        let bogus = GroupArrival(actor: a, ticket: 99, promptID: 0, sampleVersions: [0])
        XCTAssertEqual(c.groupArrived(bogus, now: 0), [.dropGroup(bogus, reason: .unknownTicket)])
        let wrongPrompt = arrival(t, 7, versions: [0])
        XCTAssertEqual(c.groupArrived(wrongPrompt, now: 0), [.dropGroup(wrongPrompt, reason: .unknownTicket)])
        let wrongActor = GroupArrival(actor: b, ticket: t.id, promptID: t.promptIDs[0], sampleVersions: [0])
        XCTAssertEqual(c.groupArrived(wrongActor, now: 0), [.dropGroup(wrongActor, reason: .unknownTicket)])
        let stranger = GroupArrival(actor: "stranger", ticket: t.id, promptID: t.promptIDs[0], sampleVersions: [0])
        XCTAssertEqual(c.groupArrived(stranger, now: 0), [.dropGroup(stranger, reason: .unknownActor)])
        XCTAssertEqual(c.statistics.inFlightGroups, 1, "rejections leave the live group alone")
        XCTAssertEqual(c.statistics.rejected[.unknownTicket], 3)
    }

    func testDuplicateArrivalIsDroppedAndTrainedOnce() throws {
        var c = try makeController(eta: 1, batch: 2)
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        let g = arrival(t, versions: [0])
        guard case .admitGroup = c.groupArrived(g, now: 0).first else { return XCTFail() }
        XCTAssertEqual(c.groupArrived(g, now: 0), [.dropGroup(g, reason: .duplicate)])
        XCTAssertEqual(c.statistics.bufferedGroups, 1)
    }

    func testLeaseExpiryReissuesAndLateGroupIsExpiredThenDuplicate() throws {
        var c = try makeController(eta: 1, batch: 1, lease: 10)
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        XCTAssertEqual(c.tick(now: 9.9), [])
        XCTAssertEqual(c.tick(now: 10), [.reissuePrompts(lostTicket: t.id, promptIDs: t.promptIDs, reason: .leaseExpired)])
        let late = arrival(t, versions: [0])
        XCTAssertEqual(c.groupArrived(late, now: 11), [.dropGroup(late, reason: .expiredTicket)])
        let re = try ticket(c.ticketRequested(by: b, weightsVersion: 0, now: 12))
        XCTAssertEqual(re.promptIDs, t.promptIDs)
        XCTAssertTrue(re.isReissue)
        // Once re-issued, the late original is a duplicate: exactly one of the two is trained.
        XCTAssertEqual(c.groupArrived(late, now: 13), [.dropGroup(late, reason: .duplicate)])
        let out = c.groupArrived(arrival(re, versions: [0]), now: 14)
        XCTAssertEqual(out.count, 2)
        guard case .batchReady(0, let groups) = out.last else { return XCTFail("\(out)") }
        XCTAssertEqual(groups.map(\.ticket), [re.id])
        XCTAssertTrue(c.statistics.accountingBalances)
    }

    func testActorLeftReissuesItsTicketsOnly() throws {
        var c = try makeController(eta: 2, batch: 4, perTicket: 2)
        let ta = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        _ = try ticket(c.ticketRequested(by: b, weightsVersion: 0, now: 0))
        _ = c.groupArrived(arrival(ta, ta.promptIDs[0], versions: [0]), now: 0)
        XCTAssertEqual(c.actorLeft(a, now: 1), [.memberLeft(a), .reissuePrompts(lostTicket: ta.id, promptIDs: [ta.promptIDs[1]], reason: .actorLeft)])
        XCTAssertEqual(c.statistics.inFlightGroups, 2)
        let late = arrival(ta, ta.promptIDs[1], versions: [0])
        XCTAssertEqual(c.groupArrived(late, now: 2), [.dropGroup(late, reason: .unknownActor)])
    }

    func testJoinUnderANewPidIsARestartAndLosesWhatTheActorHeld() throws {
        var c = try makeController(eta: 2, batch: 4)
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        XCTAssertEqual(c.actorJoined(a, pid: 1, now: 1), [], "the same process joining again keeps its tickets")
        XCTAssertEqual(c.actorJoined(a, pid: 7, now: 1),
                       [.memberRestarted(a, previousPid: 1, pid: 7), .reissuePrompts(lostTicket: t.id, promptIDs: t.promptIDs, reason: .actorLeft)])
        XCTAssertEqual(c.actorJoined(a, pid: 7, now: 2), [], "a second join of the new process changes nothing")
        XCTAssertEqual(c.statistics.pendingReissue, 1)
        XCTAssertEqual(c.groupsHeld(by: a), 0)
    }

    func testSilentActorIsDeclaredDeadAndComesBackOnlyBySpeaking() throws {
        var c = try StalenessController(policy: StalenessPolicy(
            maxStaleness: 1, groupsPerBatch: 2, membership: MembershipPolicy(heartbeatTimeoutSeconds: 5)))
        _ = c.actorJoined(a, pid: 1, now: 0)
        _ = c.actorJoined(b, pid: 2, now: 0)
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        XCTAssertEqual(c.actorHeard(b, now: 4), [])
        XCTAssertEqual(c.tick(now: 5), [], "silent for exactly the timeout is still alive")
        XCTAssertEqual(c.tick(now: 6), [.memberDead(a, silentSeconds: 6),
                                        .reissuePrompts(lostTicket: t.id, promptIDs: t.promptIDs, reason: .actorLeft)])
        XCTAssertEqual(c.ticketRequested(by: a, weightsVersion: 0, now: 7), [.refuseTicket(actor: a, reason: .unknownActor)])
        let late = arrival(t, versions: [0])
        XCTAssertEqual(c.groupArrived(late, now: 7), [.dropGroup(late, reason: .unknownActor)], "a late group does not revive it")
        XCTAssertEqual(c.actorHeard(a, now: 8), [.memberJoined(a)])
        let again = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 8))
        XCTAssertEqual(again.promptIDs, t.promptIDs)
        XCTAssertTrue(again.isReissue)
    }

    func testStartGateHoldsRequestsUntilTheExpectedActorsJoinOrTheGraceRunsOut() throws {
        let policy = StalenessPolicy(maxStaleness: 1, groupsPerBatch: 2,
                                     membership: MembershipPolicy(expectedActors: 2, startupGraceSeconds: 30))
        var c = try StalenessController(policy: policy)
        XCTAssertEqual(c.tick(now: 0), [])
        XCTAssertEqual(c.actorJoined(a, pid: 1, now: 1), [.memberJoined(a)])
        XCTAssertEqual(c.ticketRequested(by: a, weightsVersion: 0, now: 1), [.waitForStartGate(actor: a)])
        let opened = c.actorJoined(b, pid: 2, now: 2)
        XCTAssertEqual(Array(opened.prefix(2)), [.memberJoined(b), .startGateOpened(liveActors: 2)])
        XCTAssertEqual(try ticket(opened).actor, a, "the request queued behind the gate is answered when it opens")

        var alone = try StalenessController(policy: policy)
        _ = alone.tick(now: 0)
        _ = alone.actorJoined(a, pid: 1, now: 0)
        XCTAssertEqual(alone.ticketRequested(by: a, weightsVersion: 0, now: 1), [.waitForStartGate(actor: a)])
        XCTAssertEqual(alone.tick(now: 30), [])
        let graceOver = alone.tick(now: 31)
        XCTAssertEqual(graceOver.first, .startGateOpened(liveActors: 1))
        XCTAssertEqual(try ticket(graceOver).actor, a)
        // A learner restart closes the gate again: the actors must rejoin.
        _ = try alone.resumeAfterRestart()
        XCTAssertFalse(alone.state.membership.gateOpen)
    }

    func testFutureVersionAndMalformedGroupsAreLost() throws {
        var c = try makeController(eta: 1, batch: 4)
        let t0 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        let t1 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        XCTAssertEqual(c.groupArrived(arrival(t0, versions: [0, 3]), now: 0).first, .dropGroup(arrival(t0, versions: [0, 3]), reason: .futureVersion))
        XCTAssertEqual(c.groupArrived(arrival(t1, versions: []), now: 0).first, .dropGroup(arrival(t1, versions: []), reason: .malformed))
        XCTAssertEqual(c.statistics.pendingReissue, 2)
    }

    func testBatchTrainedOutOfOrderIsATypedError() throws {
        var c = try makeController(eta: 1, batch: 1)
        XCTAssertThrowsError(try c.batchTrained(version: 0, now: 0)) { error in
            XCTAssertEqual(error as? StalenessError, .unexpectedBatchTrained(expectedVersion: 0, got: 0, batchAnnounced: false))
        }
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        _ = c.groupArrived(arrival(t, versions: [0]), now: 0)
        XCTAssertThrowsError(try c.batchTrained(version: 1, now: 0))
        XCTAssertNoThrow(try c.batchTrained(version: 0, now: 0))
        XCTAssertEqual(c.version, 1)
    }

    func testDrainWaitsForGroupsInFlight() throws {
        var c = try makeController(eta: 1, batch: 2)
        let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        XCTAssertEqual(c.drain(), [])
        let out = c.groupArrived(arrival(t, versions: [0]), now: 0)
        XCTAssertEqual(out.last, .drained)
        guard case .admitGroup = out.first else { return XCTFail("a group in flight is still admitted while draining") }
    }

    func testSnapshotRestoresAndResumeAfterRestartRequeuesWhatWasInMemory() throws {
        var c = try makeController(eta: 1, batch: 2)
        let t0 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        _ = try ticket(c.ticketRequested(by: b, weightsVersion: 0, now: 0))
        _ = c.groupArrived(arrival(t0, versions: [0]), now: 0)
        let data = try JSONEncoder().encode(c.snapshot())
        var restored = try StalenessController(restoring: JSONDecoder().decode(StalenessState.self, from: data))
        XCTAssertEqual(restored.snapshot(), c.snapshot())
        let out = try restored.resumeAfterRestart()
        XCTAssertEqual(Set(out.compactMap { if case .reissuePrompts(_, let p, .learnerRestart) = $0 { return p[0] } else { return nil } }), [0, 1])
        let s = restored.statistics
        XCTAssertEqual([s.inFlightGroups, s.bufferedGroups, s.pendingReissue, s.cursor], [0, 0, 2, 2])
        XCTAssertTrue(s.accountingBalances)
        XCTAssertEqual(restored.ticketRequested(by: a, weightsVersion: 0, now: 0), [.refuseTicket(actor: a, reason: .unknownActor)],
                       "actors must rejoin after a restart")
        var bad = c.snapshot()
        bad.sampleLagHistogram = [1]
        XCTAssertThrowsError(try StalenessController(restoring: bad))
    }

    func testResumeWithANewPolicyRecomputesBounds() throws {
        var c = try makeController(eta: 1, batch: 2)
        for _ in 0 ..< 2 {
            let t = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
            _ = c.groupArrived(arrival(t, versions: [0]), now: 0)
        }
        _ = try c.batchTrained(version: 0, now: 0)
        _ = try ticket(c.ticketRequested(by: a, weightsVersion: 1, now: 0))
        var resumed = try StalenessController(restoring: c.snapshot())
        _ = try resumed.resumeAfterRestart(policy: StalenessPolicy(maxStaleness: 3, groupsPerBatch: 1))
        XCTAssertEqual(resumed.statistics.sampleLagHistogram.count, 4)
        _ = resumed.actorHeard(a, now: 0)
        // v = 1, η = 3, B = 1: four groups may be live; the re-queued prompt goes first.
        var prompts: [Int] = []
        for _ in 0 ..< 4 { prompts += try ticket(resumed.ticketRequested(by: a, weightsVersion: 1, now: 0)).promptIDs }
        XCTAssertEqual(prompts, [2, 3, 4, 5])
        XCTAssertEqual(resumed.ticketRequested(by: a, weightsVersion: 1, now: 0), [.waitForBudget(actor: a)])
        XCTAssertTrue(resumed.statistics.accountingBalances)
        XCTAssertThrowsError(try resumed.resumeAfterRestart(policy: StalenessPolicy(maxStaleness: 0, groupsPerBatch: 0)))
    }

    func testInvalidPolicyIsRejected() {
        XCTAssertThrowsError(try StalenessController(policy: StalenessPolicy(maxStaleness: -1, groupsPerBatch: 1)))
        XCTAssertThrowsError(try StalenessController(policy: StalenessPolicy(maxStaleness: 0, groupsPerBatch: 0)))
    }

    func testLagQuantiles() throws {
        var c = try makeController(eta: 2, batch: 1)
        let t0 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        let t1 = try ticket(c.ticketRequested(by: a, weightsVersion: 0, now: 0))
        _ = c.groupArrived(arrival(t0, versions: [0, 0, 0]), now: 0)
        _ = try c.batchTrained(version: 0, now: 0)
        _ = c.groupArrived(arrival(t1, versions: [0]), now: 0)
        let s = c.statistics
        XCTAssertEqual(s.sampleLagQuantile(0.5), 0)
        XCTAssertEqual(s.maxSampleLag, 1)
        XCTAssertEqual(s.sampleLagQuantile(1.0), 1)
    }
}
