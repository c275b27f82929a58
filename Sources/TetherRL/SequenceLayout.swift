/// How a flat per-token array splits into the completions of a batch (a ragged layout).
///
/// Every per-token array a loss takes — current, behaviour, proximal and reference log-probs,
/// entropy, advantages, values — is flat over the completion tokens of all sequences, sequence 0
/// first. No padding and no mask: a loss never has to guess which positions are real.
public struct SequenceLayout: Equatable, Sendable {
    /// Completion tokens of each sequence (prompt tokens are not scored).
    public let lengths: [Int]
    /// Index of each sequence's first token in the flat arrays.
    public let offsets: [Int]
    public let tokenCount: Int

    public init(lengths: [Int]) throws {
        var offsets: [Int] = []
        offsets.reserveCapacity(lengths.count)
        var total = 0
        for (i, n) in lengths.enumerated() {
            guard n >= 0 else { throw RLError.invalidArgument("sequence \(i) has negative length \(n)") }
            offsets.append(total)
            total += n
        }
        self.lengths = lengths
        self.offsets = offsets
        self.tokenCount = total
    }

    public var sequenceCount: Int { lengths.count }

    /// Token index range of sequence `i` in the flat arrays.
    public func range(of i: Int) -> Range<Int> { offsets[i] ..< offsets[i] + lengths[i] }

    /// Broadcasts one value per sequence to each of its tokens (e.g. GRPO's sequence advantage).
    public func broadcast(_ perSequence: [Float]) throws -> [Float] {
        try RLError.checkCount("per-sequence values", perSequence, sequenceCount)
        var out = [Float](repeating: 0, count: tokenCount)
        for i in 0 ..< sequenceCount { for t in range(of: i) { out[t] = perSequence[i] } }
        return out
    }
}

extension SequenceLayout {
    /// The tokens of sequences `indices` of a flat per-token array, in that order.
    public func gather(_ flat: [Float], sequences indices: [Int]) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(indices.reduce(0) { $0 + lengths[$1] })
        for s in indices { out += flat[range(of: s)] }
        return out
    }
}
