import Dispatch
import TetherKernels

/// Why a completion ended.
public enum FinishReason: String, Sendable, Codable, Equatable {
    /// The stop token was sampled (it is the last entry of `tokens`).
    case eos
    /// The per-sequence limit of new tokens was reached.
    case length
}

/// The new tokens sampled after one prompt, with per-token log-probs (see `SampledToken`).
public struct Completion: Sendable, Equatable {
    public var tokens: [Int]
    /// log-prob under the temperature-scaled, top-k/top-p truncated distribution sampled from.
    public var logProbs: [Float]
    /// log-prob under the untruncated temperature-1 softmax of the same logits.
    public var rawLogProbs: [Float]
    public var finishReason: FinishReason
}

extension LlamaModel {
    /// Samples completions for many prompts at once with a KV cache: prompts of different lengths
    /// are prefilled together (identical prompts — a GRPO group — only once, then their cached
    /// prefix is shared, not copied: `KVCache.sharePrefix`), then every live sequence advances one
    /// token per step in one batched forward. Sequence i draws from its own random stream
    /// `(seed, i)`, so its tokens do not depend on which other prompts share the batch. `streams`
    /// names each sequence's stream instead of its index (e.g. by the prompt's draw index, so a
    /// prompt samples the same random numbers in every run with the seed, whatever ticket it
    /// arrives in).
    /// `sharePromptPrefixes: false` prefills every prompt separately (same results, more work).
    public func generate(prompts: [[Int]], maxNewTokens: Int, sampling: SamplingParameters = SamplingParameters(), seed: UInt64,
                         streams: [UInt64]? = nil, sharePromptPrefixes: Bool = true) throws -> [Completion] {
        try generate(prompts: prompts, maxNewTokens: Array(repeating: maxNewTokens, count: prompts.count), sampling: sampling, seed: seed,
                     streams: streams, sharePromptPrefixes: sharePromptPrefixes)
    }

    public func generate(prompts: [[Int]], maxNewTokens: [Int], sampling: SamplingParameters = SamplingParameters(), seed: UInt64,
                         streams: [UInt64]? = nil, sharePromptPrefixes: Bool = true) throws -> [Completion] {
        precondition(maxNewTokens.count == prompts.count, "one maxNewTokens per prompt")
        precondition(streams == nil || streams!.count == prompts.count, "one stream per prompt")
        let n = prompts.count
        guard n > 0 else { return [] }
        for (i, prompt) in prompts.enumerated() {
            guard !prompt.isEmpty else { throw ModelError.emptySequence(index: i) }
            for t in prompt where t < 0 || t >= config.vocabSize { throw ModelError.tokenOutOfRange(token: t, vocabSize: config.vocabSize) }
            let total = prompt.count + max(0, maxNewTokens[i] - 1)
            if total > config.maxPositionEmbeddings { throw ModelError.sequenceTooLong(length: total, maxPositions: config.maxPositionEmbeddings) }
            try checkSlidingWindow(length: total)
        }
        // An explicit stop token, else every eos id of the config (Llama 3 instruct lists several).
        let stopTokens = sampling.ignoresStopTokens ? [] : (sampling.eosTokenId.map { Set([$0]) } ?? Set(config.eosTokenIds?.all ?? []))
            .union(sampling.stopTokenIds ?? [])
        let capacity = zip(prompts, maxNewTokens).map { $0.count + max(0, $1) }.max()!
        let cache: KVCache
        if let c = generationCache, c.slots >= n, c.capacity >= capacity { cache = c; cache.reset() } else {
            // Half as long again as the last cache when it was too short: its pages fault in only
            // where sequences reach (`FloatBuffer(reserving:)`), so the room is nearly free and a
            // slightly longer prompt next step does not fault a whole cache in again.
            let previous = generationCache
            generationCache = nil
            cache = KVCache(config: config, slots: max(n, previous?.slots ?? 0),
                            capacity: max(capacity, (previous?.capacity ?? 0) * 3 / 2))
            generationCache = cache
        }
        let V = config.vocabSize

        // Prefill the distinct prompts in one forward.
        var firstSlot: [[Int]: Int] = [:]
        var unique: [(slot: Int, tokens: [Int])] = []
        for (i, p) in prompts.enumerated() where !sharePromptPrefixes || firstSlot[p] == nil {
            if firstSlot[p] == nil { firstSlot[p] = i }
            unique.append((slot: i, tokens: p))
        }
        let prefillLogits = try extend(cache: cache, unique)
        var logitRow = [Int](repeating: 0, count: n)
        var uniqueIndex: [Int: Int] = [:]
        for (k, u) in unique.enumerated() { uniqueIndex[u.slot] = k }
        for i in 0..<n {
            let src = sharePromptPrefixes ? firstSlot[prompts[i]]! : i
            if src != i { cache.sharePrefix(of: src, with: i) }
            logitRow[i] = uniqueIndex[src]!
        }

        // Per-sequence random streams and per-worker sampler scratch, in buffers the sampling
        // workers index directly (row k of a step touches only rngs[live[k]] and drawn[k]).
        let rngs = UnsafeMutableBufferPointer<SeededRandom>.allocate(capacity: n)
        _ = rngs.initialize(from: (0..<n).map { SeededRandom(seed: seed, stream: streams?[$0] ?? UInt64($0)) })
        let workers = max(1, BLASThreads.current)
        let samplers = UnsafeMutableBufferPointer<TokenSampler>.allocate(capacity: workers)
        _ = samplers.initialize(from: (0..<workers).map { _ in TokenSampler(vocabSize: V) })
        let drawn = UnsafeMutableBufferPointer<SampledToken>.allocate(capacity: n)
        defer {
            rngs.deallocate()
            samplers.deinitialize()
            samplers.deallocate()
            drawn.deallocate()
        }
        var completions = (0..<n).map { i in
            Completion(tokens: [], logProbs: [], rawLogProbs: [], finishReason: .length)
        }
        for i in 0..<n {
            completions[i].tokens.reserveCapacity(maxNewTokens[i])
            completions[i].logProbs.reserveCapacity(maxNewTokens[i])
            completions[i].rawLogProbs.reserveCapacity(maxNewTokens[i])
        }
        var live = (0..<n).filter { maxNewTokens[$0] > 0 }
        var next = live
        // Decoding steps run on weights packed for them (`DecodeWeights`), from the weights as they are now.
        let packed = maxNewTokens.contains { $0 > 1 } ? packedDecodeWeights() : nil
        // Step 0 samples from the prefill logits; later steps from the decode workspace.
        var fromPrefill = true
        while !live.isEmpty {
            next.removeAll(keepingCapacity: true)
            let decoded = UnsafePointer(decodeWorkspace(rows: live.count, outputs: live.count).logits.pointer)
            prefillLogits.withUnsafeBufferPointer { pre in
                live.withUnsafeBufferPointer { liveRows in
                    logitRow.withUnsafeBufferPointer { prefillRow in
                        // Rows are independent (own stream, own output slot): between two forwards
                        // BLAS is idle, so they are split over the budget's threads.
                        nonisolated(unsafe) let (prefillBase, liveBase, rowBase, decodedBase) =
                            (pre.baseAddress!, liveRows.baseAddress!, prefillRow.baseAddress!, decoded)
                        nonisolated(unsafe) let (rngBuffer, samplerBuffer, drawnBuffer) = (rngs, samplers, drawn)
                        let rows = live.count, chunks = rows >= 8 ? min(workers, rows) : 1, fromPrefill = fromPrefill
                        @Sendable func sampleChunk(_ chunk: Int) {
                            for k in (rows * chunk / chunks)..<(rows * (chunk + 1) / chunks) {
                                let i = liveBase[k]
                                let z = fromPrefill ? prefillBase + rowBase[i] * V : decodedBase + k * V
                                drawnBuffer[k] = samplerBuffer[chunk].sample(logits: z, parameters: sampling, rng: &rngBuffer[i])
                            }
                        }
                        if chunks == 1 { sampleChunk(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: sampleChunk) }
                    }
                }
            }
            for (row, i) in live.enumerated() {
                let s = drawn[row]
                completions[i].tokens.append(s.token)
                completions[i].logProbs.append(s.logProb)
                completions[i].rawLogProbs.append(s.rawLogProb)
                if stopTokens.contains(s.token) {
                    completions[i].finishReason = .eos
                } else if completions[i].tokens.count >= maxNewTokens[i] {
                    completions[i].finishReason = .length
                } else {
                    next.append(i)
                }
            }
            fromPrefill = false
            swap(&live, &next)
            if live.isEmpty { break }
            let w = decodeWorkspace(rows: live.count, outputs: live.count)
            for (row, i) in live.enumerated() {
                w.tokens[row] = Int32(completions[i].tokens.last!)
                w.slots[row] = Int32(i)
                w.positions[row] = Int32(cache.lengths[i])
                w.lastRows[row] = row
                cache.lengths[i] += 1
            }
            forwardCached(rows: live.count, outputs: live.count, cache: cache, workspace: w, packed: packed)
        }
        return completions
    }
}
