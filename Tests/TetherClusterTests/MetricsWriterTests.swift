import Foundation
import TetherCluster
import TetherTestSupport
import XCTest

final class MetricsWriterTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tether-metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// Test vectors of RFC 3720 (iSCSI) Appendix B.4 and the classic "123456789" check value.
    func testCRC32CKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0 ..< 32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0 ..< 32).map { UInt8(31 - $0) }), 0x113F_DB5C)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        // Mask is rotate-right-15 plus 0xa282ead8 (TensorFlow crc32c::Mask).
        XCTAssertEqual(CRC32C.masked(0), 0xA282_EAD8)
        XCTAssertEqual(CRC32C.masked(0x0000_8000), 0xA282_EAD9)
    }

    func testTFRecordFramingAndEventBytes() {
        let framed = TFRecord.frame([1, 2, 3])
        XCTAssertEqual(framed.count, 8 + 4 + 3 + 4)
        XCTAssertEqual(Array(framed[0 ..< 8]), [3, 0, 0, 0, 0, 0, 0, 0])
        let lengthCRC = CRC32C.masked(CRC32C.checksum(framed[0 ..< 8]))
        XCTAssertEqual(Array(framed[8 ..< 12]), withUnsafeBytes(of: lengthCRC.littleEndian) { Array($0) })
        XCTAssertEqual(Array(framed[12 ..< 15]), [1, 2, 3])
        // Event{step: 300, summary{value{tag: "a", simple_value: 1.0}}}, wall_time 0.
        let event = TensorBoardEvent.scalars(["a": 1.0], step: 300, wallTime: 0)
        XCTAssertEqual(event, [0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0xAC, 0x02,
                               0x2A, 10, 0x0A, 8, 0x0A, 1, 0x61, 0x15, 0x00, 0x00, 0x80, 0x3F])
    }

    func testJSONLineHasScalarsAndExtras() throws {
        var record = MetricsRecord(step: 3, wallTime: 1000.5, scalars: ["reward/mean": 0.25, "kl": .nan])
        var controller = try StalenessController(policy: StalenessPolicy(maxStaleness: 2, groupsPerBatch: 1))
        _ = controller.actorHeard("a", now: 0)
        _ = controller.groupArrived(GroupArrival(actor: "a", ticket: 7, promptID: 0, sampleVersions: [0]), now: 0)
        record.addStaleness(controller.statistics)
        record.extras["note"] = .string("quote \" and\nnewline")
        let writer = try MetricsWriter(jsonlURL: directory.appendingPathComponent("metrics.jsonl"), tensorBoardDirectory: directory)
        try writer.write(record)
        record.step = 4
        try writer.write(record)
        let lines = try String(contentsOf: writer.jsonlURL, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(object["step"] as? Int, 3)
        XCTAssertEqual(object["wall_time"] as? Double, 1000.5)
        XCTAssertEqual(object["reward/mean"] as? Double, 0.25)
        XCTAssertTrue(object["kl"] is NSNull, "NaN must be written as null, not break the JSON")
        XCTAssertEqual(object["lag_histogram"] as? [Int], [0, 0, 0])
        XCTAssertEqual((object["dropped"] as? [String: Int])?["unknown_ticket"], 1)
        XCTAssertEqual(object["dropped/unknown_ticket"] as? Double, 1)
        XCTAssertEqual(object["note"] as? String, "quote \" and\nnewline")
    }

    /// Reads our event file with TensorBoard's own EventAccumulator and compares every value.
    func testTensorBoardReadsTheEventFile() throws {
        try PeerPython.require(["tensorboard"])
        let writer = try TensorBoardEventWriter(directory: directory, wallTime: 1_700_000_000, host: "testhost")
        XCTAssertTrue(writer.url.lastPathComponent.hasPrefix("events.out.tfevents.1700000000.testhost"))
        var expected: [String: [(Int, Double)]] = [:]
        for step in 0 ..< 5 {
            let scalars = ["reward/mean": Double(step) * 0.5 - 1, "lag/max": Double(step % 3), "ess": 1.0 / Double(step + 1)]
            try writer.write(scalars: scalars, step: step * 10, wallTime: 1_700_000_000 + Double(step))
            for (tag, value) in scalars { expected[tag, default: []].append((step * 10, value)) }
        }
        let script = """
        import json, sys
        from tensorboard.backend.event_processing import event_accumulator as ea
        acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
        acc.Reload()
        out = {t: [[e.step, e.value, e.wall_time] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
        print(json.dumps(out))
        """
        let stdout = try PeerPython.run(script, [writer.url.path])
        let read = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: [[Double]]])
        XCTAssertEqual(Set(read.keys), Set(expected.keys))
        for (tag, points) in expected {
            let got = try XCTUnwrap(read[tag])
            XCTAssertEqual(got.map { Int($0[0]) }, points.map(\.0), tag)
            for (g, e) in zip(got, points) { XCTAssertEqual(g[1], Double(Float(e.1)), accuracy: 1e-7, tag) }
            XCTAssertEqual(got.map { $0[2] }, (0 ..< 5).map { 1_700_000_000 + Double($0) }, tag)
        }
    }
}
