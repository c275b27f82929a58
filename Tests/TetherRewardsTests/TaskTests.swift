import Foundation
import TetherRewards
import XCTest

final class TaskTests: XCTestCase {
    func allGenerators() throws -> [any TaskGenerator] {
        var g: [any TaskGenerator] = []
        for l in 1 ... 5 { for f in AnswerFormat.allCases { g.append(try ArithmeticTask.level(l, answerFormat: f)) } }
        for l in 1 ... 4 { for f in AnswerFormat.allCases { g.append(try SequenceTask.level(l, answerFormat: f)) } }
        g.append(try ArithmeticTask(minDigits: 1, maxDigits: 2, operators: ["*"], allowNegative: true))
        for f in AnswerFormat.allCases { g.append(try ArithmeticTask.mixed(answerFormat: f)) }
        return g
    }

    func testDeterministicForSeed() throws {
        for g in try allGenerators() {
            let a = try TaskDataset.prompts(g, split: .train, count: 40, seed: 7)
            let b = try TaskDataset.prompts(g, split: .train, count: 40, seed: 7)
            XCTAssertEqual(a, b, g.name)
            let c = try TaskDataset.prompts(g, split: .train, count: 40, seed: 8)
            XCTAssertNotEqual(a.map(\.prompt), c.map(\.prompt), "another seed gives another set (\(g.name))")
        }
        // Pinned: the stream is defined by SplitMix64 and FNV-1a, so these never change.
        let first = try TaskDataset.prompts(ArithmeticTask.level(3), split: .train, count: 3, seed: 0)
        XCTAssertEqual(first.map(\.prompt), ["9-8=", "4+7=", "80+6="])
        XCTAssertEqual(first.map(\.answer), ["1", "11", "86"])
        XCTAssertEqual(first.map(\.id), ["arithmetic/train/0", "arithmetic/train/1", "arithmetic/train/2"])
        let seq = try TaskDataset.prompts(SequenceTask.level(3), split: .heldout, count: 2, seed: 0)
        XCTAssertEqual(seq.map(\.prompt), ["1 4 9 16 ?", "18 1 19 20 ?"])
    }

    func testTrainAndHeldoutAreDisjoint() throws {
        for g in try allGenerators() {
            var train = Set<String>(), held = Set<String>(), sft = Set<String>()
            for seed: UInt64 in [0, 1, 2] {
                train.formUnion(try TaskDataset.prompts(g, split: .train, count: 150, seed: seed).map(\.prompt))
                held.formUnion(try TaskDataset.prompts(g, split: .heldout, count: 60, seed: seed).map(\.prompt))
                sft.formUnion(try TaskDataset.sft(g, count: 90, seed: seed).map(\.prompt))
            }
            XCTAssertTrue(sft.isDisjoint(with: train), "\(g.name): \(sft.intersection(train).prefix(5))")
            XCTAssertFalse(held.isEmpty)
            XCTAssertThrowsError(try TaskDataset.sft(g, split: .heldout, count: 1, seed: 0))
            XCTAssertTrue(train.isDisjoint(with: held), "\(g.name): \(train.intersection(held).prefix(5))")
            XCTAssertTrue(sft.isDisjoint(with: held), "\(g.name): \(sft.intersection(held).prefix(5))")
            // Membership is a function of the problem alone.
            for q in held { XCTAssertEqual(DatasetSplit.of(task: g.name, prompt: q), .heldout) }
        }
    }

    func testSmallProblemSpaceRepeatsRatherThanFails() throws {
        // One-digit addition has 100 problems, about 30 in its train split: asking for 80 must still work.
        XCTAssertEqual(Set((0 ... 9).flatMap { a in (0 ... 9).map { DatasetSplit.of(task: "arithmetic", prompt: "\(a)+\($0)=") } }).count, 3)
        let g = try ArithmeticTask.level(1)
        let train = try TaskDataset.prompts(g, split: .train, count: 80, seed: 3)
        XCTAssertEqual(train.count, 80)
        let distinct = Set(train.map(\.prompt)).count
        XCTAssertLessThan(distinct, 80)
        XCTAssertGreaterThan(distinct, 5)
        // Its held-out split is the sums whose hash falls in the held-out bucket, each unseen in training.
        let heldOutSums = (0 ... 9).flatMap { a in (0 ... 9).map { "\(a)+\($0)=" } }.filter { DatasetSplit.of(task: g.name, prompt: $0) == .heldout }
        let held = try TaskDataset.prompts(g, split: .heldout, count: 150, seed: 3)
        XCTAssertEqual(held.count, 150)
        XCTAssertEqual(Set(held.map(\.prompt)), Set(heldOutSums))
    }

    func testAnswersAreAcceptedAndStringsStayInVocabulary() throws {
        for g in try allGenerators() {
            let verifier = IntegerAnswerVerifier.correct(g.answerFormat)
            let format = FormatVerifier(format: g.answerFormat)
            for split in DatasetSplit.allCases {
                let prompts = try TaskDataset.prompts(g, split: split, count: 60, seed: 11)
                let problems = try TaskDataset.problems(g, split: split, count: 60, seed: 11)
                XCTAssertEqual(prompts.map(\.prompt), problems.map(\.prompt), "same seed, same problems")
                if split != .heldout {
                    let sft = try TaskDataset.sft(g, split: split, count: 60, seed: 11)
                    XCTAssertEqual(sft.map(\.prompt), problems.map(\.prompt))
                    XCTAssertEqual(sft.map(\.completion), problems.map { g.answerFormat.completion(answer: $0.answer, reasoning: $0.reasoning) })
                }
                for (p, q) in zip(prompts, problems) {
                    let completion = g.answerFormat.completion(answer: q.answer, reasoning: q.reasoning)
                    // `boxed` needs a backslash and braces, which only a chat vocabulary has.
                    for text in [p.prompt, p.answer, p.id, p.task] + (g.answerFormat == .boxed ? [] : [completion]) {
                        XCTAssertNil(TaskAlphabet.firstInvalidCharacter(in: text), "\(text.debugDescription) leaves the vocabulary")
                    }
                    XCTAssertEqual(try verifier.checkedScore(completion: completion, for: p).reward, 1, "\(p) / \(completion)")
                    XCTAssertEqual(try format.checkedScore(completion: completion, for: p).reward, 1, completion)
                    XCTAssertEqual(try verifier.checkedScore(completion: "x", for: p).reward, 0)
                    XCTAssertLessThanOrEqual(p.prompt.count + completion.count, 64, "prompts stay short: \(p.prompt)")
                }
            }
        }
        XCTAssertEqual(TaskAlphabet.characters.count + 3, 64, "61 characters + <pad> <bos> <eos>")
    }

    func testArithmeticAnswersAreCorrect() throws {
        let g = try ArithmeticTask(maxDigits: 3, operators: ["+", "-", "*"], allowNegative: true)
        for p in try TaskDataset.prompts(g, split: .train, count: 200, seed: 5) {
            let expr = p.prompt.dropLast()
            let op = expr.dropFirst().firstIndex { "+-*".contains($0) }!
            let a = Int(expr[..<op])!, b = Int(expr[expr.index(after: op)...])!
            let v = expr[op] == "+" ? a + b : expr[op] == "-" ? a - b : a * b
            XCTAssertEqual(p.answer, String(v), p.prompt)
        }
        // Without negatives, subtraction never goes below zero.
        for p in try TaskDataset.prompts(ArithmeticTask.level(3), split: .train, count: 200, seed: 5) {
            XCTAssertFalse(p.answer.hasPrefix("-"), p.prompt)
        }
    }

    func testSequencesAreUnambiguousAndRight() throws {
        for p in try TaskDataset.prompts(SequenceTask.level(4), split: .train, count: 200, seed: 2) {
            let terms = p.prompt.dropLast(2).split(separator: " ").map { Int($0)! }
            let answers = Set(SequenceFamily.allCases.compactMap { $0.continuation(of: terms) })
            XCTAssertEqual(answers, [Int(p.answer)!], p.prompt)
        }
        XCTAssertEqual(SequenceFamily.geometric.continuation(of: [1, 2, 4, 8, 16]), 32)
        XCTAssertEqual(SequenceFamily.fibonacci.continuation(of: [1, 1, 2, 3, 5]), 8)
        XCTAssertEqual(SequenceFamily.squares.continuation(of: [4, 9, 16]), 25)
        XCTAssertEqual(SequenceFamily.primes.continuation(of: [7, 11, 13]), 17)
        XCTAssertNil(SequenceFamily.primes.continuation(of: [7, 13, 17]))
        XCTAssertEqual(SequenceFamily.arithmetic.continuation(of: [9, 6, 3]), 0)
    }

    func testInvalidSettingsAreRejected() {
        XCTAssertThrowsError(try TaskCatalog.generator(named: "algebra")) {
            XCTAssertEqual($0 as? TaskError, .unknownTask(name: "algebra", known: ["arithmetic", "sequence"]))
        }
        for bad in ["arithmetic:6", "arithmetic:words", "sequence:mixed", "algebra:1"] {
            XCTAssertThrowsError(try TaskCatalog.generator(spec: bad, answerFormat: .lastInteger), bad) { XCTAssertTrue("\($0)".contains(bad.split(separator: ":")[0]), "\($0)") }
        }
        XCTAssertThrowsError(try ArithmeticTask(operands: 4))
        XCTAssertThrowsError(try ArithmeticTask.level(9))
        XCTAssertThrowsError(try ArithmeticTask(operators: ["/"]))
        XCTAssertThrowsError(try SequenceTask(families: []))
    }
}
