import TetherKernels

/// Keys and values of past positions for many sequences at once (one slot per sequence), so that
/// decoding a token costs one row through the projections instead of the whole prefix.
///
/// Layout per layer: `[slots, capacity, kvDim]` (post-RoPE keys), keys and values in two buffers.
/// `@unchecked Sendable`: owned by the one thread that decodes with it.
public final class KVCache: @unchecked Sendable {
    public let slots: Int
    public let capacity: Int
    public let numLayers: Int
    public let kvDim: Int
    let keys: FloatBuffer
    let values: FloatBuffer
    /// Positions already written per slot; the next token of slot s goes to position `lengths[s]`.
    public internal(set) var lengths: [Int]
    /// Slot s reads its first `prefixLengths[s]` positions from slot `prefixSources[s]`
    /// (`sharePrefix`); 0 when it holds all of its own. The tables `CachedAttention.SharedPrefix` reads.
    let prefixSources: UnsafeMutableBufferPointer<Int32>
    let prefixLengths: UnsafeMutableBufferPointer<Int32>

    public init(config: LlamaConfig, slots: Int, capacity: Int) {
        self.slots = slots
        self.capacity = capacity
        numLayers = config.numHiddenLayers
        kvDim = config.kvDim
        keys = FloatBuffer(reserving: numLayers * slots * capacity * kvDim)
        values = FloatBuffer(reserving: numLayers * slots * capacity * kvDim)
        lengths = Array(repeating: 0, count: slots)
        prefixSources = .allocate(capacity: slots)
        prefixLengths = .allocate(capacity: slots)
        _ = prefixSources.initialize(from: (0..<Int32(slots)))
        prefixLengths.initialize(repeating: 0)
    }

    deinit { prefixSources.deallocate(); prefixLengths.deallocate() }

    /// Forgets every slot's contents (the memory is reused).
    public func reset() {
        for s in 0..<slots { lengths[s] = 0; prefixSources[s] = Int32(s); prefixLengths[s] = 0 }
    }

    /// Lets slot `destination` start with slot `source`'s cached positions without copying them:
    /// its attention reads them from `source`, which must hold them itself and keep them unchanged
    /// while `destination` is in use (a prompt prefilled once for the G samples of its group).
    public func sharePrefix(of source: Int, with destination: Int) {
        precondition(prefixLengths[source] == 0, "slot \(source) reads its prefix from another slot; share from the slot that holds it")
        prefixSources[destination] = Int32(source)
        prefixLengths[destination] = Int32(lengths[source])
        lengths[destination] = lengths[source]
    }

    /// The shared-prefix tables for `CachedAttention`, valid while this cache lives.
    var sharedPrefix: CachedAttention.SharedPrefix {
        CachedAttention.SharedPrefix(source: UnsafePointer(prefixSources.baseAddress!), length: UnsafePointer(prefixLengths.baseAddress!))
    }

    @inline(__always) func layerOffset(_ l: Int) -> Int { l * slots * capacity * kvDim }
}

/// Reusable buffers of the cached forward, grown to the largest row count seen (no allocation per
/// decoded token). Logits are kept only for the rows whose next token is wanted (`outputCapacity`:
/// the last position of each prompt in a prefill, every row when decoding), never for a whole
/// prompt: a 100-token prompt at a 49k vocabulary would otherwise be 20 MB of logits per prompt.
final class DecodeWorkspace {
    let rowCapacity: Int
    let outputCapacity: Int
    let x: FloatBuffer, normed: FloatBuffer, qkv: FloatBuffer, attn: FloatBuffer, gateUp: FloatBuffer, act: FloatBuffer
    let tokens: UnsafeMutableBufferPointer<Int32>, slots: UnsafeMutableBufferPointer<Int32>, positions: UnsafeMutableBufferPointer<Int32>
    let lastRows: UnsafeMutableBufferPointer<Int>
    let logits: FloatBuffer
    var attnScratch: FloatBuffer

    init(config c: LlamaConfig, rows: Int, outputs: Int) {
        rowCapacity = rows
        outputCapacity = outputs
        let h = c.hiddenSize
        x = FloatBuffer(count: rows * h); normed = FloatBuffer(count: rows * h)
        qkv = FloatBuffer(count: rows * (c.qDim + 2 * c.kvDim)); attn = FloatBuffer(count: rows * max(h, c.qDim))
        gateUp = FloatBuffer(count: rows * 2 * c.intermediateSize); act = FloatBuffer(count: rows * c.intermediateSize)
        tokens = .allocate(capacity: rows); slots = .allocate(capacity: rows); positions = .allocate(capacity: rows)
        lastRows = .allocate(capacity: rows)
        logits = FloatBuffer(count: outputs * c.vocabSize)
        attnScratch = FloatBuffer(count: c.maxPositionEmbeddings)
    }

    deinit { tokens.deallocate(); slots.deallocate(); positions.deallocate(); lastRows.deallocate() }
}
