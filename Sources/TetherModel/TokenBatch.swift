/// A batch of token sequences padded to one length: `tokens` is `[batch, length]` row-major and
/// `lengths[b]` is row b's real length (positions past it are padding and ignored).
public struct TokenBatch: Sendable, Equatable {
    public let batch: Int
    public let length: Int
    public var tokens: [Int32]
    public var lengths: [Int]

    public init(tokens: [Int32], batch: Int, length: Int, lengths: [Int]? = nil) {
        precondition(tokens.count == batch * length, "TokenBatch: \(tokens.count) tokens for [\(batch), \(length)]")
        self.batch = batch
        self.length = length
        self.tokens = tokens
        self.lengths = lengths ?? Array(repeating: length, count: batch)
        precondition(self.lengths.count == batch && self.lengths.allSatisfy { $0 >= 0 && $0 <= length },
                     "TokenBatch: lengths must be one per row, each within 0...\(length)")
    }

    /// Right-pads sequences of different lengths with `padToken`.
    public init(sequences: [[Int]], padToken: Int = 0) {
        let T = sequences.map(\.count).max() ?? 0
        var flat = [Int32](repeating: Int32(padToken), count: sequences.count * T)
        for (b, s) in sequences.enumerated() {
            for (t, tok) in s.enumerated() { flat[b * T + t] = Int32(truncatingIfNeeded: tok) }
        }
        self.init(tokens: flat, batch: sequences.count, length: T, lengths: sequences.map(\.count))
    }

    public subscript(b: Int, t: Int) -> Int { Int(tokens[b * length + t]) }
}

/// Per-position next-token log-probabilities of a batch, `[batch, length − 1]` row-major:
/// `logProbs[b·(T−1) + t] = log p(tokens[b, t+1] | tokens[b, ≤t])`, and the entropy of that softmax
/// when asked for. Positions with `t + 1 ≥ lengths[b]` hold 0 and receive no gradient.
public struct SequenceLogProbs: Sendable {
    public let batch: Int
    /// T − 1: the number of predicted positions per row.
    public let positions: Int
    public var logProbs: [Float]
    public var entropy: [Float]?
    /// 1 where a position has a real target, 0 where it is padding.
    public var mask: [Float]
}
