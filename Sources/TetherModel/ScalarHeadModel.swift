import Foundation
import TetherKernels

/// The policy architecture with its unembedding replaced by a projection to one scalar per
/// position: `s_t = w · h_t`, h_t the final-norm hidden state (InstructGPT's reward model, Ouyang
/// et al. 2022 §3.5; Hugging Face's `LlamaForSequenceClassification` with one label, whose head is
/// `score.weight` `[1, hidden]`). A reward model reads s at a sequence's last token; a PPO critic
/// reads V(s_t) at every position.
///
/// On disk: a Hugging Face Llama directory for the backbone (its `lm_head` is kept but unused) plus
/// `value_head.safetensors` holding `score.weight`, so a critic can start from a reward model.
///
/// `@unchecked Sendable`: like `LlamaModel`, owned by one thread at a time.
public final class ScalarHeadModel: @unchecked Sendable {
    public static let headFile = "value_head.safetensors"
    public static let headTensor = "score.weight"

    public let backbone: LlamaModel
    /// w, `[hidden]`.
    public let head: FloatBuffer
    public let headGradient: FloatBuffer
    private var lastHidden: [Float] = []
    private var lastRows = 0

    /// A head drawn N(0, std²) from `seed` (zero std gives a zero head: every score starts at 0).
    public init(backbone: LlamaModel, seed: UInt64 = 0, std: Double = 0.02) {
        self.backbone = backbone
        let h = backbone.config.hiddenSize
        head = FloatBuffer(count: h)
        headGradient = FloatBuffer(count: h)
        var rng = SeededRandom(seed: seed, stream: 0x5C0E)
        for i in 0..<h { head[i] = Float(rng.nextNormal() * std) }
    }

    public init(backbone: LlamaModel, head weights: [Float]) throws {
        guard weights.count == backbone.config.hiddenSize else {
            throw ModelError.invalidConfig("\(Self.headTensor) has \(weights.count) values, hidden_size is \(backbone.config.hiddenSize)")
        }
        self.backbone = backbone
        head = FloatBuffer(weights)
        headGradient = FloatBuffer(count: weights.count)
    }

    /// s at every position, `[batch, length]` (positions past a row's length are unspecified).
    /// Keeps the activations for `backward(dScores:)`.
    public func scores(_ batch: TokenBatch) throws -> [Float] {
        let hidden = try backbone.finalHiddenStates(batch)
        let h = backbone.config.hiddenSize, rows = batch.batch * batch.length
        var out = [Float](repeating: 0, count: rows)
        hidden.withUnsafeBufferPointer { x in
            for r in 0..<rows { out[r] = VectorOps.dot(x.baseAddress! + r * h, head.pointer, h) }
        }
        lastHidden = hidden
        lastRows = rows
        return out
    }

    /// The score after each row's last real token: the reward of a whole sequence, `[batch]`.
    public func sequenceScores(_ batch: TokenBatch) throws -> [Float] {
        let s = try scores(batch)
        return (0..<batch.batch).map { b in s[b * batch.length + max(0, batch.lengths[b] - 1)] }
    }

    /// Adds dLoss/d(backbone parameters) into `backbone.gradients` and dLoss/dw into `headGradient`
    /// given dLoss/ds `[batch, length]` for the last `scores` call: dh_t = (dL/ds_t)·w, dw = Σ_t (dL/ds_t)·h_t.
    public func backward(dScores: [Float]) {
        precondition(dScores.count == lastRows, "dScores has \(dScores.count) entries, expected \(lastRows)")
        let h = backbone.config.hiddenSize
        var dHidden = [Float](repeating: 0, count: lastRows * h)
        lastHidden.withUnsafeBufferPointer { x in
            dHidden.withUnsafeMutableBufferPointer { dx in
                for r in 0..<lastRows where dScores[r] != 0 {
                    VectorOps.axpy(dScores[r], head.pointer, dx.baseAddress! + r * h, h)
                    VectorOps.axpy(dScores[r], x.baseAddress! + r * h, headGradient.pointer, h)
                }
            }
        }
        backbone.backward(dHiddenStates: dHidden)
    }

    public func zeroGradients() {
        backbone.zeroGradients()
        headGradient.zero()
    }

    /// Writes the backbone checkpoint directory (atomically) and `value_head.safetensors` into it.
    public func save(to directory: String, tokenizer: Tokenizer = .standard, trainerState: TrainerState? = nil) throws {
        try backbone.save(to: directory, tokenizer: tokenizer, trainerState: trainerState)
        try writeHead(into: directory)
    }

    /// Writes only `value_head.safetensors` into an existing checkpoint directory.
    public func writeHead(into directory: String) throws {
        let h = backbone.config.hiddenSize
        try SafeTensorsWriter.write(
            [.init(name: Self.headTensor, shape: [1, h], values: UnsafeBufferPointer(head.buffer))],
            metadata: ["format": "pt"], to: directory + "/" + Self.headFile)
    }

    /// Reads a directory written by `save`. Without `value_head.safetensors` (a plain policy
    /// checkpoint, e.g. to start a critic from the policy) the head is drawn from `seed` unless
    /// `requireHead`.
    public static func load(from directory: String, requireHead: Bool = true, seed: UInt64 = 0) throws -> (model: ScalarHeadModel, checkpoint: LlamaCheckpoint) {
        let (backbone, ckpt) = try LlamaModel.load(from: directory)
        let path = directory + "/" + headFile
        guard FileManager.default.fileExists(atPath: path) else {
            if requireHead { throw ModelError.invalidConfig("\(directory) has no \(headFile): not a reward model or critic checkpoint") }
            return (ScalarHeadModel(backbone: backbone, seed: seed), ckpt)
        }
        let file = try SafeTensorsFile.open(path: path)
        let weights = try file.floats(headTensor)
        return (try ScalarHeadModel(backbone: backbone, head: weights), ckpt)
    }
}
