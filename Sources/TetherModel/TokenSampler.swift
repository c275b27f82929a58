import Foundation
import TetherKernels

/// How the next token is drawn from the logits z.
///
/// The sampling distribution is built in Hugging Face's order: scale by temperature
/// (`s = z / temperature`), keep the `topK` largest (0 = all), then keep the smallest set of the
/// most likely remaining tokens whose probability sums to at least `topP` (1 = all), renormalise.
/// `temperature == 0` is greedy decoding (argmax, ties to the lowest id).
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    /// Stop token; nil falls back to the model config's `eos_token_id` (and no stop if that is nil too).
    public var eosTokenId: Int?
    /// Stop tokens besides that one: a chat turn ends at any of the model's end-of-turn ids
    /// (Llama 3 instruct lists several), as `generate` in `transformers` stops on a list.
    public var stopTokenIds: [Int]?
    /// Sample every sequence to its token limit, past any stop token (vLLM's `ignore_eos`,
    /// `transformers`' `min_new_tokens`): a benchmark then does the same work whatever the model answers.
    public var ignoresStopTokens: Bool

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, eosTokenId: Int? = nil, stopTokenIds: [Int]? = nil,
                ignoresStopTokens: Bool = false) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.eosTokenId = eosTokenId
        self.stopTokenIds = stopTokenIds
        self.ignoresStopTokens = ignoresStopTokens
    }

    public static let greedy = SamplingParameters(temperature: 0)
}

/// One drawn token with two log-probabilities:
/// - `logProb`: log q(token) under the distribution actually sampled from — temperature-scaled,
///   top-k/top-p truncated and renormalised (the behaviour policy of the rollout; 0 for greedy,
///   whose distribution is a point mass);
/// - `rawLogProb`: log softmax(z)[token], the untruncated temperature-1 policy log-probability
///   (what the learner's forward recomputes).
public struct SampledToken: Sendable, Equatable {
    public var token: Int
    public var logProb: Float
    public var rawLogProb: Float
}

/// Draws tokens from logit rows; holds its scratch so sampling allocates nothing per token.
public struct TokenSampler {
    public let vocabSize: Int
    private var order: [Int32]
    private var scaled: [Float]

    public init(vocabSize: Int) {
        self.vocabSize = vocabSize
        order = Array(0..<Int32(vocabSize))
        scaled = Array(repeating: 0, count: vocabSize)
    }

    /// Samples from one row of `vocabSize` logits with one uniform draw from `rng`.
    ///
    /// Untruncated sampling (`topK` 0, `topP` 1), what a GRPO rollout does, reads the row three
    /// times with 8-wide loops: its max, e^((z − max)/T) into scratch with the sum, and the
    /// inverse CDF over the scratch (`VectorOps.inverseCDF`); log q(token) is then
    /// (z − max)/T − log Σ, and at T = 1 it is also the raw log-prob.
    public mutating func sample(logits z: UnsafePointer<Float>, parameters p: SamplingParameters, rng: inout SeededRandom) -> SampledToken {
        let V = vocabSize
        if p.temperature <= 0 {
            let rawLSE = Softmax.logSumExp(z, V)
            var best = 0
            for j in 1..<V where z[j] > z[best] { best = j }
            return SampledToken(token: best, logProb: 0, rawLogProb: z[best] - rawLSE)
        }
        let u = rng.nextUnitFloat()
        let invT = 1 / p.temperature
        let k = p.topK > 0 ? min(p.topK, V) : V
        if k == V && p.topP >= 1 {
            return scaled.withUnsafeMutableBufferPointer { eBuf in
                let m = VectorOps.max(z, V)
                let total = VectorOps.expShifted(z, V, shift: m, scale: invT, out: eBuf.baseAddress!)
                let chosen = VectorOps.inverseCDF(eBuf.baseAddress!, V, target: u * total)
                let logProb = (z[chosen] - m) * invT - logf(total)
                let rawLogProb = invT == 1 ? logProb : z[chosen] - m - logf(VectorOps.sumExpShifted(z, V, shift: m))
                return SampledToken(token: chosen, logProb: logProb, rawLogProb: rawLogProb)
            }
        }
        let rawLSE = Softmax.logSumExp(z, V)
        return scaled.withUnsafeMutableBufferPointer { sBuf in
            let s = sBuf.baseAddress!
            for j in 0..<V { s[j] = z[j] * invT }
            return order.withUnsafeMutableBufferPointer { oBuf in
                for j in 0..<V { oBuf[j] = Int32(j) }
                oBuf.sort { a, b in s[Int(a)] > s[Int(b)] || (s[Int(a)] == s[Int(b)] && a < b) }
                // Top-k: the first k in descending order; their normaliser.
                let m = s[Int(oBuf[0])]
                var total: Float = 0
                for i in 0..<k { total += expf(s[Int(oBuf[i])] - m) }
                // Top-p over the renormalised top-k distribution: smallest prefix reaching topP.
                var kept = k
                if p.topP < 1 {
                    var cum: Float = 0
                    for i in 0..<k {
                        cum += expf(s[Int(oBuf[i])] - m) / total
                        if cum >= p.topP { kept = i + 1; break }
                    }
                    total = 0
                    for i in 0..<kept { total += expf(s[Int(oBuf[i])] - m) }
                }
                let target = u * total
                var cum: Float = 0
                var chosen = Int(oBuf[kept - 1])
                for i in 0..<kept {
                    cum += expf(s[Int(oBuf[i])] - m)
                    if target < cum { chosen = Int(oBuf[i]); break }
                }
                let logProb = s[chosen] - m - logf(total)
                return SampledToken(token: chosen, logProb: logProb, rawLogProb: z[chosen] - rawLSE)
            }
        }
    }
}
