import Foundation
import TetherModel
import TetherRewards
import XCTest

final class PolicyEvaluatorTests: XCTestCase {
    /// Correct when the completion's first character has an even code point: about half the
    /// samples of a random model, so accuracy and pass@K are far from 0 and 1 and from each other.
    struct EvenFirstCharacter: Verifier {
        let name = "even"
        func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
            RewardBreakdown(name, (completion.unicodeScalars.first.map { $0.value % 2 == 0 } ?? false) ? 1 : 0)
        }
    }

    /// With K samples per problem, `accuracy` is the fraction of all n·K samples that are correct
    /// and `pass_at_k` the fraction of problems with at least one: both equal a count made directly
    /// from the same completions.
    func testAccuracyAndPassAtKEqualADirectCount() throws {
        let model = try LlamaModel(config: .tiny, seed: 11, std: 0.5)
        let tokenizer = Tokenizer.standard
        let prompts = (0..<6).map { TaskPrompt(id: "p\($0)", task: "t", prompt: "\($0)+\($0)=", answer: "\(2 * $0)") }
        let k = 4, maxNew = 3
        let e = try PolicyEvaluator.evaluate(model: model, tokenizer: tokenizer, prompts: prompts, verifier: { _ in EvenFirstCharacter() },
                                             samples: k, temperature: 1, maxNewTokens: maxNew, seed: 5)

        let flat = try prompts.flatMap { p in Array(repeating: try tokenizer.taskPromptIds(p.prompt), count: k) }
        let completions = try model.generate(prompts: flat, maxNewTokens: maxNew,
                                             sampling: SamplingParameters(temperature: 1, eosTokenId: tokenizer.eosId), seed: 5)
        var correct = 0, solved = 0
        for (i, p) in prompts.enumerated() {
            let right = try completions[i * k ..< (i + 1) * k].filter {
                try EvenFirstCharacter().score(completion: try PolicyEvaluator.text(of: $0.tokens, tokenizer: tokenizer), for: p).reward == 1
            }.count
            correct += right
            if right > 0 { solved += 1 }
        }
        XCTAssertEqual(e.n, 6)
        XCTAssertEqual(e.samples, k)
        XCTAssertEqual(e.correct, correct)
        XCTAssertEqual(e.accuracy, Double(correct) / Double(6 * k), accuracy: 1e-12)
        XCTAssertEqual(e.passAtK, Double(solved) / 6, accuracy: 1e-12)
        XCTAssertGreaterThan(correct, 0)
        XCTAssertLessThan(correct, 6 * k)
        XCTAssertGreaterThanOrEqual(e.passAtK, e.accuracy)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try e.json().utf8)) as? [String: Any])
        XCTAssertEqual(Set(json.keys), ["accuracy", "correct", "mean_reward", "n", "pass_at_k", "samples", "temperature"])
    }
}
