import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest

/// The fused, blocked LM head (`lmHeadScratchBytes`) against the one-block computation and
/// against full logits: the same log-probs, entropies and gradients whatever the block size.
final class FusedLMHeadTests: XCTestCase {
    static func config(tied: Bool) -> LlamaConfig {
        LlamaConfig(vocabSize: 301, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                    intermediateSize: 48, tieWordEmbeddings: tied, maxPositionEmbeddings: 64)
    }

    /// 5 sequences of 9–23 tokens: 110 rows, of which 37 are padding.
    static func batch() -> TokenBatch {
        var rng = SeededRandom(seed: 4)
        let lengths = [23, 9, 17, 23, 12]
        return TokenBatch(sequences: lengths.map { n in (0..<n).map { _ in Int(rng.next() % 301) } })
    }

    func testBlockedHeadEqualsOneBlockUntied() throws { try checkBlockedEqualsOneBlock(tied: false) }
    func testBlockedHeadEqualsOneBlockTied() throws { try checkBlockedEqualsOneBlock(tied: true) }

    /// Blocks of 7 rows (7 does not divide 110; some blocks are all padding, some mixed) against the
    /// whole batch in one block; some rows get zero coefficients, as prompt positions do in RL.
    func checkBlockedEqualsOneBlock(tied: Bool) throws {
        let label = tied ? "tied" : "untied"
        let batch = Self.batch()
        let rows = batch.batch * (batch.length - 1)
        var rng = SeededRandom(seed: 8)
        let dLogp = (0..<rows).map { r in r % 5 == 0 ? 0 : Float(rng.nextNormal()) }
        let dEnt = (0..<rows).map { r in r % 3 == 0 ? 0 : Float(rng.nextNormal()) }

        func run(scratchRows: Int?) throws -> (SequenceLogProbs, [Float]) {
            let model = try LlamaModel(config: Self.config(tied: tied), seed: 6, std: 0.2)
            if let scratchRows { model.lmHeadScratchBytes = scratchRows * 301 * 4 }
            model.zeroGradients()
            let out = try model.sequenceLogProbs(batch, entropy: true)
            model.backward(dLogProbs: dLogp, dEntropy: dEnt)
            return (out, model.gradients.toArray())
        }
        let (whole, gWhole) = try run(scratchRows: nil)
        let (blocked, gBlocked) = try run(scratchRows: 7)
        XCTAssertEqual(whole.mask, blocked.mask)
        assertRelativelyEqual(blocked.logProbs, whole.logProbs, "\(label): log-probs")
        assertRelativelyEqual(blocked.entropy!, whole.entropy!, "\(label): entropies")
        let layout = try LlamaModel(config: Self.config(tied: tied)).layout
        for e in layout.entries {
            assertGradientsEqual(Array(gBlocked[e.offset..<(e.offset + e.count)]), Array(gWhole[e.offset..<(e.offset + e.count)]),
                                 "\(label): gradient of \(e.name)")
        }
        XCTAssertGreaterThan(gWhole.map(abs).max()!, 0)
    }

    /// Log-probs and entropies of the fused head equal those of the full logits (log-softmax in
    /// Double), for one block and for blocks of 7 rows.
    func testLogProbsAndEntropiesMatchFullLogits() throws {
        let batch = Self.batch()
        let model = try LlamaModel(config: Self.config(tied: false), seed: 6, std: 0.5)
        let V = 301, T = batch.length
        let logits = try model.logits(batch)
        for scratchRows in [1000, 7] {
            model.lmHeadScratchBytes = scratchRows * V * 4
            let out = try model.sequenceLogProbs(batch, entropy: true)
            for b in 0..<batch.batch {
                for t in 0..<(T - 1) {
                    let r = b * (T - 1) + t
                    guard t + 1 < batch.lengths[b] else {
                        XCTAssertEqual(out.logProbs[r], 0); XCTAssertEqual(out.entropy![r], 0); continue
                    }
                    let z = logits[((b * T + t) * V)..<((b * T + t + 1) * V)].map(Double.init)
                    let m = z.max()!
                    let lse = m + log(z.map { exp($0 - m) }.reduce(0, +))
                    let entropy = -z.map { exp($0 - lse) * ($0 - lse) }.reduce(0, +)
                    XCTAssertEqual(Double(out.logProbs[r]), z[batch[b, t + 1]] - lse, accuracy: 1e-5 * max(1, abs(lse)))
                    XCTAssertEqual(Double(out.entropy![r]), entropy, accuracy: 1e-5 * max(1, entropy))
                }
            }
        }
    }

    /// A second backward after one forward recomputes the logits (the first overwrote them with
    /// dlogits), so it adds the same gradient again.
    func testSecondBackwardAddsTheSameGradient() throws {
        let batch = Self.batch()
        let rows = batch.batch * (batch.length - 1)
        for scratchRows in [1000, 7] {
            let model = try LlamaModel(config: Self.config(tied: true), seed: 6, std: 0.2)
            model.lmHeadScratchBytes = scratchRows * 301 * 4
            let d = (0..<rows).map { Float($0 % 7) - 3 }
            model.zeroGradients()
            _ = try model.sequenceLogProbs(batch, entropy: true)
            model.backward(dLogProbs: d, dEntropy: d)
            let once = model.gradients.toArray()
            model.backward(dLogProbs: d, dEntropy: d)
            assertRelativelyEqual(model.gradients.toArray(), once.map { 2 * $0 }, "second backward, blocks of \(scratchRows)")
        }
    }
}
