import TetherKernels
import TetherModel
import XCTest

final class DecodingTests: XCTestCase {
    /// Prefill prompts of different lengths together, then feed tokens one at a time: every step's
    /// logits equal the full forward's logits at that position.
    func testKVCacheMatchesFullForwardTokenByToken() throws { try checkKVCache(.tiny, "tiny") }

    /// Each family switch through the cache: biases, q/k norms, head_dim ≠ hidden/heads (the
    /// cache holds kvHeads·head_dim per position), Llama 3 RoPE scaling, a sliding window the
    /// sequences fit in.
    func testKVCacheMatchesFullForwardForEveryVariant() throws {
        var qwen2 = LlamaConfig.tiny; qwen2.modelType = .qwen2
        var qwen3 = LlamaConfig.tiny; qwen3.modelType = .qwen3; qwen3.headDim = 32; qwen3.attentionBias = true
        var llama = LlamaConfig.tiny; llama.headDim = 12; llama.attentionBias = true
        llama.ropeScaling = Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8)
        var mistral = LlamaConfig.tiny; mistral.modelType = .mistral; mistral.slidingWindow = 16
        for (c, label) in [(qwen2, "qwen2"), (qwen3, "qwen3"), (llama, "llama"), (mistral, "mistral")] { try checkKVCache(c, label) }
    }

    /// SmolLM2-135M's attention layout (hidden 576, 9 query heads over 3 KV heads, head_dim 64,
    /// intermediate 1536, tied embeddings) on 2 layers and a 256-token vocabulary.
    static let smolLM2Layout = LlamaConfig(vocabSize: 256, hiddenSize: 576, numHiddenLayers: 2, numAttentionHeads: 9, numKeyValueHeads: 3,
                                           intermediateSize: 1536, ropeTheta: 100_000, tieWordEmbeddings: true, maxPositionEmbeddings: 64)

    func testKVCacheMatchesFullForwardAtSmolLM2HeadLayout() throws { try checkKVCache(Self.smolLM2Layout, "smollm2 layout") }

    /// Batched sampling at the real head layout with more than 8 live rows (attention and sampling
    /// split over threads, GEMMs split by columns), shared and distinct prompts and ragged stops:
    /// each drawn token's log-prob equals the full forward's on the finished sequence, a sequence
    /// stops right after its stop token and the remaining ones carry on as when sampled alone; with
    /// stop tokens ignored every sequence runs to its limit.
    func testBatchedSamplingAtSmolLM2HeadLayoutMatchesFullForwardWithRaggedStops() throws {
        let model = try LlamaModel(config: Self.smolLM2Layout, seed: 3, std: 0.08)
        let base = [[5, 17, 200, 3], [9, 9, 9, 40, 41, 42, 43], [100], [7, 8]]
        let prompts = (0..<12).map { base[$0 % base.count] }
        let limits = (0..<12).map { 6 + ($0 % 5) }
        let free = try model.generate(prompts: prompts, maxNewTokens: limits, sampling: SamplingParameters(temperature: 1, eosTokenId: -1), seed: 17)
        var counts: [Int: Int] = [:]
        for c in free { for t in c.tokens.dropLast() { counts[t, default: 0] += 1 } }
        let stop = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!.key
        let stopped = try model.generate(prompts: prompts, maxNewTokens: limits, sampling: SamplingParameters(temperature: 1, eosTokenId: stop), seed: 17)
        XCTAssertTrue(stopped.contains { $0.finishReason == .eos }, "some sequence stops early")
        XCTAssertTrue(stopped.contains { $0.finishReason == .length }, "some sequence runs to its limit")
        for (i, (f, s)) in zip(free, stopped).enumerated() {
            if let k = f.tokens.firstIndex(of: stop) {
                XCTAssertEqual(s.tokens, Array(f.tokens[...k]), "sequence \(i)")
                XCTAssertEqual(s.finishReason, .eos)
            } else {
                XCTAssertEqual(s.tokens, f.tokens, "sequence \(i)")
                XCTAssertEqual(s.finishReason, .length)
            }
            let scored = try model.sequenceLogProbs(TokenBatch(sequences: [prompts[i] + s.tokens]))
            for k in s.tokens.indices {
                XCTAssertEqual(s.rawLogProbs[k], scored.logProbs[prompts[i].count - 1 + k], accuracy: 1e-4, "sequence \(i) token \(k)")
                XCTAssertEqual(s.logProbs[k], s.rawLogProbs[k], "temperature 1 samples the raw distribution")
            }
        }
        // Sequence 5 alone (at index 5 of its batch, for its random stream) draws the same tokens.
        var alonePrompts = Array(repeating: [1], count: 6)
        alonePrompts[5] = prompts[5]
        let alone = try model.generate(prompts: alonePrompts, maxNewTokens: limits[5], sampling: SamplingParameters(temperature: 1, eosTokenId: stop), seed: 17)
        XCTAssertEqual(alone[5].tokens, stopped[5].tokens)
        // Ignoring stop tokens (what benchmarks sample) runs every sequence to its limit, as without a stop token.
        let ignoring = try model.generate(prompts: prompts, maxNewTokens: limits,
                                          sampling: SamplingParameters(temperature: 1, eosTokenId: stop, ignoresStopTokens: true), seed: 17)
        XCTAssertEqual(ignoring, free)
    }

    func checkKVCache(_ config: LlamaConfig, _ label: String) throws {
        let model = try LlamaModel(config: config, seed: 5, std: 0.1)
        var rng = SeededRandom(seed: 2)
        for e in model.layout.entries where e.shape.count == 1 {
            let w = model.tensor(e.name)!
            for i in 0..<w.count { w[i] = e.name.hasSuffix(".bias") ? Float(rng.nextNormal()) * 0.3 : 0.5 + rng.nextUnitFloat() }
        }
        let V = model.config.vocabSize
        let sequences = [[3, 9, 1, 4, 4, 8, 2, 7, 30], [5, 6, 7, 8, 9, 10, 11], [60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
        let promptLengths = [3, 1, 5]
        let full = try model.logits(TokenBatch(sequences: sequences))
        let T = sequences.map(\.count).max()!
        func fullRow(_ b: Int, _ t: Int) -> ArraySlice<Float> { full[((b * T + t) * V)..<((b * T + t + 1) * V)] }

        let cache = KVCache(config: model.config, slots: 4, capacity: 16)
        // Sequence b lives in slot b+1, to show slots need not be 0..<n.
        let prefill = try model.extend(cache: cache, sequences.indices.map { (slot: $0 + 1, tokens: Array(sequences[$0].prefix(promptLengths[$0]))) })
        for b in sequences.indices {
            assertClose(prefill[(b * V)..<((b + 1) * V)], fullRow(b, promptLengths[b] - 1), "\(label): prefill of sequence \(b)")
        }
        XCTAssertEqual(cache.lengths, [0, 3, 1, 5])
        var position = promptLengths
        while true {
            let live = sequences.indices.filter { position[$0] < sequences[$0].count }
            if live.isEmpty { break }
            let step = try model.extend(cache: cache, live.map { (slot: $0 + 1, tokens: [sequences[$0][position[$0]]]) })
            for (k, b) in live.enumerated() {
                assertClose(step[(k * V)..<((k + 1) * V)], fullRow(b, position[b]), "\(label): sequence \(b) position \(position[b])")
                position[b] += 1
            }
        }
    }

    func assertClose(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let worst = zip(a, b).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-4, what, file: file, line: line)
    }

    func testGenerateMatchesGreedyFullForwardAndReturnsRawLogProbs() throws {
        let model = try LlamaModel(config: .tiny, seed: 7, std: 0.2)
        let prompts = [[1, 2, 3], [9], [1, 2, 3], [40, 41]]
        let completions = try model.generate(prompts: prompts, maxNewTokens: 6, sampling: .greedy, seed: 0)
        XCTAssertEqual(completions[0], completions[2], "identical prompts share a prefix and decode identically")
        for (i, c) in completions.enumerated() {
            XCTAssertEqual(c.tokens.count, 6)
            XCTAssertEqual(c.finishReason, .length)
            // Re-score the whole sequence with the training forward: greedy picks the argmax and
            // rawLogProbs are its log-softmax.
            let seq = prompts[i] + c.tokens
            let scored = try model.sequenceLogProbs(TokenBatch(sequences: [seq]))
            let logits = try model.logits(TokenBatch(sequences: [seq]))
            let V = model.config.vocabSize
            for k in 0..<c.tokens.count {
                let t = prompts[i].count - 1 + k
                let row = logits[(t * V)..<((t + 1) * V)]
                XCTAssertEqual(c.tokens[k], row.indices.max { row[$0] < row[$1] }! - t * V)
                XCTAssertEqual(c.rawLogProbs[k], scored.logProbs[t], accuracy: 1e-4)
                XCTAssertEqual(c.logProbs[k], 0, "greedy samples from a point mass")
            }
        }
    }

    /// The prefill keeps logits only for each prompt's last position, so its workspace holds far
    /// fewer logit rows than input rows, and decoding more sequences than there were prompts grows
    /// it between calls: each sequence still samples what it samples alone (a long prompt
    /// first, then a batch with more sequences than prompt tokens, then the long prompt again).
    func testPrefillWithFewOutputRowsDecodesAsEachPromptAlone() throws {
        let model = try LlamaModel(config: .tiny, seed: 4, std: 0.3)
        let long = Array((0..<90).map { ($0 * 7) % 64 })
        let many = (0..<40).map { [($0 * 5) % 64, 3] }
        let sampling = SamplingParameters(temperature: 1)
        let alone = try model.generate(prompts: [long], maxNewTokens: 12, sampling: sampling, seed: 3)
        let batched = try model.generate(prompts: many, maxNewTokens: 5, sampling: sampling, seed: 9)
        let again = try model.generate(prompts: [long], maxNewTokens: 12, sampling: sampling, seed: 3)
        XCTAssertEqual(alone, again)
        for i in [0, 17, 39] {
            // Sequence i draws from stream (seed, i): alone, it must sit at index i of its batch.
            var prompts = Array(repeating: [1], count: i + 1)
            prompts[i] = many[i]
            let single = try model.generate(prompts: prompts, maxNewTokens: 5, sampling: sampling, seed: 9)
            // Tokens exactly; log-probs to rounding (GEMMs over other row counts sum in another order).
            XCTAssertEqual(single[i].tokens, batched[i].tokens, "sequence \(i)")
            for (a, b) in zip(single[i].rawLogProbs, batched[i].rawLogProbs) { XCTAssertEqual(a, b, accuracy: 1e-4, "sequence \(i)") }
        }
        // The long prompt's first token is the prefill's: greedy agrees with the full forward.
        let greedy = try model.generate(prompts: [long], maxNewTokens: 1, sampling: .greedy, seed: 0)
        let logits = try model.logits(TokenBatch(sequences: [long]))
        let V = model.config.vocabSize
        let last = logits[((long.count - 1) * V)..<(long.count * V)]
        XCTAssertEqual(greedy[0].tokens[0], last.indices.max { last[$0] < last[$1] }! - (long.count - 1) * V)
    }

    func testGenerationStopsAtEOSAndIsDeterministicPerSeed() throws {
        let model = try LlamaModel(config: .tiny, seed: 8, std: 0.5)
        let prompts = (0..<6).map { [$0 + 1, 2 * $0 + 3] }
        let a = try model.generate(prompts: prompts, maxNewTokens: 20, sampling: SamplingParameters(temperature: 1), seed: 11)
        let b = try model.generate(prompts: prompts, maxNewTokens: 20, sampling: SamplingParameters(temperature: 1), seed: 11)
        let c = try model.generate(prompts: prompts, maxNewTokens: 20, sampling: SamplingParameters(temperature: 1), seed: 12)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a.map(\.tokens), c.map(\.tokens))
        // A sequence's tokens do not depend on its batch neighbours.
        let alone = try model.generate(prompts: [prompts[0]], maxNewTokens: 20, sampling: SamplingParameters(temperature: 1), seed: 11)
        XCTAssertEqual(alone[0].tokens, a[0].tokens)
        // Use the most frequent sampled token as EOS: sequences stop right after it.
        var counts: [Int: Int] = [:]
        for c in a { for t in c.tokens { counts[t, default: 0] += 1 } }
        let eos = counts.max { $0.value < $1.value }!.key
        let stopped = try model.generate(prompts: prompts, maxNewTokens: 20, sampling: SamplingParameters(temperature: 1, eosTokenId: eos), seed: 11)
        for (full, s) in zip(a, stopped) {
            if let k = full.tokens.firstIndex(of: eos) {
                XCTAssertEqual(s.tokens, Array(full.tokens[...k]))
                XCTAssertEqual(s.finishReason, .eos)
            } else {
                XCTAssertEqual(s.tokens, full.tokens)
                XCTAssertEqual(s.finishReason, .length)
            }
        }
        XCTAssertTrue(stopped.contains { $0.finishReason == .eos })
        // Per-sequence limits.
        let limited = try model.generate(prompts: [[1], [2]], maxNewTokens: [1, 3], sampling: SamplingParameters(), seed: 1)
        XCTAssertEqual(limited.map(\.tokens.count), [1, 3])
    }

    /// With no explicit stop token, generation stops at any id of the config's eos list.
    func testGenerationStopsAtAnyEOSOfAConfigList() throws {
        var config = LlamaConfig.tiny
        let free = try LlamaModel(config: config, seed: 8, std: 0.5)
            .generate(prompts: [[3, 4]], maxNewTokens: 12, sampling: SamplingParameters(temperature: 0, eosTokenId: -1), seed: 0)[0].tokens
        let distinct = free.reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } }
        guard distinct.count >= 3 else { throw XCTSkip("greedy run repeats one token; nothing to stop at") }
        // List the third distinct token first: the stop must come at the second one, whichever list position.
        config.eosTokenIds = .list([distinct[2], distinct[1]])
        let model = try LlamaModel(config: config, seed: 8, std: 0.5)
        let stopped = try model.generate(prompts: [[3, 4]], maxNewTokens: 12, sampling: SamplingParameters(temperature: 0), seed: 0)[0]
        let cut = free.firstIndex { [distinct[2], distinct[1]].contains($0) }!
        XCTAssertEqual(stopped.tokens, Array(free[...cut]))
        XCTAssertEqual(stopped.finishReason, .eos)
    }
}
