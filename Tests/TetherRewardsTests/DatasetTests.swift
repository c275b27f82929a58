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
        let upper = try write("upper.jsonl", good + "\n" + #"{"id":"x","task":"arithmetic","prompt":"What is 1+1?","answer":"2"}"#)
        // Prompts must tokenize for the policy: the toy's vocabulary has no capitals, a chat one does.
        XCTAssertThrowsError(try TaskPrompt.load(path: upper, tokenizer: .standard)) { e in
            guard case .malformedLine(upper, 2, let detail)? = e as? DatasetError else { return XCTFail("\(e)") }
            XCTAssertTrue(detail.contains("\"W\""), detail)
        }
        // Other field names, a numeric answer, no id or task: the user-dataset contract.
        let user = try write("user.jsonl", #"{"question":"What is 1+1?","solution":2}"#)
        XCTAssertEqual(try TaskPrompt.load(path: user, promptField: "question", answerField: "solution"),
                       [TaskPrompt(id: "jsonl/0", task: "jsonl", prompt: "What is 1+1?", answer: "2")])
        XCTAssertThrowsError(try TaskPrompt.load(path: user)) {
            XCTAssertEqual($0 as? DatasetError, .malformedLine(file: user, line: 1, detail: "missing field \"prompt\""))
        }
        XCTAssertEqual(try TaskPrompt.load(path: upper).count, 2)
        XCTAssertThrowsError(try TaskPrompt.load(path: dir.appendingPathComponent("nope.jsonl").path)) {
            guard case .unreadable = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try SFTExample.load(path: try write("empty.jsonl", "\n \n"))) {
            guard case .empty = $0 as? DatasetError else { return XCTFail("\($0)") }
        }
    }

    /// The user-dataset contract: `prompt` as text or messages (or a `messages` field), an integer
    /// `answer` as number or string, configurable field names, optional `id`/`task`; every
    /// violation names its line.
    func testPromptDatasetContract() throws {
        let path = try write("user.jsonl", [
            #"{"question":"What is 2+2?","solution":4}"#,
            "",
            #"{"question":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 3+3?"}],"solution":"-6","id":"q2"}"#,
            #"{"messages":[{"role":"user","content":"And 1+1?"}],"solution":" 02 ","task":"mine"}"#,
        ].joined(separator: "\n"))
        let prompts = try PromptDataset(promptField: "question", answerField: "solution").load(path: path)
        XCTAssertEqual(prompts.map(\.id), ["jsonl/0", "q2", "jsonl/2"])
        XCTAssertEqual(prompts.map(\.task), ["jsonl", "jsonl", "mine"])
        XCTAssertEqual(prompts.map(\.answer), ["4", "-6", "2"])
        XCTAssertEqual(prompts.map(\.prompt), ["What is 2+2?", "What is 3+3?", "And 1+1?"])
        XCTAssertNil(prompts[0].messages)
        XCTAssertEqual(prompts[1].messages, [.system("Be brief."), .user("What is 3+3?")])
        XCTAssertEqual(prompts[2].messages, [.user("And 1+1?")])
        // A record written back out reads the same.
        let again = try write("again.jsonl", prompts.map(\.jsonLine).joined(separator: "\n"))
        XCTAssertEqual(try TaskPrompt.load(path: again), prompts)

        let bad: [(String, String)] = [
            (#"{"prompt":"What is 1+1?"}"#, "missing field \"answer\""),
            (#"{"prompt":"What is 1+1?","answer":"two"}"#, "not an integer"),
            (#"{"prompt":"What is 1+1?","answer":1.5}"#, "must be an integer"),
            (#"{"prompt":"What is 1+1?","answer":true}"#, "must be an integer"),
            (#"{"answer":2}"#, "missing field \"prompt\""),
            (#"{"prompt":7,"answer":2}"#, "list of"),
            (#"{"prompt":[{"role":"system","content":"x"}],"answer":2}"#, "no user message"),
            (#"["prompt","answer"]"#, "not"),
        ]
        for (line, message) in bad {
            let file = try write("bad.jsonl", #"{"prompt":"What is 1+1?","answer":2}"# + "\n\n" + line + "\n")
            XCTAssertThrowsError(try TaskPrompt.load(path: file), line) { e in
                guard case .malformedLine(file, 3, let detail)? = e as? DatasetError else { return XCTFail("\(line): \(e)") }
                XCTAssertTrue(detail.contains(message), "\(line): \(detail)")
                XCTAssertTrue("\(e)".hasPrefix("\(file):3:"), "\(e)")
            }
        }
    }

    /// Answers for a reward service (`Answers.text`) pass through exactly as written — a fraction,
    /// LaTeX, an expression, a decimal JSON number — while the integer contract of the built-in
    /// verifiers refuses the same file with an error naming the line and saying what would take it.
    func testFreeFormAnswersPassThroughOnlyForAService() throws {
        let path = try write("free.jsonl", [
            #"{"prompt":"What is 7 divided by 2?","answer":"7/2"}"#,
            #"{"prompt":"What is a third?","answer":" \\frac{1}{3} "}"#,
            #"{"prompt":"Factor it.","answer":"(x-1)(x+1)"}"#,
            #"{"prompt":"Half of 7?","answer":3.5}"#,
            #"{"prompt":"1+1?","answer":2}"#,
        ].joined(separator: "\n"))
        let prompts = try TaskPrompt.load(path: path, answers: .text)
        XCTAssertEqual(prompts.map(\.answer), ["7/2", " \\frac{1}{3} ", "(x-1)(x+1)", "3.5", "2"])
        XCTAssertThrowsError(try TaskPrompt.load(path: path)) { e in
            guard case .malformedLine(path, 1, let detail)? = e as? DatasetError else { return XCTFail("\(e)") }
            XCTAssertTrue(detail.contains("\"7/2\" is not an integer"), detail)
            XCTAssertTrue(detail.contains("built-in verifiers compare integer answers"), detail)
            XCTAssertTrue(detail.contains("task.reward: service"), detail)
        }
        for (line, message) in [(#"{"prompt":"p","answer":"  "}"#, "is empty"), (#"{"prompt":"p","answer":true}"#, "must be a string or a number"),
                                (#"{"prompt":"p","answer":["7/2"]}"#, "must be a string or a number"), (#"{"prompt":"p"}"#, "missing field \"answer\"")] {
            let file = try write("bad-free.jsonl", #"{"prompt":"q","answer":"1/2"}"# + "\n" + line + "\n")
            XCTAssertThrowsError(try TaskPrompt.load(path: file, answers: .text), line) { e in
                guard case .malformedLine(file, 2, let detail)? = e as? DatasetError else { return XCTFail("\(line): \(e)") }
                XCTAssertTrue(detail.contains(message), "\(line): \(detail)")
            }
        }
    }
}
