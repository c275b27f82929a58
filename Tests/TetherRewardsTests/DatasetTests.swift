import Foundation
import TetherModel
import TetherRewards
import XCTest

final class DatasetTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-rewards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testRoundTripKeepsKeyOrderAndEscapes() throws {
        let p = TaskPrompt(id: "a/1", task: "arithmetic", prompt: "say \"hi\"\nthen 1+2=", answer: "3")
        XCTAssertEqual(p.jsonLine, #"{"id":"a/1","task":"arithmetic","prompt":"say \"hi\"\nthen 1+2=","answer":"3"}"#)
        let path = try write("p.jsonl", p.jsonLine + "\n\n" + TaskPrompt(id: "b", task: "sequence", prompt: "1 2 ?", answer: "3").jsonLine + "\n")
        let loaded = try TaskPrompt.load(path: path)
        XCTAssertEqual(loaded.first, p)
        XCTAssertEqual(loaded.count, 2)
        let s = SFTExample(prompt: "12+35=", completion: "47")
        XCTAssertEqual(s.jsonLine, #"{"prompt":"12+35=","completion":"47"}"#)
        XCTAssertEqual(try SFTExample.load(path: try write("s.jsonl", s.jsonLine)), [s])
    }

    func testErrorsNameFileAndLine() throws {
        let good = TaskPrompt(id: "a", task: "arithmetic", prompt: "1+1=", answer: "2").jsonLine
        let broken = try write("broken.jsonl", good + "\n" + good + "\n{\"id\": \"x\", \"task\": \"arithmetic\"\n")
        XCTAssertThrowsError(try TaskPrompt.load(path: broken)) { e in
            guard case .malformedLine(let file, let line, _) = e as? DatasetError else { return XCTFail("\(e)") }
            XCTAssertEqual(file, broken); XCTAssertEqual(line, 3)
        }
        let missing = try write("missing.jsonl", "\n" + #"{"id":"x","task":"arithmetic","prompt":"1+1="}"#)
        XCTAssertThrowsError(try TaskPrompt.load(path: missing)) { e in
            XCTAssertEqual(e as? DatasetError, .malformedLine(file: missing, line: 2, detail: "missing field \"answer\""))
            XCTAssertTrue("\(e)".hasPrefix("\(missing):2:"), "\(e)")
        }
        let wrongType = try write("type.jsonl", #"{"id":"x","task":"arithmetic","prompt":"1+1=","answer":[2]}"#)
        XCTAssertThrowsError(try TaskPrompt.load(path: wrongType)) { e in
            guard case .malformedLine(_, 1, let detail) = e as? DatasetError else { return XCTFail("\(e)") }
            XCTAssertTrue(detail.contains("answer"), detail)
        }
        // Other field names, a numeric answer, no id or task: the user-dataset contract.
        let user = try write("user.jsonl", #"{"question":"What is 1+1?","solution":2}"#)
        XCTAssertEqual(try TaskPrompt.load(path: user, promptField: "question", answerField: "solution"),
                       [TaskPrompt(id: "jsonl/0", task: "jsonl", prompt: "What is 1+1?", answer: "2")])
        XCTAssertThrowsError(try TaskPrompt.load(path: user)) {
            XCTAssertEqual($0 as? DatasetError, .malformedLine(file: user, line: 1, detail: "missing field \"prompt\""))
        }
        XCTAssertThrowsError(try TaskPrompt.load(path: dir.appendingPathComponent("nope.jsonl").path)) {
            guard case .unreadable = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try SFTExample.load(path: try write("empty.jsonl", "\n \n"))) {
            guard case .empty = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
    }
}
