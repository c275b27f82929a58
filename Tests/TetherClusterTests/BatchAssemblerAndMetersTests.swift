import Foundation
import TetherCluster
import XCTest

final class BatchAssemblerAndMetersTests: XCTestCase {
    func testAssemblerReturnsPayloadsOfTheAnnouncedBatchInSlotOrder() throws {
        var c = try StalenessController(policy: StalenessPolicy(maxStaleness: 1, groupsPerBatch: 2))
        var assembler = BatchAssembler<String>()
        _ = c.actorJoined("a", now: 0)
        var tickets: [RolloutTicket] = []
        for _ in 0 ..< 3 {
            guard case .issueTicket(let t)? = c.ticketRequested(by: "a", weightsVersion: 0, now: 0).first else { return XCTFail() }
            tickets.append(t)
        }
        func arrive(_ t: RolloutTicket, _ versions: [Int]) throws -> BatchAssembler<String>.ReadyBatch? {
            let arrival = GroupArrival(actor: "a", ticket: t.id, promptID: t.promptIDs[0], sampleVersions: versions)
            return try assembler.apply(c.groupArrived(arrival, now: 0), arrived: "traj-\(t.id)")
        }
        XCTAssertNil(try arrive(tickets[2], [0]))
        XCTAssertNil(try arrive(tickets[0], [5]), "a dropped group's payload is not stored")
        XCTAssertEqual(assembler.storedCount, 1)
        let batch = try XCTUnwrap(try arrive(tickets[1], [0]))
        XCTAssertEqual(batch.version, 0)
        XCTAssertEqual(batch.payloads, ["traj-2", "traj-1"])
        XCTAssertEqual(assembler.storedCount, 0)
        XCTAssertThrowsError(try assembler.apply([.batchReady(version: 1, groups: batch.groups)]))
        XCTAssertThrowsError(try assembler.apply([.admitGroup(batch.groups[0])], arrived: nil)) { error in
            XCTAssertEqual(error as? BatchAssembler<String>.AssemblyError, .admittedWithoutPayload(ticket: 2, promptID: 2))
        }
    }

    func testRateMeterAveragesOverItsWindow() {
        var meter = RateMeter(windowSeconds: 10)
        XCTAssertNil(meter.rate(now: 0))
        meter.record(100, at: 0)
        XCTAssertNil(meter.rate(now: 0))
        meter.record(100, at: 5)
        XCTAssertEqual(meter.rate(now: 5), 40)  // 200 tokens over the 5 s since the first event
        meter.record(100, at: 20)
        XCTAssertEqual(meter.rate(now: 20), 10)  // only the last event is inside (10, 20]
    }

    func testIdleMeterMeasuresWaitingTime() {
        var meter = IdleMeter(start: 0)
        meter.becameIdle(at: 0)
        meter.becameBusy(at: 3)
        meter.becameIdle(at: 8)
        XCTAssertEqual(meter.idleFraction(now: 10), 0.5, accuracy: 1e-12)
        meter.reset(at: 10)
        meter.becameBusy(at: 12)
        XCTAssertEqual(meter.idleFraction(now: 20), 0.2, accuracy: 1e-12)
    }
}
