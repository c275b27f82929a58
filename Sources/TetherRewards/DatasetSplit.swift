/// Which disjoint part of a task's problem space a problem belongs to. Membership is a property
/// of the problem itself, not of the sampling: the FNV-1a hash of its canonical form
/// (`task` NUL `prompt`) modulo 1000 places it — below 200 held out, below 500 RL training, else
/// SFT (the warm-up gets the most distinct problems: a tiny model generalises only from many). So no held-out problem can appear in any SFT or training set, for any n, seed or
/// generator setting, and the RL prompts are problems the SFT model has never seen: its starting
/// reward is a generalisation accuracy, not a memorised 100 % that would leave every GRPO group
/// with zero variance.
public enum DatasetSplit: String, Codable, Sendable, CaseIterable {
    /// RL training prompts (30 % of problems).
    case train
    /// Evaluation only (20 %).
    case heldout
    /// Supervised warm-up examples (50 %).
    case sft

    public static func of(task: String, prompt: String) -> DatasetSplit {
        let bucket = fnv1a64(task + "\u{0}" + prompt) % 1000
        return bucket < 200 ? .heldout : bucket < 500 ? .train : .sft
    }

    /// FNV-1a, 64-bit (Fowler, Noll, Vo): defined byte by byte, unlike Swift's seeded `Hasher`.
    public static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}
