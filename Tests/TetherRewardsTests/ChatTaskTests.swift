import Foundation
import TetherModel
import TetherRewards
import XCTest

/// The chat tasks: every level named in configs, its splits, its answers (recomputed here by code
/// that shares nothing with the generators), its phrasings, and its rendering through SmolLM2's
/// chat template.
final class ChatTaskTests: XCTestCase {
    static let levels = ["arithmetic:1", "arithmetic:2", "arithmetic:mixed", "arithmetic:word", "sequence"]

    func generator(_ spec: String, _ format: AnswerFormat = .lastInteger) throws -> any TaskGenerator {
        try TaskCatalog.generator(spec: spec, answerFormat: format)
    }

    /// The prompt's single user turn (empty when it has none, which the role check reports).
    func userText(_ p: TaskPrompt) -> String {
        XCTAssertEqual(p.messages?.map(\.role), ["user"], p.id)
        return p.messages?.first?.content ?? ""
    }

    /// Held-out splits resolve a few points: ≥ 500 distinct problems at every level but one-digit
    /// addition, whose held-out split is the a+b pairs of the held-out hash bucket.
    func testHeldOutSplitsAreLargeEnough() throws {
        for spec in Self.levels {
            let held = try TaskDataset.prompts(generator(spec), split: .heldout, count: 700, seed: 0)
            let distinct = Set(held.map(\.prompt)).count
            if spec == "arithmetic:1" {
                let g = try generator(spec)
                let pairs = (0 ... 9).flatMap { a in (0 ... 9).map { "\(a)+\($0)=" } }.filter { DatasetSplit.of(task: g.name, prompt: $0) == .heldout }
                XCTAssertEqual(Set(held.map(\.prompt)), Set(pairs), spec)
                XCTAssertEqual(distinct, 23, spec)
            } else {
                XCTAssertGreaterThanOrEqual(distinct, 500, spec)
            }
        }
    }

    /// No held-out problem is a training or SFT problem, and the held-out phrasing appears in no
    /// training prompt.
    func testTrainAndHeldOutNeverOverlap() throws {
        for spec in Self.levels {
            let g = try generator(spec)
            let train = try TaskDataset.prompts(g, split: .train, count: 2000, seed: 1)
            let sft = try TaskDataset.prompts(g, split: .sft, count: 1000, seed: 2)
            let held = try TaskDataset.prompts(g, split: .heldout, count: 600, seed: 3)
            let heldOutLead = String(g.phrasing.heldOut.prefix { $0 != "{" }).trimmingCharacters(in: .whitespaces)
            XCTAssertFalse(heldOutLead.isEmpty)
            for p in train + sft {
                XCTAssertFalse(userText(p).contains(heldOutLead), "\(spec): training prompt in the held-out phrasing: \(userText(p))")
            }
            for p in held { XCTAssertTrue(userText(p).hasPrefix(heldOutLead), "\(spec): \(userText(p))") }
            // Training uses every training phrasing.
            let leads = Set(train.map { t in g.phrasing.training.first { userTextMatches(userText(t), $0) } ?? "none" })
            XCTAssertEqual(leads, Set(g.phrasing.training), spec)
            let trained = Set((train + sft).map(\.prompt))
            XCTAssertTrue(trained.isDisjoint(with: held.map(\.prompt)), "\(spec): \(trained.intersection(held.map(\.prompt)).prefix(3))")
        }
    }

    /// Whether `text` is `template` with some question in place of `{q}`.
    func userTextMatches(_ text: String, _ template: String) -> Bool {
        let parts = template.components(separatedBy: "{q}")
        return text.hasPrefix(parts[0]) && (parts[1].isEmpty || text.contains(parts[1]))
            && (parts[0].isEmpty ? !Set(["Solve", "Word", "Answer the", "Read"]).contains { text.hasPrefix($0) } : true)
    }

    func testAnswersAreRight() throws {
        for spec in Self.levels {
            for split in DatasetSplit.allCases {
                for p in try TaskDataset.prompts(generator(spec), split: split, count: 300, seed: 4) {
                    XCTAssertEqual(Self.solve(spec, p.prompt), Int(p.answer), "\(spec): \(p.prompt) → \(p.answer)")
                    // The chat question shows the same problem.
                    let numbers = Self.numbers(in: p.prompt)
                    XCTAssertEqual(Self.numbers(in: userText(p)), numbers, p.prompt)
                }
            }
        }
        // Level 2 is two-digit addition.
        for p in try TaskDataset.prompts(generator("arithmetic:2"), split: .train, count: 200, seed: 5) {
            let operands = p.prompt.dropLast().split(separator: "+").map { Int($0)! }
            XCTAssertTrue(operands.count == 2 && operands.allSatisfy { (10 ... 99).contains($0) }, p.prompt)
        }
        // Mixed operations use all three operators across the level, with precedence.
        let mixed = try TaskDataset.prompts(generator("arithmetic:mixed"), split: .train, count: 300, seed: 6).map(\.prompt).joined()
        XCTAssertTrue(mixed.contains("*") && mixed.contains("+") && mixed.contains("-"))
    }

    static func numbers(in text: String) -> [Int] {
        text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    }

    /// The answer, computed from the canonical prompt alone.
    static func solve(_ spec: String, _ prompt: String) -> Int? {
        switch spec {
        case "sequence":
            let t = numbers(in: prompt)
            let n = t.count
            if Set(zip(t, t.dropFirst()).map { $1 - $0 }).count == 1 { return t[n - 1] + (t[1] - t[0]) }
            if t[0] != 0, t[1] % t[0] == 0, zip(t, t.dropFirst()).allSatisfy({ $0 * (t[1] / t[0]) == $1 }) { return t[n - 1] * (t[1] / t[0]) }
            if (2 ..< n).allSatisfy({ t[$0] == t[$0 - 1] + t[$0 - 2] }) { return t[n - 1] + t[n - 2] }
            let roots = t.map { Int(Double($0).squareRoot().rounded()) }
            if zip(roots, t).allSatisfy({ $0 * $0 == $1 }), zip(roots, roots.dropFirst()).allSatisfy({ $1 == $0 + 1 }) { return (roots[n - 1] + 1) * (roots[n - 1] + 1) }
            var next = t[n - 1] + 1
            while (2 ..< next).contains(where: { next % $0 == 0 }) { next += 1 }
            return next
        case "arithmetic:word":
            let v = numbers(in: prompt)
            guard v.count >= 3 else { return nil }
            let (a, b, c) = (v[0], v[1], v[2])
            if prompt.contains("buys") { return a + b - c }
            if prompt.contains("boxes with") || prompt.contains("times as many") { return a * b + c }
            if prompt.contains("packs") { return a * b - c }
            if prompt.contains("share them") { return (a + b) / c }
            if prompt.contains("lost") { return a - b + c }
            return nil
        default:
            // a (op b)*: products first, then sums and differences left to right.
            var sum = 0, product = 0, sign = 1, current = ""
            var pendingProduct: Int?
            func flushNumber() {
                let n = Int(current)!
                current = ""
                product = pendingProduct.map { $0 * n } ?? n
                pendingProduct = nil
            }
            for ch in prompt.dropLast() {
                if ch.isNumber { current.append(ch); continue }
                flushNumber()
                if ch == "*" { pendingProduct = product } else { sum += sign * product; sign = ch == "-" ? -1 : 1 }
            }
            flushNumber()
            return sum + sign * product
        }
    }

    /// Every phrasing renders through SmolLM2's ChatML template with the turn markers; the toy
    /// tokenizer (no template) keeps getting the canonical prompt.
    func testChatRenderingWithSmolLM2Template() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let toyPrompt = try TaskDataset.prompts(generator("arithmetic:1"), split: .heldout, count: 1, seed: 0)[0]
        XCTAssertEqual(try toyPrompt.promptIds(.standard), try Tokenizer.standard.promptIds(toyPrompt.prompt))
        let dir = repo + "/models/smollm2-135m-instruct"
        guard FileManager.default.fileExists(atPath: dir + "/tokenizer.json") else {
            throw XCTSkip("no SmolLM2 checkpoint at models/smollm2-135m-instruct (scripts/get-model smollm2-135m-instruct)")
        }
        let tokenizer = try Tokenizer.read(from: dir)
        let chat = try ChatFormat(tokenizer: tokenizer)
        for spec in Self.levels {
            for (split, format) in [(DatasetSplit.heldout, AnswerFormat.boxed), (.train, .lastInteger), (.sft, .tagged)] {
                let p = try TaskDataset.prompts(generator(spec, format), split: split, count: 1, seed: 9)[0]
                let text = userText(p)
                let rendered = try chat.render(try XCTUnwrap(p.messages))
                XCTAssertTrue(rendered.contains("<|im_start|>user\n" + text + "<|im_end|>\n"), rendered)
                XCTAssertTrue(rendered.hasSuffix("<|im_start|>assistant\n"), rendered)
                XCTAssertTrue(rendered.contains(format.instruction), rendered)
                let heldOutLead = String(try generator(spec).phrasing.heldOut.prefix(12))
                if split == .heldout { XCTAssertTrue(rendered.contains(heldOutLead), rendered) }
                let ids = try p.promptIds(tokenizer)
                XCTAssertEqual(ids, try tokenizer.encode(rendered, addSpecialTokens: false))
                XCTAssertEqual(try tokenizer.decode(ids, skipSpecialTokens: false), rendered)
            }
        }
    }
}
