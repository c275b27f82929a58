import Foundation
import TetherKernels
import TetherModel
import TetherRL
import TetherTestSupport
import XCTest

final class SFTTrainerTests: XCTestCase {
    /// Single-digit additions "a+b=" → "c": learnable by a tiny model in a few dozen steps.
    static func additionSet(_ tokenizer: Tokenizer) throws -> [SFTSequence] {
        var out: [SFTSequence] = []
        for a in 0..<10 { for b in 0..<10 {
            out.append(try SFTSequence(SFTExample(prompt: "\(a)+\(b)=", completion: "\(a + b)"), tokenizer: tokenizer))
        } }
        return out
    }

    func testSequenceMasksTheCompletionAndEOS() throws {
        let tok = Tokenizer.standard
        let s = try SFTSequence(SFTExample(prompt: "1+2=", completion: "3"), tokenizer: tok)
        XCTAssertEqual(s.tokens, [1] + (try CharTokenizer.standard.encode("1+2=3")) + [2])
        XCTAssertEqual(s.completionStart, 5)
        XCTAssertEqual(s.completionTokenCount, 2)
    }

    func testHeldOutLossFallsOnBuiltInSet() throws {
        BLASThreads.set(1)
        let tok = Tokenizer.standard
        var config = LlamaConfig.tiny
        config.maxPositionEmbeddings = 16
        let model = try LlamaModel(config: config, seed: 3)
        let (train, heldOut) = SFTTrainer.split(try Self.additionSet(tok), heldOutFraction: 0.2, seed: 1)
        XCTAssertEqual(heldOut.count, 20)
        XCTAssertEqual(Set(train.map(\.tokens)).intersection(heldOut.map(\.tokens)).count, 0)
        let trainer = SFTTrainer(model: model, options: SFTOptions(steps: 60, batchSize: 16, learningRate: 5e-3, evaluateEvery: 20, seed: 2))
        var reports = 0
        let summary = try trainer.train(train, heldOut: heldOut) { p in
            reports += 1
            XCTAssertTrue(p.loss.isFinite)
        }
        XCTAssertEqual(reports, 60)
        let before = try XCTUnwrap(summary.initialHeldOutLoss), after = try XCTUnwrap(summary.finalHeldOutLoss)
        print("SFT held-out loss \(before) → \(after) in \(summary.seconds) s")
        // Uniform over 64 tokens is ln 64 ≈ 4.16; the completion tokens (digits and <eos>) are far more predictable.
        XCTAssertGreaterThan(before, 3.5)
        XCTAssertLessThan(after, before - 1.5)
        XCTAssertEqual(try trainer.evaluate(heldOut), after, accuracy: 1e-9)
        XCTAssertEqual(trainer.trainerState().step, 60)
        XCTAssertEqual(trainer.optimizerState().step, 60)
    }

    /// The loss is the mean −log p over completion targets only: check it against a direct sum
    /// of sequenceLogProbs, and that changing the prompt's last token's target does not count.
    func testLossCountsOnlyCompletionTargets() throws {
        let tok = Tokenizer.standard
        let model = try LlamaModel(config: .tiny, seed: 9, std: 0.2)
        let seqs = [try SFTSequence(SFTExample(prompt: "12+3=", completion: "15"), tokenizer: tok),
                    try SFTSequence(SFTExample(prompt: "9=", completion: "nine"), tokenizer: tok)]
        let trainer = SFTTrainer(model: model, options: SFTOptions(batchSize: 8))
        let loss = try trainer.evaluate(seqs)
        var sum = 0.0, n = 0
        for s in seqs {
            let lp = try model.sequenceLogProbs(TokenBatch(sequences: [s.tokens]))
            for t in (s.completionStart - 1)..<(s.tokens.count - 1) { sum -= Double(lp.logProbs[t]); n += 1 }
        }
        XCTAssertEqual(n, 3 + 5)
        XCTAssertEqual(loss, sum / Double(n), accuracy: 1e-5)
    }

    func testBadJSONLNamesTheLine() throws {
        let tok = Tokenizer.standard
        func parse(_ text: String) throws -> [SFTSequence] {
            try SFTDataset.parse(Data(text.utf8), path: "d.jsonl", tokenizer: tok, maxLength: 32)
        }
        XCTAssertEqual(try parse("{\"prompt\": \"1+1=\", \"completion\": \"2\"}\n\n{\"prompt\": \"a\", \"completion\": \"b\"}\n").count, 2)
        let cases: [(String, Int, String)] = [
            ("{\"prompt\": \"1\", \"completion\": \"2\"}\n{oops\n", 2, "not a JSON object"),
            ("\n{\"prompt\": \"1\"}\n", 2, "completion"),
            ("{\"prompt\": 5, \"completion\": \"x\"}", 1, "prompt"),
            ("{\"prompt\": \"1\", \"completion\": \"2\"}\n{\"prompt\": \"Hi\", \"completion\": \"x\"}", 2, "\"H\""),
            ("{\"prompt\": \"\(String(repeating: "1", count: 40))\", \"completion\": \"x\"}", 1, "positions"),
        ]
        for (text, line, needle) in cases {
            XCTAssertThrowsError(try parse(text)) { e in
                guard let d = e as? SFTDataError else { return XCTFail("\(e)") }
                XCTAssertEqual(d.line, line, "\(d)")
                XCTAssertTrue(d.description.contains("d.jsonl:\(line):") && d.description.contains(needle), d.description)
            }
        }
        XCTAssertThrowsError(try parse("\n\n"))
    }
}

final class SFTResumeTests: XCTestCase {
    /// 12 steps straight, or 5 steps → checkpoint on disk → load → restore → 7 more steps: the
    /// weights must be bit-identical (same moments, schedule position and data order).
    func testResumingFromACheckpointEqualsAnUninterruptedRun() throws {
        BLASThreads.set(1)
        let tok = Tokenizer.standard
        let data = Array(try SFTTrainerTests.additionSet(tok).prefix(40))
        let options = SFTOptions(steps: 12, batchSize: 16, learningRate: 3e-3, seed: 4)  // 40 examples: epochs wrap mid-run

        let straight = try LlamaModel(config: .tiny, seed: 8)
        _ = try SFTTrainer(model: straight, options: options).train(data)

        let a = try LlamaModel(config: .tiny, seed: 8)
        let ta = SFTTrainer(model: a, options: options)
        XCTAssertEqual(try ta.train(data, stopAt: 5).steps, 5)
        let dir = try makeTemporaryDirectory(self, "tether-sft-resume") + "/ckpt"
        try a.save(to: dir, trainerState: ta.trainerState(), optimizerState: ta.optimizerState())

        let (b, ckpt) = try LlamaModel.load(from: dir)
        let tb = SFTTrainer(model: b, options: options)
        try tb.restore(trainerState: XCTUnwrap(ckpt.trainerState), optimizerState: XCTUnwrap(ckpt.optimizerState))
        let summary = try tb.train(data)
        XCTAssertEqual(summary.steps, 7)
        XCTAssertEqual(tb.step, 12)
        XCTAssertEqual(b.parameters.toArray().map(\.bitPattern), straight.parameters.toArray().map(\.bitPattern))

        var wrongSeed = options
        wrongSeed.seed = 5
        XCTAssertThrowsError(try SFTTrainer(model: b, options: wrongSeed)
            .restore(trainerState: XCTUnwrap(ckpt.trainerState), optimizerState: XCTUnwrap(ckpt.optimizerState)))
    }
}
