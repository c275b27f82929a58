import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest

/// The whole decoder's backward against central finite differences, for a few entries of EVERY
/// tensor of the layout, with grouped-query attention, padding, and both tied and untied heads.
final class ModelGradientTests: XCTestCase {
    static func config(tied: Bool) -> LlamaConfig {
        LlamaConfig(vocabSize: 11, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                    intermediateSize: 24, tieWordEmbeddings: tied, maxPositionEmbeddings: 16)
    }

    func testGradientsOfEveryTensorUntied() throws { try checkModelGradients(Self.config(tied: false), "untied") }
    func testGradientsOfEveryTensorTied() throws { try checkModelGradients(Self.config(tied: true), "tied") }

    /// The fused LM head in blocks of 3 rows (10 rows: the last block is one padding row).
    func testGradientsWithBlockedLMHeadUntied() throws {
        try checkModelGradients(Self.config(tied: false), "untied, blocks of 3", lmHeadScratchBytes: 3 * 11 * 4)
    }

    func testGradientsWithBlockedLMHeadTied() throws {
        try checkModelGradients(Self.config(tied: true), "tied, blocks of 3", lmHeadScratchBytes: 3 * 11 * 4)
    }

    /// Qwen2: q/k/v biases (no o bias), tied embeddings.
    func testGradientsQwen2Biases() throws {
        var c = Self.config(tied: true)
        c.modelType = .qwen2
        try checkModelGradients(c, "qwen2")
    }

    /// Qwen3 with attention_bias: per-head q/k RMSNorm before RoPE, q/k/v/o biases, and a head_dim
    /// (8) that is not hidden/heads (4), so q_proj is [32, 16] and o_proj [16, 32].
    func testGradientsQwen3NormsBiasesAndWideHeads() throws {
        var c = Self.config(tied: false)
        c.modelType = .qwen3
        c.headDim = 8
        c.attentionBias = true
        try checkModelGradients(c, "qwen3")
    }

    /// Llama with attention_bias (q/k/v and o biases), head_dim 6 ≠ 16/4, and Llama 3 RoPE scaling
    /// with every frequency band present (original context 16: wavelengths 6.3, 135, 2900).
    func testGradientsLlamaBiasesHeadDimAndLlama3Rope() throws {
        var c = Self.config(tied: false)
        c.headDim = 6
        c.attentionBias = true
        c.ropeScaling = Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16)
        try checkModelGradients(c, "llama-bias-headdim-llama3")
    }

    func checkModelGradients(_ config: LlamaConfig, _ label: String, lmHeadScratchBytes: Int? = nil) throws {
        let tied = label
        let model = try LlamaModel(config: config, seed: 3, std: 0.3)
        if let lmHeadScratchBytes { model.lmHeadScratchBytes = lmHeadScratchBytes }
        // Norm weights away from 1 so their gradients are exercised off the identity; biases nonzero.
        var rng = SeededRandom(seed: 9)
        for e in model.layout.entries where e.shape.count == 1 {
            let t = model.tensor(e.name)!
            let bias = e.name.hasSuffix(".bias")
            for i in 0..<t.count { t[i] = (bias ? 0 : 1) + Float(rng.nextNormal()) * (bias ? 0.3 : 0.2) }
        }
        let batch = TokenBatch(sequences: [[1, 5, 2, 9, 3, 7], [4, 4, 10, 0]])
        let positions = batch.length - 1
        let cLogp = (0..<(2 * positions)).map { _ in Float(rng.nextNormal()) }
        let cEnt = (0..<(2 * positions)).map { _ in Float(rng.nextNormal()) }
        func loss() throws -> Double {
            let out = try model.sequenceLogProbs(batch, entropy: true)
            var s = 0.0
            for i in 0..<out.logProbs.count {
                // Padding positions carry coefficients too: they must contribute nothing.
                s += Double(cLogp[i]) * Double(out.logProbs[i]) + Double(cEnt[i]) * Double(out.entropy![i])
            }
            return s
        }
        model.zeroGradients()
        let out = try model.sequenceLogProbs(batch, entropy: true)
        XCTAssertEqual(out.mask, [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
        XCTAssertEqual(out.logProbs[8], 0)
        model.backward(dLogProbs: cLogp, dEntropy: cEnt)
        let analytic = model.gradients.toArray()

        let checked = try checkParameterGradients(
            "\(tied)", parameters: model.parameters.pointer, gradients: analytic,
            tensors: model.layout.entries.map { ($0.name, $0.offset, $0.count) }, spread: 3, loss: loss)
        XCTAssertEqual(checked, 4 * model.layout.entries.count)
    }

    /// −mean log p as an SFT loss: dℓ/dlogp = −1/N on real positions. A few SGD steps on one batch
    /// must lower it (the gradient points downhill through the whole stack).
    func testSFTStepsLowerCrossEntropy() throws {
        let model = try LlamaModel(config: .tiny, seed: 1)
        let batch = TokenBatch(sequences: [[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3]])
        func meanNLL() throws -> (Double, [Float]) {
            let out = try model.sequenceLogProbs(batch)
            let n = out.mask.reduce(0, +)
            let nll = -zip(out.logProbs, out.mask).map { Double($0 * $1) }.reduce(0, +) / Double(n)
            return (nll, out.mask.map { -$0 / n })
        }
        let (first, _) = try meanNLL()
        for _ in 0..<10 {
            model.zeroGradients()
            let (_, d) = try meanNLL()
            model.backward(dLogProbs: d)
            VectorOps.axpy(-0.5, model.gradients.pointer, model.parameters.pointer, model.parameters.count)
        }
        let (last, _) = try meanNLL()
        XCTAssertLessThan(last, first - 0.1, "SGD on the SFT loss should reduce it: \(first) → \(last)")
    }

    func testBadTokensAreTypedErrors() throws {
        let model = try LlamaModel(config: .tiny, seed: 1)
        XCTAssertThrowsError(try model.sequenceLogProbs(TokenBatch(sequences: [[1, 64, 2]]))) { error in
            XCTAssertEqual(error as? ModelError, .tokenOutOfRange(token: 64, vocabSize: 64))
        }
        XCTAssertThrowsError(try model.logits(TokenBatch(sequences: [Array(repeating: 1, count: 129)]))) { error in
            XCTAssertEqual(error as? ModelError, .sequenceTooLong(length: 129, maxPositions: 128))
        }
        XCTAssertThrowsError(try model.generate(prompts: [[1], []], maxNewTokens: 2, seed: 0)) { error in
            XCTAssertEqual(error as? ModelError, .emptySequence(index: 1))
        }
    }
}
