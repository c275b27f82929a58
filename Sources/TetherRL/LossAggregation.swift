/// How per-token losses ℓ_{i,t} become one scalar (verl's `loss_agg_mode`). Every mode is a
/// weighted sum L = Σ_{i,t} a_{i,t} ℓ_{i,t}, so dL/dℓ_{i,t} = a_{i,t}; B counts the non-empty
/// sequences (an empty completion has no token to score) and L_i is the length of completion i.
public enum LossAggregation: Equatable, Sendable {
    /// a = 1/Σ_i L_i. Every token weighs the same (DAPO's token-level loss, Yu et al. 2025 §3.3):
    /// long completions are not diluted.
    case tokenMean
    /// a = 1/B. Sum over a completion's tokens, mean over completions.
    case seqMeanTokenSum
    /// a = 1/(B·L_i). GRPO as written in DeepSeekMath (eq. 3): mean over tokens, then over
    /// completions. Liu et al. 2025 show the 1/L_i factor favours long wrong answers.
    case seqMeanTokenMean
    /// a = 1/(B·maxTokens). Dr. GRPO (Liu et al. 2025): a token sum divided by a constant
    /// (the generation budget) instead of each completion's length, keeping the paper's 1/G mean
    /// over completions. verl's mode of this name omits the 1/B (it is B times larger); the
    /// direction of the gradient is the same.
    case seqMeanTokenSumNorm(maxTokens: Int)

    /// The run config's names for the aggregations (`algorithm.loss_aggregation`). The constant of
    /// Dr. GRPO's normaliser is the generation budget, another key, so a name is not yet an
    /// aggregation: `init(_:maxNewTokens:)` completes it.
    public enum Name: String, Sendable, CaseIterable {
        case tokenMean = "token_mean"
        case sequenceMean = "sequence_mean"
        case constantNormalizer = "constant_normalizer"
    }

    /// `constant_normalizer` divides by `maxNewTokens` (Dr. GRPO).
    public init(_ name: Name, maxNewTokens: Int) {
        switch name {
        case .tokenMean: self = .tokenMean
        case .sequenceMean: self = .seqMeanTokenMean
        case .constantNormalizer: self = .seqMeanTokenSumNorm(maxTokens: maxNewTokens)
        }
    }

    public static let allNames = ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]

    /// Parses verl's names; `seq-mean-token-sum-norm` takes the constant from `maxTokens`.
    public init(name: String, maxTokens: Int? = nil) throws {
        switch name {
        case "token-mean": self = .tokenMean
        case "seq-mean-token-sum": self = .seqMeanTokenSum
        case "seq-mean-token-mean": self = .seqMeanTokenMean
        case "seq-mean-token-sum-norm":
            guard let m = maxTokens, m > 0 else {
                throw RLError.invalidArgument("loss aggregation seq-mean-token-sum-norm needs a positive max_tokens")
            }
            self = .seqMeanTokenSumNorm(maxTokens: m)
        default:
            throw RLError.invalidArgument("unknown loss aggregation '\(name)' (expected one of \(Self.allNames.joined(separator: ", ")))")
        }
    }

    /// The weight a_{i,t} of every token of the batch (all zero for a batch without tokens).
    public func tokenWeights(_ layout: SequenceLayout) -> [Double] {
        var w = [Double](repeating: 0, count: layout.tokenCount)
        let nonEmpty = layout.lengths.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        guard layout.tokenCount > 0, nonEmpty > 0 else { return w }
        let b = Double(nonEmpty)
        for s in 0 ..< layout.sequenceCount where layout.lengths[s] > 0 {
            let a: Double
            switch self {
            case .tokenMean: a = 1 / Double(layout.tokenCount)
            case .seqMeanTokenSum: a = 1 / b
            case .seqMeanTokenMean: a = 1 / (b * Double(layout.lengths[s]))
            case .seqMeanTokenSumNorm(let m): a = 1 / (b * Double(m))
            }
            for t in layout.range(of: s) { w[t] = a }
        }
        return w
    }

    /// The share of `whole`'s normaliser carried by `part`, a subset of its sequences: the loss of
    /// `part` evaluated alone (normalised over `part`) times this share is exactly `part`'s terms of
    /// the loss of `whole`, so the micro-batches of a minibatch sum to the minibatch's loss and
    /// gradient. Token mean: N_part/N tokens; the per-sequence means: B_part/B non-empty sequences
    /// (L_i and the constant are per sequence, the same in both).
    public func share(of part: SequenceLayout, in whole: SequenceLayout) -> Double {
        switch self {
        case .tokenMean:
            return whole.tokenCount == 0 ? 0 : Double(part.tokenCount) / Double(whole.tokenCount)
        case .seqMeanTokenSum, .seqMeanTokenMean, .seqMeanTokenSumNorm:
            let b = whole.lengths.filter { $0 > 0 }.count
            return b == 0 ? 0 : Double(part.lengths.filter { $0 > 0 }.count) / Double(b)
        }
    }
}
