import TetherKernels

/// Everything the training forward keeps for the backward, for the rows of one attention plan,
/// plus the backward's scratch. Buffers are allocated for one plan and reused for every later plan
/// that fits in them (`fits`/`adopt`): the micro-batches of a learner step differ in shape (prompt
/// and completion lengths), and a workspace of hundreds of megabytes allocated, zero-filled and
/// unmapped per micro-batch costs page faults and memory traffic for nothing.
///
/// With `keepsActivations` false the same class is the workspace of a forward-only pass
/// (`tokenLogProbs`): every per-layer array holds ONE buffer that each layer reuses, the residual
/// stream is updated in place (`residual[0]` and `residualMid[0]` are the same buffer), attention
/// probabilities live in a per-worker scratch and no backward scratch is allocated, so the memory is
/// `O(rows × width)` for one layer plus the LM head's block, whatever the depth.
final class TrainingActivations {
    private(set) var plan: AttentionPlan
    private(set) var rows: Int
    let keepsActivations: Bool
    let tokens: UnsafeMutableBufferPointer<Int32>
    let positions: UnsafeMutableBufferPointer<Int32>
    /// The plan's lengths table (`AttentionPlan.lengthCount` entries).
    let lengths: UnsafeMutableBufferPointer<Int32>
    /// The group of each sequence (shared-prefix plan; one unused entry otherwise).
    let groupOf: UnsafeMutableBufferPointer<Int32>
    let targets: UnsafeMutableBufferPointer<Int32>
    /// Rows the LM head scores (a shared prefix's rows predict nothing the RL loss reads).
    var headRows: Range<Int>
    /// Where each row's log-prob goes in the caller's `[sequences, positions]` layout (−1: nowhere),
    /// when that layout is not the rows themselves (shared-prefix plan).
    let outputIndex: UnsafeMutableBufferPointer<Int32>?
    /// Entries of the caller's log-prob layout (`rows` for the plain plan).
    var outputCount: Int

    /// Residual stream entering layer l (`residual[numLayers]` enters the final norm).
    let residual: [FloatBuffer]
    /// Residual stream after attention, entering the MLP half of layer l.
    let residualMid: [FloatBuffer]
    /// The RMS-normed input of the attention and of the MLP half, for one layer at a time: the
    /// backward recomputes it from the residual stream it was normed from (`rstd` kept), as it
    /// recomputes `act` from `gateUp`, so the training forward keeps neither per layer. Bit for bit
    /// the forward's values (same kernel, same inputs) at a quarter less memory per row.
    let normed: FloatBuffer
    let rstd1: [FloatBuffer]
    let qkv: [FloatBuffer]
    /// Qwen3 only (empty otherwise, and in a forward-only pass): q and k before their per-head
    /// norms, `[rows, qDim + kvDim]`, and each head's rstd, `[rows, heads + kvHeads]`.
    let qkRaw: [FloatBuffer], qkRstd: [FloatBuffer]
    /// Attention probabilities per layer (`plan.probsCount`), or one per-worker scratch.
    private(set) var probs: [FloatBuffer]
    let attnOut: [FloatBuffer]
    let rstd2: [FloatBuffer]
    let gateUp: [FloatBuffer]
    /// SwiGLU's output for one layer at a time (see `normed`).
    let act: FloatBuffer
    let normedFinal: FloatBuffer, rstdFinal: FloatBuffer
    /// The fused LM head's `[lmHeadChunkRows, vocab]` block: logits in the forward, recomputed and
    /// overwritten by dLoss/dlogits in the backward (see `lmHeadForward`).
    /// Allocated on first use: a scalar-head model (reward model, critic) never touches it.
    lazy var lmHeadScratch = FloatBuffer(reserving: lmHeadChunkRows * vocab)
    let lmHeadChunkRows: Int
    let vocab: Int
    /// Whether `lmHeadScratch` still holds the logits of the forward's last block of head rows
    /// (`LlamaModel.lmHeadBlocks`), so the backward needs no recompute for it.
    var lmHeadScratchHoldsLogits = false
    let logSumExp: FloatBuffer
    let logProbs: FloatBuffer
    let entropy: FloatBuffer
    var entropyComputed = false
    /// Threads for the per-sequence attention loops: the process's BLAS budget, at most the plan's units.
    private(set) var attentionWorkers: Int
    /// What the buffers hold room for: rows, attention probabilities, attention scratch (all
    /// workers), lengths-table entries and sequences.
    private let rowCapacity: Int, scratchCapacity: Int, lengthCapacity: Int, sequenceCapacity: Int
    private var probsCapacity: Int

    // Backward scratch, allocated by the first backward.
    private let hidden: Int, qkvWidth: Int, qDim: Int, intermediate: Int, qkWidth: Int
    lazy var dResidual = FloatBuffer(reserving: rowCapacity * hidden)
    lazy var dNormed = FloatBuffer(reserving: rowCapacity * hidden)
    lazy var dQKV = FloatBuffer(reserving: rowCapacity * qkvWidth)
    lazy var dAttn = FloatBuffer(reserving: rowCapacity * qDim)
    lazy var dGateUp = FloatBuffer(reserving: rowCapacity * 2 * intermediate)
    lazy var dAct = FloatBuffer(reserving: rowCapacity * intermediate)
    lazy var attnScratch = FloatBuffer(reserving: scratchCapacity)
    /// One row of d(q, k before their norms) (Qwen3).
    lazy var dQKRow = FloatBuffer(reserving: max(1, qkWidth))

    /// What a workspace holds room for, so that its successor can be sized from it.
    struct Capacity {
        var rows = 0, probs = 0, scratch = 0, lengths = 0, sequences = 0

        /// Half as much again as `self`, the next shape's own need where that is more: a learner's
        /// batches grow in steps (a longer completion, more completion rows), and a workspace sized
        /// to each new largest shape would be reallocated, hundreds of megabytes faulted in and
        /// zeroed, at every one. Growth by 1.5× makes that logarithmic in the largest shape.
        func grown(toFit plan: AttentionPlan, workers: Int) -> Capacity {
            var c = Capacity(rows: plan.rows, probs: plan.probsCount, scratch: workers * plan.scratchPerWorker,
                             lengths: plan.lengthCount, sequences: 0)
            if case .sharedPrefix(let s) = plan { c.sequences = s.sequences }
            guard rows > 0 else { return c }
            return Capacity(rows: max(c.rows, rows * 3 / 2), probs: max(c.probs, probs * 3 / 2),
                            scratch: max(c.scratch, scratch * 3 / 2), lengths: max(c.lengths, lengths * 3 / 2),
                            sequences: max(c.sequences, sequences * 3 / 2))
        }

        /// Element-wise the larger of two capacities.
        func atLeast(_ other: Capacity) -> Capacity {
            Capacity(rows: max(rows, other.rows), probs: max(probs, other.probs), scratch: max(scratch, other.scratch),
                     lengths: max(lengths, other.lengths), sequences: max(sequences, other.sequences))
        }
    }

    var capacity: Capacity {
        Capacity(rows: rowCapacity, probs: probsCapacity, scratch: scratchCapacity, lengths: lengthCapacity, sequences: sequenceCapacity)
    }

    /// A workspace for `plan`, with room for at least `growingFrom.grown(toFit: plan)` (the plan
    /// alone when there is no earlier workspace) and for `reservation`'s micro-batches. Every
    /// buffer is `FloatBuffer(reserving:)`, so room beyond what the plans use costs address space,
    /// not memory.
    init(config c: LlamaConfig, plan: AttentionPlan, lmHeadChunkRows: Int, keepsActivations: Bool = true,
         growingFrom previous: Capacity = Capacity(), reservation: WorkspaceReservation? = nil) {
        self.plan = plan
        rows = plan.rows
        self.keepsActivations = keepsActivations
        attentionWorkers = Self.workers(plan)
        var room = previous.grown(toFit: plan, workers: attentionWorkers)
        if let reservation {
            room = room.atLeast(Capacity(reservation, workers: max(1, BLASThreads.current)))
        }
        let n = room.rows, h = c.hiddenSize, qd = c.qDim, qkvw = c.qDim + 2 * c.kvDim, f = c.intermediateSize
        let L = keepsActivations ? c.numHiddenLayers : 1
        func ints(_ k: Int) -> UnsafeMutableBufferPointer<Int32> {
            let p = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(k, 1))
            p.initialize(repeating: 0)
            return p
        }
        tokens = ints(n); positions = ints(n); lengths = ints(room.lengths); targets = ints(n)
        if case .sharedPrefix = plan {
            groupOf = ints(room.sequences)
            outputIndex = ints(n)
        } else {
            groupOf = ints(1)
            outputIndex = nil
        }
        headRows = 0..<plan.rows
        outputCount = plan.rows
        func bufs(_ count: Int, _ k: Int) -> [FloatBuffer] { (0..<count).map { _ in FloatBuffer(reserving: k) } }
        rowCapacity = n
        probsCapacity = room.probs
        scratchCapacity = room.scratch
        lengthCapacity = room.lengths
        sequenceCapacity = room.sequences
        if keepsActivations {
            residual = bufs(L + 1, n * h)
            residualMid = bufs(L, n * h)
            probs = bufs(L, room.probs)
        } else {
            let stream = FloatBuffer(reserving: n * h)
            residual = [stream]
            residualMid = [stream]
            probs = [FloatBuffer(reserving: scratchCapacity)]
        }
        normed = FloatBuffer(reserving: n * h)
        rstd1 = bufs(L, n); rstd2 = bufs(L, n)
        qkv = bufs(L, n * qkvw)
        qkRaw = c.hasQKNorm && keepsActivations ? bufs(L, n * (qd + c.kvDim)) : []
        qkRstd = c.hasQKNorm && keepsActivations ? bufs(L, n * (c.numAttentionHeads + c.numKeyValueHeads)) : []
        attnOut = bufs(L, n * qd)
        gateUp = bufs(L, n * 2 * f)
        act = FloatBuffer(reserving: n * f)
        normedFinal = FloatBuffer(reserving: n * h); rstdFinal = FloatBuffer(reserving: n)
        self.lmHeadChunkRows = lmHeadChunkRows
        vocab = c.vocabSize
        logSumExp = FloatBuffer(reserving: n); logProbs = FloatBuffer(reserving: n); entropy = FloatBuffer(reserving: n)
        hidden = h; qkvWidth = qkvw; qDim = qd; intermediate = f
        qkWidth = c.hasQKNorm ? qd + c.kvDim : 0
    }

    private static func workers(_ plan: AttentionPlan) -> Int { max(1, min(BLASThreads.current, plan.parallelUnits)) }

    /// Whether `plan` (of the same kind, plain or shared-prefix) fits in these buffers, with LM-head
    /// blocks of `lmHeadChunkRows` rows or fewer, once `growProbabilities` has made room for its
    /// attention probabilities.
    func fits(_ plan: AttentionPlan, lmHeadChunkRows chunk: Int) -> Bool {
        let sequences: Int
        switch (plan, self.plan) {
        case (.causal, .causal): sequences = 0
        case (.sharedPrefix(let s), .sharedPrefix): sequences = s.sequences
        default: return false
        }
        return plan.rows <= rowCapacity && sequences <= sequenceCapacity && plan.lengthCount <= lengthCapacity
            && Self.workers(plan) * plan.scratchPerWorker <= scratchCapacity && chunk <= lmHeadChunkRows
    }

    /// Reallocates the per-layer attention probabilities alone, half as large again as before or
    /// `plan`'s need, for a plan that fits everything else. Their padded `[sequence, head, T, W]`
    /// layout grows with the longest completion squared, so a reservation does not cover them: a
    /// bound for every batch would be gigabytes of address space at long completions, while the
    /// probabilities themselves are a few megabytes per layer.
    func growProbabilities(toFit plan: AttentionPlan) {
        guard keepsActivations, plan.probsCount > probsCapacity else { return }
        probsCapacity = max(plan.probsCount, probsCapacity * 3 / 2)
        probs = probs.map { _ in FloatBuffer(reserving: probsCapacity) }
    }

    /// Maps every page of the workspace now (`LlamaModel.prefaultWorkspace`): the activations,
    /// the LM head's block, and the backward's scratch of a training workspace. Attention
    /// probabilities are left to the first plan, which sizes them.
    func prefault() {
        var buffers = residual + residualMid + rstd1 + qkv + qkRaw + qkRstd + attnOut + rstd2 + gateUp
        buffers += [normed, act, normedFinal, rstdFinal, logSumExp, logProbs, entropy, lmHeadScratch]
        if keepsActivations {
            buffers += [dResidual, dNormed, dQKV, dAttn, dGateUp, dAct, attnScratch]
        } else {
            buffers += probs
        }
        for b in buffers { b.prefault() }
    }

    /// Lays `plan` (which `fits`, its probabilities grown) over the buffers: every pass indexes by the plan's shape and
    /// writes what it reads, so what an earlier plan left in them is never seen.
    func adopt(_ plan: AttentionPlan) {
        self.plan = plan
        rows = plan.rows
        attentionWorkers = Self.workers(plan)
        headRows = 0..<rows
        outputCount = rows
        lmHeadScratchHoldsLogits = false
        entropyComputed = false
    }

    /// Index into the per-layer arrays for layer `l` (every layer shares index 0 in a forward-only pass).
    @inline(__always) func layer(_ l: Int) -> Int { keepsActivations ? l : 0 }

    deinit {
        tokens.deallocate(); positions.deallocate(); lengths.deallocate(); targets.deallocate(); groupOf.deallocate()
        outputIndex?.deallocate()
    }
}

// In an extension, so the memberwise initializer stays.
extension TrainingActivations.Capacity {
    /// Room for every micro-batch of `r` (see `WorkspaceReservation`) but their attention
    /// probabilities (`growProbabilities`). A worker's scratch holds one head's scores over the
    /// full context.
    init(_ r: WorkspaceReservation, workers: Int) {
        self.init(rows: r.rows, probs: 0, scratch: workers * r.contextTokens * r.contextTokens,
                  lengths: r.groups + r.sequences, sequences: r.sequences)
    }
}
