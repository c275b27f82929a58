/// The largest forward a model's learner workspaces must hold: rows of one micro-batch, its
/// sequences and prompt groups, and the longest prompt plus completion. A learner knows these
/// before its first batch (the micro-batch budget, prompts × group, the token limits); workspaces
/// created with the reservation as their floor are never reallocated for a batch within it.
///
/// Without it the workspaces grow with the batches, and each growth reallocates and faults in
/// ~1 GB of activations at SmolLM2-135M's shape; with it the room costs address space only, since
/// the buffers are `FloatBuffer(reserving:)` and pages fault in as the plans touch them (the way
/// vLLM sizes its KV cache once from the largest batch instead of per request).
public struct WorkspaceReservation: Equatable, Sendable {
    public var rows: Int
    public var sequences: Int
    public var groups: Int
    public var contextTokens: Int

    public init(rows: Int, sequences: Int, groups: Int, contextTokens: Int) {
        self.rows = max(0, rows)
        self.sequences = max(0, sequences)
        self.groups = max(0, groups)
        self.contextTokens = max(0, contextTokens)
    }

    /// Whether every bound of `other` is within this one.
    public func covers(_ other: WorkspaceReservation) -> Bool {
        rows >= other.rows && sequences >= other.sequences && groups >= other.groups && contextTokens >= other.contextTokens
    }
}
