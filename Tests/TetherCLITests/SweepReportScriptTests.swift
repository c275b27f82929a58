import Foundation
import TetherTestSupport
import XCTest

/// The statistics of scripts/sweep_report.py (t intervals, the paired bootstrap, the mean of the
/// last K evaluations, the seeds a 5-point difference needs, survivorship weighting), checked on
/// data with known answers by scripts/test_sweep_report.py (Python's unittest, standard library only).
final class SweepReportScriptTests: XCTestCase {
    func testSweepReportStatisticsOnKnownData() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../scripts/test_sweep_report.py").standardizedFileURL.path
        do {
            _ = try PeerPython.runFile([script], timeout: 120)
        } catch let e as PeerPython.PeerError {
            XCTFail("scripts/test_sweep_report.py failed: \(e)")
        }
    }
}
