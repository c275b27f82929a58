import TetherRewards
import XCTest

final class VerifierTests: XCTestCase {
    let p = TaskPrompt(id: "arithmetic/train/3", task: "arithmetic", prompt: "12+35=", answer: "47")
    let neg = TaskPrompt(id: "arithmetic/train/4", task: "arithmetic", prompt: "3-15=", answer: "-12")

    func reward(_ v: any Verifier, _ completion: String, _ prompt: TaskPrompt? = nil) throws -> Float {
        try v.checkedScore(completion: completion, for: prompt ?? p).reward
    }

    func testArithmeticOnTrickyCompletions() throws {
        let v = IntegerAnswerVerifier.arithmetic
        let right = ["47", " 47", "\n47", "  \n 47", "047", "0047", "47 ", "47\n", "47 cats", "47\n12+3=", "47abc",
                     "47<eos>", "47<eos>99", "<answer>47</answer>", "<think>12+35</think><answer> 47 </answer>"]
        for c in right { XCTAssertEqual(try reward(v, c), 1, "\(c.debugDescription) should be correct") }
        let wrong = ["", " ", "\n", "46", "4 7", "-47", "x47", "+47", "= 47", "a", "<eos>47", "470",
                     "<answer></answer>", "<answer>46</answer>47", "99999999999999999999999999999999"]
        for c in wrong { XCTAssertEqual(try reward(v, c), 0, "\(c.debugDescription) should be wrong") }
    }

    func testNegativeAnswersAndZeros() throws {
        let v = IntegerAnswerVerifier.arithmetic
        XCTAssertEqual(try reward(v, "-12", neg), 1)
        XCTAssertEqual(try reward(v, "-012", neg), 1)
        XCTAssertEqual(try reward(v, "12", neg), 0)
        XCTAssertEqual(try reward(v, "--12", neg), 0)
        XCTAssertEqual(try reward(v, "- 12", neg), 0)
        let zero = TaskPrompt(id: "z", task: "arithmetic", prompt: "5-5=", answer: "0")
        for c in ["0", "00", "-0", " 0\n"] { XCTAssertEqual(try reward(v, c, zero), 1, c.debugDescription) }
        XCTAssertEqual(IntegerAnswer.extract(from: "0000123 rest"), "123")
        XCTAssertNil(IntegerAnswer.extract(from: "-"))
    }

    func testTaggedFormatNeedsTags() throws {
        let v = IntegerAnswerVerifier(name: "arithmetic", format: .tagged)
        XCTAssertEqual(try reward(v, "<think>12+35</think><answer>47</answer>"), 1)
        XCTAssertEqual(try reward(v, "<answer>47"), 1, "an unclosed answer tag still yields its integer")
        XCTAssertEqual(try reward(v, "47"), 0, "tagged format without <answer> has no answer")
    }

    func testFormatVerifier() throws {
        let bare = FormatVerifier(format: .bare)
        for c in ["47", " 47\n", "-3", "047", "47<eos>junk"] { XCTAssertEqual(try reward(bare, c), 1, c.debugDescription) }
        for c in ["", "47 cats", "4 7", "<answer>47</answer>", "x"] { XCTAssertEqual(try reward(bare, c), 0, c.debugDescription) }
        let tagged = FormatVerifier(format: .tagged)
        for c in ["<think>12+35</think><answer>47</answer>", " <think></think>\n<answer> -5 </answer>\n", "<think>a</think><answer>1</answer><eos>x"] {
            XCTAssertEqual(try reward(tagged, c), 1, c.debugDescription)
        }
        XCTAssertEqual(try reward(tagged, "<answer>47</answer>"), 1, "the think block is optional")
        for c in ["<think>x</think>", "<think>x<answer>1</answer>", "<think>x</think><answer>47</answer> more",
                  "<think>x</think><answer>forty</answer>", "<think>x</think><answer></answer>", "47", "<think><think></think><answer>1</answer>"] {
            XCTAssertEqual(try reward(tagged, c), 0, c.debugDescription)
        }
    }

    func testLengthPenaltyByHand() throws {
        // L_max = 10, L_cache = 4: free up to 6; L = 8 → (6 − 8)/4 = −0.5; L = 10 → −1; L = 11 → −1.
        let v = LengthPenaltyVerifier(maxLength: 10, cacheLength: 4)
        XCTAssertEqual(try reward(v, "123456"), 0)
        XCTAssertEqual(try reward(v, "1234567"), -0.25)
        XCTAssertEqual(try reward(v, "12345678"), -0.5)
        XCTAssertEqual(try reward(v, "1234567890"), -1)
        XCTAssertEqual(try reward(v, "12345678901"), -1)
        XCTAssertEqual(try reward(v, "123456<eos>7890"), 0, "text after <eos> is not generated")
    }

    func testWeightedCombinationFromSpec() throws {
        let spec = try RewardSpec(correct: 1, format: 0.1, answerFormat: .bare)
        let v = spec.makeVerifier()
        // "47" : 1·1 + 0.1·1 = 1.1.  "47 cats": 1·1 + 0.1·0 = 1.  "46": 0 + 0.1 = 0.1.
        let b = try v.checkedScore(completion: "47", for: p)
        XCTAssertEqual(b.reward, 1.1, accuracy: 1e-6)
        XCTAssertEqual(b.components, [RewardComponent(name: "correct", value: 1, weight: 1), RewardComponent(name: "format", value: 1, weight: 0.1),
                                      RewardComponent(name: "length", value: 0, weight: 0)])
        XCTAssertEqual(try reward(v, "47 cats"), 1, accuracy: 1e-6)
        XCTAssertEqual(try reward(v, "46"), 0.1, accuracy: 1e-6)
        XCTAssertEqual(b["format"], 1)
        XCTAssertThrowsError(try RewardSpec(format: .nan))
        XCTAssertThrowsError(try RewardSpec(format: -0.1))
        XCTAssertThrowsError(try RewardSpec(lengthMaxChars: 10, lengthRampChars: 11))
    }

    /// A verifier that misbehaves, standing in for a broken reward model.
    struct NaNVerifier: Verifier {
        let name = "broken-rm"
        let value: Float
        func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown { RewardBreakdown(name, value) }
    }

    func testNonFiniteRewardIsRejectedNamingVerifierAndPrompt() throws {
        for bad in [Float.nan, .infinity, -.infinity] {
            XCTAssertThrowsError(try NaNVerifier(value: bad).checkedScore(completion: "47", for: p)) { e in
                XCTAssertEqual(e as? RewardError, .nonFiniteReward(verifier: "broken-rm", promptID: "arithmetic/train/3", value: bad))
                XCTAssertTrue("\(e)".contains("broken-rm") && "\(e)".contains("arithmetic/train/3"), "\(e)")
            }
        }
        // Inside a weighted combination the error names the sub-verifier, not the sum.
        let combo = WeightedVerifier([(IntegerAnswerVerifier.arithmetic, 1), (NaNVerifier(value: .nan), 0.5)])
        XCTAssertThrowsError(try combo.checkedScore(completion: "47", for: p)) { e in
            guard case .nonFiniteReward(let name, let id, let v) = e as? RewardError else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "broken-rm"); XCTAssertEqual(id, p.id); XCTAssertTrue(v.isNaN)
        }
        // A finite reward passes unchanged.
        XCTAssertEqual(try NaNVerifier(value: 0.25).checkedScore(completion: "", for: p).reward, 0.25)
    }

    func testNonIntegerReferenceAnswerIsAnError() {
        let bad = TaskPrompt(id: "q7", task: "arithmetic", prompt: "1+1=", answer: "two")
        XCTAssertThrowsError(try IntegerAnswerVerifier.arithmetic.checkedScore(completion: "2", for: bad)) { XCTAssertTrue("\($0)".contains("q7")) }
    }

    /// The configured reward: every component is scored at any weight, the reward is their weighted
    /// sum, correctness is the `correct` component's, and the tally separates format from correctness.
    func testRewardComponentsWeightsAndTally() throws {
        let q = TaskPrompt(id: "q", task: "arithmetic", prompt: "3+4=", answer: "7")
        let spec = try RewardSpec(correct: 1, format: 0.25, length: 0.5, answerFormat: .boxed, lengthMaxChars: 40, lengthRampChars: 20)
        let v = spec.makeVerifier()
        let long = "I think it is 7 " + String(repeating: "x", count: 14) + " \\boxed{7}"  // 40 characters: the ramp's end
        XCTAssertEqual(long.count, 40)
        let cases: [(String, [Float])] = [
            ("\\boxed{7}", [1, 1, 0]),                 // right and well formed
            ("The answer is 7.", [0, 0, 0]),           // right number, not boxed: not correct under `boxed`
            ("\\boxed{8}", [0, 1, 0]),                 // the form without the answer (format hacking)
            ("\\boxed{7} \\boxed{7}", [1, 0, 0]),      // right, but two boxes
            (long, [1, 1, -1]),                        // L = L_max: penalty −1
            (String(repeating: " ", count: 25) + "\\boxed{7}", [1, 1, -0.7]),  // L = 34: (20 − 34)/20
        ]
        var tally = RewardTally()
        for (text, expected) in cases {
            let b = try v.checkedScore(completion: text, for: q)
            XCTAssertEqual(b.components.map(\.name), ["correct", "format", "length"])
            let values = b.components.map(\.value)
            XCTAssertEqual(values[0], expected[0], text); XCTAssertEqual(values[1], expected[1], text)
            XCTAssertEqual(values[2], expected[2], accuracy: 1e-6, text)
            XCTAssertEqual(b.reward, values[0] + 0.25 * values[1] + 0.5 * values[2], accuracy: 1e-6, text)
            XCTAssertEqual(b.isCorrect, values[0] == 1, text)
            tally.add(b)
        }
        XCTAssertEqual(tally.samples, cases.count)
        XCTAssertEqual(try XCTUnwrap(tally.mean("correct")), 4.0 / 6, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(tally.mean("format")), 4.0 / 6, accuracy: 1e-9)
        XCTAssertNil(tally.mean("missing"))
        // A right answer whose length penalty pulls the reward under 1 still counts as correct.
        let heavy = try RewardSpec(length: 1, answerFormat: .lastInteger, lengthMaxChars: 4, lengthRampChars: 2).makeVerifier()
        let b = try heavy.checkedScore(completion: "so 7", for: q)
        XCTAssertLessThan(b.reward, 1)
        XCTAssertTrue(b.isCorrect)
    }
}
