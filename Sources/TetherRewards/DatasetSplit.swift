/// Train or held-out. Membership is a property of the problem itself, not of the sampling:
/// a problem is held out when the FNV-1a hash of its canonical form (`task` NUL `prompt`) falls in
/// the held-out fraction. So no held-out problem can ever appear in a training set, for any n, seed
/// or generator setting, and an evaluation set stays unseen across runs.
public enum DatasetSplit: String, Codable, Sendable, CaseIterable {
    case train
    case heldout

    /// Share of all problems that are held out, in thousandths.
    public static let heldoutPermille: UInt64 = 200

    public static func of(task: String, prompt: String) -> DatasetSplit {
        fnv1a64(task + "\u{0}" + prompt) % 1000 < heldoutPermille ? .heldout : .train
    }

    /// FNV-1a, 64-bit (Fowler, Noll, Vo): defined byte by byte, unlike Swift's seeded `Hasher`.
    public static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}
