import TetherKernels

/// The weights of every decoding GEMM (fused qkv, o, fused gate/up and down of each layer, the LM
/// head) packed once into `PackedLinear`'s panel layout, in one allocation.
///
/// `generate` repacks them from `parameters` at the start of every call, whatever changed the
/// weights since (an optimizer step, an actor installing a broadcast, a test writing a tensor): a
/// copy checked against nothing can never be stale. Packing costs about what OpenBLAS spent
/// re-packing the same weights on every decoding step, so it pays for itself from the second step.
/// The buffer is kept between calls (like the KV cache): allocating and faulting in the weights'
/// size again on every call would cost more than the packing.
final class DecodeWeights {
    struct Layer { let qkv: Int, o: Int, gateUp: Int, down: Int }
    let layers: [Layer]
    let lmHead: Int
    let storage: FloatBuffer

    init(config c: LlamaConfig) {
        let h = c.hiddenSize, f = c.intermediateSize, qkvw = c.qDim + 2 * c.kvDim
        var offset = 0
        func take(_ out: Int, _ inFeatures: Int) -> Int {
            defer { offset += PackedLinear.packedCount(outFeatures: out, inFeatures: inFeatures) }
            return offset
        }
        layers = (0..<c.numHiddenLayers).map { _ in
            Layer(qkv: take(qkvw, h), o: take(h, c.qDim), gateUp: take(2 * f, h), down: take(h, f))
        }
        lmHead = take(c.vocabSize, h)
        storage = FloatBuffer(reserving: offset)  // `pack` writes every entry
    }

    /// Packs the current weights of `model` (whose configuration this was made for), every matrix
    /// split over `workers` threads.
    func pack(from model: LlamaModel, workers: Int) {
        let c = model.config, h = c.hiddenSize, f = c.intermediateSize, qkvw = c.qDim + 2 * c.kvDim
        let p = UnsafePointer(model.parameters.pointer), s = storage.pointer
        for (packed, o) in zip(layers, model.layers) {
            PackedLinear.pack(weight: p + o.qkv, outFeatures: qkvw, inFeatures: h, into: s + packed.qkv, workers: workers)
            PackedLinear.pack(weight: p + o.o, outFeatures: h, inFeatures: c.qDim, into: s + packed.o, workers: workers)
            PackedLinear.pack(weight: p + o.gateUp, outFeatures: 2 * f, inFeatures: h, into: s + packed.gateUp, workers: workers)
            PackedLinear.pack(weight: p + o.down, outFeatures: h, inFeatures: f, into: s + packed.down, workers: workers)
        }
        PackedLinear.pack(weight: p + model.lmHeadOffset, outFeatures: c.vocabSize, inFeatures: h, into: s + lmHead, workers: workers)
    }
}

extension LlamaModel {
    /// Allocates and maps the decoding weights' buffer now rather than in the first `generate`
    /// (which packs into it, as every call does): a trainer calls it when built, with its
    /// optimizer state, so that memory every step needs is taken (and faulted in, the weights' size
    /// again) at start-up, where running out of it stops the run before any sampling, and the first
    /// step costs what later ones do.
    public func prepareDecoding() {
        guard decodeWeights == nil else { return }
        let w = DecodeWeights(config: config)
        w.storage.prefault()
        decodeWeights = w
    }

    /// The packed decoding weights, packed from the current `parameters` now.
    func packedDecodeWeights() -> DecodeWeights {
        let w = decodeWeights ?? DecodeWeights(config: config)
        decodeWeights = w
        w.pack(from: self, workers: max(1, BLASThreads.current))
        return w
    }
}
