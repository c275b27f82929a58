import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest

/// The shared-prompt forward/backward (`sequenceLogProbs(GroupedTokenBatch)`) against the plain
/// one over the same sequences, and the forward-only pass (`tokenLogProbs`) against the training
/// forward: same log-probs, entropies and every parameter gradient.
final class SharedPromptTests: XCTestCase {
    static func small(tied: Bool) -> LlamaConfig {
        LlamaConfig(vocabSize: 97, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                    intermediateSize: 48, tieWordEmbeddings: tied, maxPositionEmbeddings: 64)
    }

    /// SmolLM2-135M's attention layout (hidden 576, 9 query / 3 key-value heads of 64, tied
    /// embeddings) with two layers and a small vocabulary and MLP.
    static let smolLM2Heads = LlamaConfig(
        vocabSize: 211, hiddenSize: 576, numHiddenLayers: 2, numAttentionHeads: 9, numKeyValueHeads: 3,
        intermediateSize: 96, tieWordEmbeddings: true, maxPositionEmbeddings: 128)

    /// Three groups: prompts of 5, 1 (no prefix rows at all) and 8 tokens; 4, 2 and 3 completions of
    /// ragged lengths, including a one-token completion, interleaved (sequences of a group are not
    /// adjacent).
    static func groupedBatch(vocab: Int, seed: UInt64 = 11, scale: Int = 1) throws -> GroupedTokenBatch {
        var rng = SeededRandom(seed: seed)
        func tokens(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) } }
        let prompts = [tokens(5 * scale), tokens(1), tokens(8 * scale)]
        let plan: [(group: Int, length: Int)] = [(0, 6), (2, 3), (0, 1), (1, 7), (2, 9), (0, 4), (1, 2), (2, 5), (0, 6)]
        return try GroupedTokenBatch(prompts: prompts, completions: plan.map { tokens($0.length * scale) }, groupOf: plan.map(\.group))
    }

    /// Coefficients on completion positions only (what an RL loss produces), zero elsewhere.
    static func coefficients(_ batch: GroupedTokenBatch, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        let positions = batch.length - 1
        var d = [Float](repeating: 0, count: batch.sequenceCount * positions)
        for s in 0..<batch.sequenceCount {
            let p = batch.prompts[batch.groupOf[s]].count
            for k in 0..<batch.completions[s].count { d[s * positions + p - 1 + k] = Float(rng.nextNormal()) }
        }
        return d
    }

    func testGroupedEqualsPlainUntied() throws { try checkGroupedEqualsPlain(Self.small(tied: false), "untied") }
    func testGroupedEqualsPlainTied() throws { try checkGroupedEqualsPlain(Self.small(tied: true), "tied") }

    /// Qwen3: per-head q/k norms, biases on q/k/v/o.
    func testGroupedEqualsPlainQwen3() throws {
        var c = Self.small(tied: false)
        c.modelType = .qwen3
        c.attentionBias = true
        try checkGroupedEqualsPlain(c, "qwen3")
    }

    func testGroupedEqualsPlainAtSmolLM2HeadLayout() throws {
        try checkGroupedEqualsPlain(Self.smolLM2Heads, "smollm2 heads", std: 0.05)
    }

    /// The fused LM head in blocks of 5 rows, so blocks straddle sequences and the prefix boundary.
    func testGroupedEqualsPlainWithBlockedLMHead() throws {
        try checkGroupedEqualsPlain(Self.small(tied: true), "blocks of 5", scratchRows: 5)
    }

    /// Log-probs and entropies equal entry by entry to 1e-5. Gradients are sums over every row with
    /// cancellation, and the two paths sum in different orders (a prompt row's gradient is one sum
    /// over G completions instead of G copies summed by the weight GEMM), so an entry-wise 1e-5 is
    /// below float32's noise: the plain step's own gradients move by up to 4e-5 of an entry
    /// between 1 and 2 BLAS threads at the SmolLM2 layout. Gradients are therefore compared per
    /// tensor in norm, ‖g_grouped − g_plain‖ ≤ 1e-5·‖g_plain‖ (measured ≤ 1.1e-6 at the SmolLM2
    /// layout, where plain vs plain is ≤ 7.6e-7), and entry by entry to 1e-4.
    func checkGroupedEqualsPlain(_ config: LlamaConfig, _ label: String, std: Double = 0.2, scratchRows: Int? = nil) throws {
        let grouped = try Self.groupedBatch(vocab: config.vocabSize)
        let plain = grouped.plain
        let dLogp = Self.coefficients(grouped, seed: 3), dEnt = Self.coefficients(grouped, seed: 4)
        func run(_ forward: (LlamaModel) throws -> SequenceLogProbs) throws -> (SequenceLogProbs, [Float]) {
            let model = try LlamaModel(config: config, seed: 6, std: std)
            if let scratchRows { model.lmHeadScratchBytes = scratchRows * config.vocabSize * 4 }
            var rng = SeededRandom(seed: 9)
            for e in model.layout.entries where e.shape.count == 1 {
                let t = model.tensor(e.name)!
                for i in 0..<t.count { t[i] = (e.name.hasSuffix(".bias") ? 0 : 1) + Float(rng.nextNormal()) * 0.2 }
            }
            model.zeroGradients()
            let out = try forward(model)
            model.backward(dLogProbs: dLogp, dEntropy: dEnt)
            return (out, model.gradients.toArray())
        }
        let (p, gPlain) = try run { try $0.sequenceLogProbs(plain, entropy: true) }
        let (g, gGrouped) = try run { try $0.sequenceLogProbs(grouped, entropy: true) }
        XCTAssertEqual(g.batch, p.batch)
        XCTAssertEqual(g.positions, p.positions)
        // Completion positions carry the same values; prompt-internal positions are 0 with mask 0.
        let completion = dLogp.map { $0 != 0 }
        XCTAssertEqual(g.mask, completion.map { $0 ? 1 : 0 }, label)
        func onCompletion(_ x: [Float]) -> [Float] { zip(x, completion).map { $1 ? $0 : 0 } }
        assertRelativelyEqual(g.logProbs, onCompletion(p.logProbs), "\(label): log-probs")
        assertRelativelyEqual(g.entropy!, onCompletion(p.entropy!), "\(label): entropies")
        let layout = ParameterLayout(config: config)
        for e in layout.entries {
            let grouped = Array(gGrouped[e.offset..<(e.offset + e.count)]), plain = Array(gPlain[e.offset..<(e.offset + e.count)])
            assertGradientsEqual(grouped, plain, "\(label): gradient of \(e.name)")
        }
        XCTAssertGreaterThan(gPlain.map(abs).max()!, 0)
    }

    /// The grouped backward against central finite differences of the grouped forward, a few
    /// entries of every tensor (GQA, a one-token prompt, ragged completions).
    func testGroupedGradientsMatchFiniteDifferences() throws {
        let config = LlamaConfig(vocabSize: 13, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                 intermediateSize: 24, tieWordEmbeddings: false, maxPositionEmbeddings: 32)
        let model = try LlamaModel(config: config, seed: 3, std: 0.3)
        var rng = SeededRandom(seed: 9)
        for e in model.layout.entries where e.shape.count == 1 {
            let t = model.tensor(e.name)!
            for i in 0..<t.count { t[i] = 1 + Float(rng.nextNormal()) * 0.2 }
        }
        let batch = try GroupedTokenBatch(prompts: [[1, 5, 2], [7]], completions: [[9, 3, 4], [0, 12], [6, 6, 1, 2], [11]],
                                          groupOf: [0, 1, 0, 0])
        let cLogp = Self.coefficients(batch, seed: 5), cEnt = Self.coefficients(batch, seed: 6)
        func loss() throws -> Double {
            let out = try model.sequenceLogProbs(batch, entropy: true)
            let entropy = out.entropy!
            var s = 0.0
            for i in out.logProbs.indices {
                s += Double(cLogp[i]) * Double(out.logProbs[i])
                s += Double(cEnt[i]) * Double(entropy[i])
            }
            return s
        }
        model.zeroGradients()
        _ = try model.sequenceLogProbs(batch, entropy: true)
        model.backward(dLogProbs: cLogp, dEntropy: cEnt)
        let analytic = model.gradients.toArray()
        _ = try checkParameterGradients("shared prompt", parameters: model.parameters.pointer, gradients: analytic,
                                        tensors: model.layout.entries.map { ($0.name, $0.offset, $0.count) }, spread: 3, loss: loss)
    }

    /// The forward-only pass gives the training forward's log-probs and entropies, plain and grouped,
    /// at a small shape and at SmolLM2's head layout, and leaves the training activations intact:
    /// a backward after it adds the same gradient as without it.
    func testForwardOnlyEqualsTrainingForward() throws {
        for (config, label) in [(Self.small(tied: false), "small"), (Self.smolLM2Heads, "smollm2 heads")] {
            let grouped = try Self.groupedBatch(vocab: config.vocabSize, seed: 21)
            let plain = grouped.plain
            let model = try LlamaModel(config: config, seed: 6, std: 0.05)
            let trained = try model.sequenceLogProbs(plain, entropy: true)
            let d = Self.coefficients(grouped, seed: 8)
            model.zeroGradients()
            model.backward(dLogProbs: d, dEntropy: d)
            let gradient = model.gradients.toArray()

            model.zeroGradients()
            _ = try model.sequenceLogProbs(plain, entropy: true)
            let forwardOnly = try model.tokenLogProbs(plain, entropy: true)
            let forwardOnlyGrouped = try model.tokenLogProbs(grouped, entropy: true)
            model.backward(dLogProbs: d, dEntropy: d)
            assertRelativelyEqual(forwardOnly.logProbs, trained.logProbs, "\(label): forward-only log-probs")
            assertRelativelyEqual(forwardOnly.entropy!, trained.entropy!, "\(label): forward-only entropies")
            XCTAssertEqual(forwardOnly.mask, trained.mask)
            let completion = d.map { $0 != 0 }
            func onCompletion(_ x: [Float]) -> [Float] { zip(x, completion).map { $1 ? $0 : 0 } }
            assertRelativelyEqual(forwardOnlyGrouped.logProbs, onCompletion(trained.logProbs), "\(label): grouped forward-only log-probs")
            assertRelativelyEqual(forwardOnlyGrouped.entropy!, onCompletion(trained.entropy!), "\(label): grouped forward-only entropies")
            assertRelativelyEqual(model.gradients.toArray(), gradient, "\(label): gradient after an interleaved forward-only pass")
        }
    }

    /// A model's workspaces are reused for every later batch that fits in them: after larger
    /// batches of the same kind (grouped, or plain) and their backward, a smaller batch's
    /// log-probs, entropies and gradients, training and forward-only, are those of a fresh model.
    func testWorkspaceReusedAfterLargerShapesChangesNothing() throws {
        let config = Self.small(tied: true)
        let small = try GroupedTokenBatch(prompts: [[3, 1, 4, 1], [5]], completions: [[9, 2], [6, 5, 3], [5]], groupOf: [0, 1, 0])
        let larger = [try Self.groupedBatch(vocab: config.vocabSize, seed: 31, scale: 2), try Self.groupedBatch(vocab: config.vocabSize, seed: 32)]
        let d = Self.coefficients(small, seed: 4)
        for grouped in [true, false] {
            func forward(_ model: LlamaModel, _ batch: GroupedTokenBatch) throws -> SequenceLogProbs {
                try grouped ? model.sequenceLogProbs(batch, entropy: true) : model.sequenceLogProbs(batch.plain, entropy: true)
            }
            func forwardOnly(_ model: LlamaModel, _ batch: GroupedTokenBatch) throws -> SequenceLogProbs {
                try grouped ? model.tokenLogProbs(batch, entropy: true) : model.tokenLogProbs(batch.plain, entropy: true)
            }
            func run(_ model: LlamaModel) throws -> [[Float]] {
                let trained = try forward(model, small)
                model.zeroGradients()
                model.backward(dLogProbs: d, dEntropy: d)
                let only = try forwardOnly(model, small)
                return [trained.logProbs, trained.entropy!, model.gradients.toArray(), only.logProbs, only.entropy!]
            }
            let fresh = try run(try LlamaModel(config: config, seed: 9, std: 0.2))
            // Unreserved (growing with the batches), reserved for all of them, and reserved for
            // the rows but too short a context (regrown beyond the reservation).
            let covering = WorkspaceReservation(rows: 400, sequences: 9, groups: 3, contextTokens: 40)
            let reservations: [WorkspaceReservation?] = [nil, covering, WorkspaceReservation(rows: 400, sequences: 9, groups: 3, contextTokens: 4)]
            for reservation in reservations {
                let used = try LlamaModel(config: config, seed: 9, std: 0.2)
                used.workspaceReservation = reservation
                for batch in [small] + larger {
                    _ = try forward(used, batch)
                    used.backward(dLogProbs: Self.coefficients(batch, seed: 5), dEntropy: Self.coefficients(batch, seed: 6))
                    _ = try forwardOnly(used, batch)
                }
                for (k, (a, b)) in zip(try run(used), fresh).enumerated() {
                    XCTAssertEqual(a, b, "grouped: \(grouped), reservation \(String(describing: reservation)), output \(k)")
                }
                if reservation == covering {
                    XCTAssertEqual(used.workspaceAllocations, 2, "one training and one forward-only workspace for every batch within the reservation")
                } else {
                    XCTAssertGreaterThan(used.workspaceAllocations, 2, "the batches outgrow the first workspaces")
                }
            }
        }
    }

    /// Bad grouped batches are typed errors naming the problem.
    func testBadGroupedBatchesAreTypedErrors() throws {
        XCTAssertThrowsError(try GroupedTokenBatch(prompts: [[1]], completions: [[2]], groupOf: [1])) { error in
            XCTAssertEqual(error as? ModelError, .invalidBatch("sequence 0 is in group 1, but there are 1 prompts"))
        }
        XCTAssertThrowsError(try GroupedTokenBatch(prompts: [[1], []], completions: [[2]], groupOf: [0])) { error in
            XCTAssertEqual(error as? ModelError, .emptySequence(index: 1))
        }
        XCTAssertThrowsError(try GroupedTokenBatch(prompts: [[1]], completions: [[2], [3]], groupOf: [0])) { error in
            XCTAssertEqual(error as? ModelError, .invalidBatch("2 completions but 1 group indices"))
        }
        let model = try LlamaModel(config: .tiny, seed: 1)
        XCTAssertThrowsError(try model.sequenceLogProbs(try GroupedTokenBatch(prompts: [[1, 2]], completions: [[3, 64]], groupOf: [0]))) { error in
            XCTAssertEqual(error as? ModelError, .tokenOutOfRange(token: 64, vocabSize: 64))
        }
        XCTAssertThrowsError(try model.tokenLogProbs(try GroupedTokenBatch(prompts: [[1, 99]], completions: [[3]], groupOf: [0]))) { error in
            XCTAssertEqual(error as? ModelError, .tokenOutOfRange(token: 99, vocabSize: 64))
        }
        XCTAssertThrowsError(try model.sequenceLogProbs(try GroupedTokenBatch(prompts: [Array(repeating: 1, count: 100)],
                                                                              completions: [Array(repeating: 2, count: 30)], groupOf: [0]))) { error in
            XCTAssertEqual(error as? ModelError, .sequenceTooLong(length: 129, maxPositions: 128))
        }
    }

    /// Sequences with equal prompts land in one group, in order of first appearance.
    func testGroupingByEqualPrompts() throws {
        let b = try GroupedTokenBatch(promptOfEach: [[1, 2], [3], [1, 2], [3], [4]], completions: [[5], [6], [7], [8], [9]])
        XCTAssertEqual(b.prompts, [[1, 2], [3], [4]])
        XCTAssertEqual(b.groupOf, [0, 1, 0, 1, 2])
        XCTAssertEqual(b.plain, TokenBatch(sequences: [[1, 2, 5], [3, 6], [1, 2, 7], [3, 8], [4, 9]]))
    }
}
