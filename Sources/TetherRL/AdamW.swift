import Foundation
import TetherKernels
import TetherModel

/// AdamW hyper-parameters (the learning rate comes from a schedule at each step).
public struct AdamWHyperparameters: Sendable, Codable, Equatable {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter 2019, "Decoupled Weight Decay
/// Regularization", Algorithm 2), over the one flat parameter buffer; the moments mirror its layout.
///
/// For step t = 1, 2, … with learning rate η and gradient g:
///   θ ← θ − η·λ·θ                                  (decay, skipped on `noDecay` ranges)
///   m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²
///   θ ← θ − η · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)
/// which is exactly `torch.optim.AdamW`. State = (`firstMoment`, `secondMoment`, `step`), plain
/// buffers for checkpoints.
///
/// `@unchecked Sendable`: the moments are owned by the learner thread that steps the optimizer.
public final class AdamW: @unchecked Sendable {
    public let hyperparameters: AdamWHyperparameters
    public let firstMoment: FloatBuffer
    public let secondMoment: FloatBuffer
    /// Number of updates taken so far (the t of the bias corrections is `step` after an update).
    public private(set) var step: Int = 0
    /// Index ranges of the flat buffer exempt from weight decay (sorted, disjoint).
    public let noDecay: [Range<Int>]

    public init(parameterCount: Int, hyperparameters: AdamWHyperparameters = AdamWHyperparameters(), noDecay: [Range<Int>] = []) {
        self.hyperparameters = hyperparameters
        firstMoment = FloatBuffer(count: parameterCount)
        secondMoment = FloatBuffer(count: parameterCount)
        self.noDecay = noDecay.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// An optimizer for a model's layout. With `decayNorms == false` (the Hugging Face Trainer's
    /// choice) the 1-D norm weights are not decayed; `true` decays everything (PyTorch's default).
    public convenience init(layout: ParameterLayout, hyperparameters: AdamWHyperparameters = AdamWHyperparameters(), decayNorms: Bool = false) {
        let exempt = decayNorms ? [] : layout.entries.filter { $0.shape.count == 1 }.map { $0.offset..<($0.offset + $0.count) }
        self.init(parameterCount: layout.totalCount, hyperparameters: hyperparameters, noDecay: exempt)
    }

    /// Restores a checkpointed state. Throws if the sizes do not match this optimizer.
    public func restore(step: Int, firstMoment m: [Float], secondMoment v: [Float]) throws {
        guard m.count == firstMoment.count, v.count == secondMoment.count, step >= 0 else {
            throw OptimizerStateError.sizeMismatch(expected: firstMoment.count, first: m.count, second: v.count)
        }
        m.withUnsafeBufferPointer { firstMoment.pointer.update(from: $0.baseAddress!, count: m.count) }
        v.withUnsafeBufferPointer { secondMoment.pointer.update(from: $0.baseAddress!, count: v.count) }
        self.step = step
    }

    /// One update of `parameters` from `gradients` (clip first, see `GradientClipping`).
    public func update(parameters: FloatBuffer, gradients: FloatBuffer, learningRate lr: Float) {
        _ = update(parameters: parameters, gradients: gradients, learningRate: lr, gradientScale: 1)
    }

    /// One update from `gradientScale · gradients`, the scale applied as each gradient is read (a
    /// global-norm clip's factor, `GradientClipping.scale`, without a pass that rewrites the
    /// gradient buffer; `gradients` is left as it was). The bytes of the parameters, moments and
    /// gradients are read once, on the process's BLAS thread budget of workers: the update is
    /// bound by memory traffic, not arithmetic. Returns whether every updated parameter is finite,
    /// checked in the same pass.
    @discardableResult
    public func update(parameters: FloatBuffer, gradients: FloatBuffer, learningRate lr: Float, gradientScale: Float) -> Bool {
        precondition(parameters.count == firstMoment.count && gradients.count == firstMoment.count,
                     "AdamW over \(firstMoment.count) floats given \(parameters.count) parameters, \(gradients.count) gradients")
        step += 1
        let h = hyperparameters
        let bc1 = 1 - Float(pow(Double(h.beta1), Double(step)))
        let bc2 = 1 - Float(pow(Double(h.beta2), Double(step)))
        let stepSize = lr / bc1, invSqrtBC2 = 1 / bc2.squareRoot()
        nonisolated(unsafe) let (p, g, m, v) = (parameters.pointer, gradients.pointer, firstMoment.pointer, secondMoment.pointer)
        /// θ, m, v over `range` at one decay rate; false if a new θ is not finite.
        @Sendable func run(_ range: Range<Int>, decay: Float) -> Bool {
            let keep = 1 - lr * decay
            let b1 = SIMD8<Float>(repeating: h.beta1), b2 = SIMD8<Float>(repeating: h.beta2)
            let c1 = SIMD8<Float>(repeating: 1 - h.beta1), c2 = SIMD8<Float>(repeating: 1 - h.beta2)
            let vk = SIMD8<Float>(repeating: keep), vs = SIMD8<Float>(repeating: stepSize)
            let vb = SIMD8<Float>(repeating: invSqrtBC2), ve = SIMD8<Float>(repeating: h.epsilon)
            let vscale = SIMD8<Float>(repeating: gradientScale)
            // θ − θ is 0 for a finite θ and NaN otherwise, so the sum stays 0 only if all are finite.
            var finite = SIMD8<Float>()
            var i = range.lowerBound
            func ld(_ q: UnsafeMutablePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(q + i).loadUnaligned(as: SIMD8<Float>.self) }
            func st(_ x: SIMD8<Float>, _ q: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(q + i).storeBytes(of: x, as: SIMD8<Float>.self) }
            while i + 8 <= range.upperBound {
                let gv = ld(g) * vscale
                let mv = b1 * ld(m) + c1 * gv
                let vv = b2 * ld(v) + c2 * gv * gv
                st(mv, m); st(vv, v)
                let pv = ld(p) * vk - vs * mv / ((vv.squareRoot() * vb) + ve)
                st(pv, p)
                finite += pv - pv
                i += 8
            }
            var ok = finite.sum() == 0
            while i < range.upperBound {
                let gi = g[i] * gradientScale
                m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi
                v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi
                p[i] = p[i] * keep - stepSize * m[i] / ((v[i].squareRoot() * invSqrtBC2) + h.epsilon)
                ok = ok && p[i].isFinite
                i += 1
            }
            return ok
        }
        // The buffer as (range, decay) runs, cut into one contiguous share per worker.
        var runs: [(Range<Int>, Float)] = []
        var start = 0
        for r in noDecay {
            if r.lowerBound > start { runs.append((start..<r.lowerBound, h.weightDecay)) }
            runs.append((r, 0))
            start = r.upperBound
        }
        if start < parameters.count { runs.append((start..<parameters.count, h.weightDecay)) }
        let workers = max(1, min(BLASThreads.current, parameters.count / (1 << 16)))
        let shares: [[(Range<Int>, Float)]] = (0..<workers).map { w in
            // Share boundaries on multiples of 8, so each worker's SIMD loop covers its share.
            let lo = parameters.count * w / workers / 8 * 8, hi = w == workers - 1 ? parameters.count : parameters.count * (w + 1) / workers / 8 * 8
            return runs.compactMap { r, decay in
                let c = r.clamped(to: lo..<hi)
                return c.isEmpty ? nil : (c, decay)
            }
        }
        if workers == 1 { return shares[0].allSatisfy { run($0.0, decay: $0.1) } }
        let finite = UnsafeMutableBufferPointer<Bool>.allocate(capacity: workers)
        defer { finite.deallocate() }
        nonisolated(unsafe) let results = finite
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            results[w] = shares[w].allSatisfy { run($0.0, decay: $0.1) }
        }
        return finite.allSatisfy { $0 }
    }
}

public enum OptimizerStateError: Error, Equatable, CustomStringConvertible {
    case sizeMismatch(expected: Int, first: Int, second: Int)

    public var description: String {
        switch self {
        case .sizeMismatch(let e, let f, let s):
            return "optimizer state does not match the model: expected \(e) floats per moment, found \(f) and \(s)"
        }
    }
}

/// Global gradient-norm clipping (Pascanu et al. 2013), as `torch.nn.utils.clip_grad_norm_`:
/// if ‖g‖₂ > c, scale g by c / (‖g‖₂ + 1e-6). Returns the norm before clipping (for metrics).
public enum GradientClipping {
    @discardableResult
    public static func clipGlobalNorm(_ gradients: FloatBuffer, maxNorm: Float) -> Float {
        let norm = globalNorm(gradients)
        let s = scale(norm: norm, maxNorm: maxNorm)
        if s != 1 { VectorOps.scale(gradients.pointer, s, gradients.count) }
        return norm
    }

    /// ‖g‖₂.
    public static func globalNorm(_ gradients: FloatBuffer) -> Float {
        Float(VectorOps.sumOfSquares(gradients.pointer, gradients.count).squareRoot())
    }

    /// The factor the clip multiplies the gradients by: c / (‖g‖₂ + 1e-6) above the threshold, else 1.
    public static func scale(norm: Float, maxNorm: Float) -> Float {
        norm > maxNorm && norm.isFinite ? maxNorm / (norm + 1e-6) : 1
    }
}
