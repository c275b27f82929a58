import TetherRewards
import XCTest

/// Each `task.extract` mode on the strings a chat model actually writes, and the format reward's
/// verdict on each.
final class AnswerExtractionTests: XCTestCase {
    func integer(_ completion: String, _ format: AnswerFormat) -> String? { IntegerAnswer.extract(from: completion, format: format) }

    func testLastInteger() {
        let cases: [(String, String?)] = [
            ("7", "7"), ("The answer is 7.", "7"), ("3 + 4 = 7", "7"), ("3 + 4 = 7\n", "7"),
            ("First 12, then 30, so 42", "42"), ("It is -12.", "-12"), ("5-3=2", "2"), ("3-15 = -12", "-12"),
            ("x-3", "3"), ("(2)-3", "3"), ("12.0", "12"), ("Total: 2.5", nil), ("0047", "47"), ("-0", "0"),
            ("no digits here", nil), ("", nil), ("7<eos>99", "7"), ("the answer is 99999999999999999999999", "99999999999999999999999"),
            ("\\boxed{5} and then 6", "6"),
        ]
        for (text, expected) in cases { XCTAssertEqual(integer(text, .lastInteger), expected, text.debugDescription) }
    }

    func testBoxed() {
        let cases: [(String, String?)] = [
            ("\\boxed{7}", "7"), ("So the answer is $\\boxed{ -12 }$.", "-12"), ("\\boxed{3} no wait \\boxed{4}", "4"),
            ("\\boxed{\\frac{1}{2}}", nil), ("\\boxed{\\frac{1}{2}} or \\boxed{2}", "2"), ("\\boxed{{7}}", nil),
            ("\\boxed{7", nil), ("The answer is 7.", nil), ("boxed{7}", nil), ("\\boxed{}", nil), ("\\boxed{7 apples}", nil),
        ]
        for (text, expected) in cases { XCTAssertEqual(integer(text, .boxed), expected, text.debugDescription) }
        // Braces are matched: the content of a nested box is read whole.
        XCTAssertEqual(AnswerFormat.boxed.answerText(in: "x \\boxed{\\frac{1}{2}} y").map(String.init), "\\frac{1}{2}")
        XCTAssertEqual(AnswerFormat.boxed.answerText(in: "\\boxed{a{b{c}}d}").map(String.init), "a{b{c}}d")
    }

    func testTagged() {
        let cases: [(String, String?)] = [
            ("<answer>7</answer>", "7"), ("Let me add. <answer> -3 </answer>", "-3"), ("<think>3+4</think><answer>7</answer>", "7"),
            ("<answer>7", "7"), ("7", nil), ("The answer is 7", nil), ("<answer>seven</answer>", nil),
            ("<answer>7</answer><answer>8</answer>", "7"),
        ]
        for (text, expected) in cases { XCTAssertEqual(integer(text, .tagged), expected, text.debugDescription) }
    }

    func testBareKeepsTheLeadingInteger() {
        XCTAssertEqual(integer("47\n12+3=", .bare), "47")
        XCTAssertEqual(integer("47\n12+3=", .lastInteger), "3", "the same text read the other way")
        XCTAssertNil(integer("= 47", .bare))
    }

    func testFormatRewardPerMode() {
        let wellFormed: [(AnswerFormat, [String])] = [
            (.lastInteger, ["7", " 7\n", "-12", "7.", "07"]),
            (.boxed, ["\\boxed{7}", "3 + 4 = 7, so the answer is $\\boxed{7}$.", "\\boxed{ -2 }"]),
            (.tagged, ["<answer>7</answer>", "3 plus 4 is 7. <answer>7</answer>\n", "<think>3+4=7</think> <answer>7</answer>"]),
            (.bare, ["7", "-3 "]),
        ]
        let malformed: [(AnswerFormat, [String])] = [
            (.lastInteger, ["The answer is 7.", "7 apples", "3 + 4 = 7", "", "7.5"]),
            (.boxed, ["7", "\\boxed{7} \\boxed{8}", "\\boxed{\\frac{1}{2}}", "\\boxed{7", "\\boxed{7} and \\boxed{8", "\\boxed{seven}"]),
            (.tagged, ["7", "<answer>7</answer> done", "<answer>7</answer><answer>7</answer>", "<think>x<answer>7</answer>",
                       "<answer>x</answer>", "</answer><answer>7</answer>"]),
            (.bare, ["7.", "x7"]),
        ]
        for (format, texts) in wellFormed { for t in texts { XCTAssertTrue(format.isWellFormed(t), "\(format): \(t.debugDescription)") } }
        for (format, texts) in malformed { for t in texts { XCTAssertFalse(format.isWellFormed(t), "\(format): \(t.debugDescription)") } }
    }

    /// What a perfect policy writes is correct and well formed in every mode, and the prompt asks for it.
    func testIdealCompletionsAndInstructions() throws {
        let p = TaskPrompt(id: "q", task: "arithmetic", prompt: "3-15=", answer: "-12")
        for format in AnswerFormat.allCases {
            let c = format.completion(answer: "-12", reasoning: "3-15")
            XCTAssertTrue(format.isWellFormed(c), "\(format): \(c)")
            XCTAssertEqual(try IntegerAnswerVerifier.correct(format).checkedScore(completion: c, for: p).reward, 1, "\(format)")
        }
        XCTAssertTrue(AnswerFormat.boxed.instruction.contains("\\boxed{}"))
        XCTAssertTrue(AnswerFormat.tagged.instruction.contains("<answer></answer>"))
        XCTAssertTrue(AnswerFormat.lastInteger.instruction.contains("just the number"))
    }
}
