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

    public init(config: LlamaConfig, slots: Int, capacity: Int) {
        self.slots = slots
        self.capacity = capacity
        numLayers = config.numHiddenLayers
        kvDim = config.kvDim
        keys = FloatBuffer(count: numLayers * slots * capacity * kvDim)
        values = FloatBuffer(count: numLayers * slots * capacity * kvDim)
        lengths = Array(repeating: 0, count: slots)
    }

    /// Forgets every slot's contents (the memory is reused).
    public func reset() { for s in 0..<slots { lengths[s] = 0 } }

    /// Copies slot `source`'s cached prefix into slot `destination` (prefix sharing: the G samples
    /// of one GRPO group share their prompt, prefilled once).
    public func copySlot(from source: Int, to destination: Int) {
        let n = lengths[source] * kvDim
        for l in 0..<numLayers {
            let src = layerOffset(l) + source * capacity * kvDim, dst = layerOffset(l) + destination * capacity * kvDim
            (keys.pointer + dst).update(from: keys.pointer + src, count: n)
            (values.pointer + dst).update(from: values.pointer + src, count: n)
        }
        lengths[destination] = lengths[source]
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
