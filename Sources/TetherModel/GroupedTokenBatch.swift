/// Sequences that come in groups sharing a prompt (GRPO's G samples of one prompt): one prompt per
/// group and one completion per sequence. The shared-prompt forward (`sequenceLogProbs(_:
/// GroupedTokenBatch)`) computes each prompt once; its outputs are laid out as those of the plain
/// batch `plain` (prompt + completion per sequence), so a caller swaps one for the other.
public struct GroupedTokenBatch: Sendable, Equatable {
    /// Prompt tokens of each group (at least one each).
    public let prompts: [[Int32]]
    /// Completion tokens of each sequence.
    public let completions: [[Int32]]
    /// The group of each sequence (an index into `prompts`).
    public let groupOf: [Int]

    public init(prompts: [[Int]], completions: [[Int]], groupOf: [Int]) throws {
        guard groupOf.count == completions.count else {
            throw ModelError.invalidBatch("\(completions.count) completions but \(groupOf.count) group indices")
        }
        for (s, g) in groupOf.enumerated() where g < 0 || g >= prompts.count {
            throw ModelError.invalidBatch("sequence \(s) is in group \(g), but there are \(prompts.count) prompts")
        }
        for (g, p) in prompts.enumerated() where p.isEmpty { throw ModelError.emptySequence(index: g) }
        func ids(_ s: [Int]) throws -> [Int32] {
            try s.map { t in
                guard let v = Int32(exactly: t) else { throw ModelError.tokenOutOfRange(token: t, vocabSize: Int(Int32.max)) }
                return v
            }
        }
        self.prompts = try prompts.map(ids)
        self.completions = try completions.map(ids)
        self.groupOf = groupOf
    }

    /// Groups sequences whose prompts are equal token for token (groups in order of first appearance).
    public init(promptOfEach: [[Int]], completions: [[Int]]) throws {
        guard promptOfEach.count == completions.count else {
            throw ModelError.invalidBatch("\(completions.count) completions but \(promptOfEach.count) prompts")
        }
        var index: [[Int]: Int] = [:], prompts: [[Int]] = [], groupOf: [Int] = []
        for p in promptOfEach {
            if let g = index[p] { groupOf.append(g); continue }
            index[p] = prompts.count
            groupOf.append(prompts.count)
            prompts.append(p)
        }
        try self.init(prompts: prompts, completions: completions, groupOf: groupOf)
    }

    public var sequenceCount: Int { completions.count }

    /// Length of the longest prompt + completion: the plain batch's padded length.
    public var length: Int {
        zip(groupOf, completions).map { prompts[$0].count + $1.count }.max() ?? 0
    }

    /// The same sequences as a plain padded batch, prompt then completion, padded with 0.
    public var plain: TokenBatch {
        TokenBatch(sequences: zip(groupOf, completions).map { g, c in (prompts[g] + c).map(Int.init) })
    }
}
