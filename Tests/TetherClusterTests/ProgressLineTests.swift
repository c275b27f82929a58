import Foundation
import TetherCluster
import TetherRL
import XCTest

final class ProgressLineTests: XCTestCase {
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

    /// The update's off-policy figures reach metrics.jsonl under their tags and the lag part of the
    /// progress line: the behaviour–current KL always, the masked share when a rule dropped tokens.
    func testUpdateMetricsCarryTheCorrectionsFigures() {
        typealias K = MetricsRecord.Key
        var stats = PolicyUpdateMetrics()
        stats.mismatchKL = 0.01234
        stats.maskedFraction = 0.125
        stats.truncatedFraction = 0.25
        stats.effectiveSampleFraction = 0.8
        var record = MetricsRecord(step: 3, scalars: [K.lagP50: 1, K.lagMax: 2])
        record.addUpdate(stats)
        XCTAssertEqual(record.scalars["mismatch_kl"], 0.01234)
        XCTAssertEqual(record.scalars["is/masked_fraction"], 0.125)
        XCTAssertEqual(record.scalars["is/truncated_fraction"], 0.25)
        XCTAssertEqual(record.scalars["ess"], 0.8)
        XCTAssertTrue(ProgressLine.format(record, totalSteps: 9).contains("lag p50 1 max 2 mkl 0.0123 masked 12.5%  "),
                      ProgressLine.format(record, totalSteps: 9))
        stats.maskedFraction = 0
        record.addUpdate(stats)
        XCTAssertTrue(ProgressLine.format(record, totalSteps: 9).contains("lag p50 1 max 2 mkl 0.0123  "))
    }

    func testProgressLineMarksMissingAndNonFiniteFigures() {
        let record = MetricsRecord(step: 1, scalars: [MetricsRecord.Key.rewardMean: .nan, MetricsRecord.Key.actorTokensPerSecond: 950])
        XCTAssertEqual(ProgressLine.format(record, totalSteps: 5),
                       "step 1/5  v–  reward –  acc –  tok/s actor 950 learner –  lag p50 – max –  dropped 0")
    }

    /// The held-out part the learner appends after an evaluation: the version it measured, greedy
    /// and sampled accuracy; without a sampled pass only greedy.
    func testHeldOutPartShowsTheEvaluatedVersion() {
        typealias K = MetricsRecord.Key
        XCTAssertEqual(ProgressLine.heldOut([K.version: 20, K.evalAccuracy: 0.625, K.evalSampledAccuracy: 0.413]),
                       "held-out v20 greedy 62.5% T=1 41.3%")
        XCTAssertEqual(ProgressLine.heldOut([K.version: 0, K.evalAccuracy: 0.5]), "held-out v0 greedy 50.0%")
        XCTAssertEqual(ProgressLine.heldOut([K.evalAccuracy: .nan]), "held-out v– greedy –")
    }

    func testProgressLineFromControllerStatistics() throws {
        var c = try StalenessController(policy: StalenessPolicy(maxStaleness: 1, groupsPerBatch: 1))
        _ = c.actorHeard("a", now: 0)
        _ = c.groupArrived(GroupArrival(actor: "a", ticket: 0, promptID: 0, sampleVersions: [0]), now: 0)
        var record = MetricsRecord(step: 0)
        record.addStaleness(c.statistics)
        XCTAssertTrue(ProgressLine.format(record, totalSteps: 1).hasSuffix("v0  reward –  acc –  tok/s actor – learner –  lag p50 – max –  dropped 1 (unknown_ticket 1)"),
                      ProgressLine.format(record, totalSteps: 1))
    }
}
