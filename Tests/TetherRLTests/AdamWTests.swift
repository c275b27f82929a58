import Foundation
import TetherKernels
import TetherModel
import TetherRL
import TetherTestSupport
import XCTest

final class AdamWTests: XCTestCase {
    /// Two steps worked by hand (β = 0.9/0.999, ε = 1e-8, λ = 0.01, η = 0.1, constant gradient):
    /// step 1: m̂ = g, v̂ = g², so the Adam direction is sign(g); θ = 0.999·θ − 0.1·sign(g).
    /// step 2: m = 0.095, v = 0.00049975 → m̂ = 0.095/0.19 = 0.5, v̂ = 0.00049975/0.0019990 = 0.25: again sign(g).
    /// The last entry is exempt from decay.
    func testTwoStepsMatchHandComputation() {
        let p = FloatBuffer([1, -2, 3]), g = FloatBuffer([0.5, -0.1, 0.2])
        let opt = AdamW(parameterCount: 3, hyperparameters: AdamWHyperparameters(weightDecay: 0.01), noDecay: [2..<3])
        opt.update(parameters: p, gradients: g, learningRate: 0.1)
        XCTAssertEqual(opt.step, 1)
        XCTAssertEqual(p[0], 0.999 * 1 - 0.1, accuracy: 1e-6)
        XCTAssertEqual(p[1], 0.999 * -2 + 0.1, accuracy: 1e-6)
        XCTAssertEqual(p[2], 3 - 0.1, accuracy: 1e-6)
        XCTAssertEqual(opt.firstMoment[0], 0.05, accuracy: 1e-7)
        XCTAssertEqual(opt.secondMoment[1], 0.00001, accuracy: 1e-9)
        opt.update(parameters: p, gradients: g, learningRate: 0.1)
        XCTAssertEqual(p[0], 0.999 * 0.899 - 0.1, accuracy: 1e-5)
        XCTAssertEqual(p[1], 0.999 * -1.898 + 0.1, accuracy: 1e-5)
        XCTAssertEqual(p[2], 2.9 - 0.1, accuracy: 1e-5)
        XCTAssertEqual(opt.firstMoment[0], 0.095, accuracy: 1e-7)
    }

    /// The fused pass (the clip's factor applied as each gradient is read, split over two workers,
    /// finiteness checked on the way) against clipping the buffer and then the one-worker update:
    /// the same bits, over decay and no-decay runs that straddle the workers' shares, and the
    /// gradients left unscaled. A NaN gradient makes it report non-finite weights.
    func testFusedClipAndUpdateEqualsClipThenUpdate() {
        let n = 300_003, exempt = [10..<20, 150_000..<150_100, n - 5..<n]
        var rng = SeededRandom(seed: 4)
        let start = (0..<n).map { _ in Float(rng.nextNormal()) }, grad = (0..<n).map { _ in Float(rng.nextNormal()) * 0.01 }
        let hp = AdamWHyperparameters(weightDecay: 0.1)
        let saved = BLASThreads.current
        defer { BLASThreads.set(saved) }
        BLASThreads.set(1)
        let p1 = FloatBuffer(start), g1 = FloatBuffer(grad), a1 = AdamW(parameterCount: n, hyperparameters: hp, noDecay: exempt)
        let norm = GradientClipping.clipGlobalNorm(g1, maxNorm: 0.5)
        XCTAssertGreaterThan(norm, 0.5, "the clip must act")
        a1.update(parameters: p1, gradients: g1, learningRate: 1e-2)
        a1.update(parameters: p1, gradients: g1, learningRate: 1e-2)
        BLASThreads.set(2)
        let p2 = FloatBuffer(start), g2 = FloatBuffer(grad), a2 = AdamW(parameterCount: n, hyperparameters: hp, noDecay: exempt)
        let scale = GradientClipping.scale(norm: GradientClipping.globalNorm(g2), maxNorm: 0.5)
        XCTAssertTrue(a2.update(parameters: p2, gradients: g2, learningRate: 1e-2, gradientScale: scale))
        XCTAssertTrue(a2.update(parameters: p2, gradients: g2, learningRate: 1e-2, gradientScale: scale))
        XCTAssertEqual(p2.toArray(), p1.toArray())
        XCTAssertEqual(a2.firstMoment.toArray(), a1.firstMoment.toArray())
        XCTAssertEqual(a2.secondMoment.toArray(), a1.secondMoment.toArray())
        XCTAssertEqual(g2.toArray(), grad, "the gradients are read, not rescaled")
        g2[n / 2 + 3] = .nan
        XCTAssertFalse(a2.update(parameters: p2, gradients: g2, learningRate: 1e-2, gradientScale: scale))
        XCTAssertTrue(p2[n / 2 + 3].isNaN)
    }

    /// A gradient that changes sign: the update is m̂/(√v̂+ε), not sign(g).
    func testMomentsAndBiasCorrection() {
        let p = FloatBuffer([0]), g = FloatBuffer([1])
        let opt = AdamW(parameterCount: 1, hyperparameters: AdamWHyperparameters(weightDecay: 0))
        opt.update(parameters: p, gradients: g, learningRate: 1)
        g[0] = -1
        opt.update(parameters: p, gradients: g, learningRate: 1)
        // m = 0.09 − 0.1 = −0.01, m̂ = −0.01/0.19; v = 0.000999 + 0.001 = 0.001999, v̂ = 1.
        XCTAssertEqual(p[0], -1 + (0.01 / 0.19), accuracy: 1e-5)
    }

    func testStateRestoresAndRejectsWrongSizes() throws {
        let p = FloatBuffer([1, 2]), g = FloatBuffer([0.3, -0.3])
        let a = AdamW(parameterCount: 2), b = AdamW(parameterCount: 2)
        a.update(parameters: p, gradients: g, learningRate: 0.01)
        try b.restore(step: a.step, firstMoment: a.firstMoment.toArray(), secondMoment: a.secondMoment.toArray())
        let pa = FloatBuffer(p.toArray()), pb = FloatBuffer(p.toArray())
        a.update(parameters: pa, gradients: g, learningRate: 0.01)
        b.update(parameters: pb, gradients: g, learningRate: 0.01)
        XCTAssertEqual(pa.toArray(), pb.toArray())
        XCTAssertThrowsError(try b.restore(step: 1, firstMoment: [0], secondMoment: [0, 0]))
    }

    /// A checkpoint written from the live optimizer (its buffers lent, not copied) reads back to
    /// the exact moments, step and weights; its optimizer.safetensors is byte-identical to one
    /// written from an owned copy of the same state; and the restored optimizer's next update is
    /// bit-identical to the original's.
    func testCheckpointFromLiveMomentsRoundTripsAndResumesBitExactly() throws {
        let model = try LlamaModel(config: .tiny, seed: 2)
        let opt = AdamW(layout: model.layout)
        var rng = SplitMix64(seed: 5)
        func randomGradients() { for i in 0..<model.gradients.count { model.gradients[i] = rng.float() } }
        for _ in 0..<3 {
            randomGradients()
            opt.update(parameters: model.parameters, gradients: model.gradients, learningRate: 1e-2)
        }
        let root = try makeTemporaryDirectory(self)
        try model.save(to: root + "/live", optimizerState: opt)
        let copy = OptimizerState(step: opt.step, firstMoment: opt.firstMoment.toArray(), secondMoment: opt.secondMoment.toArray())
        try model.save(to: root + "/copy", optimizerState: copy)

        let back = try LlamaCheckpoint.read(from: root + "/live")
        let state = try XCTUnwrap(back.optimizerState)
        XCTAssertEqual(state.step, 3)
        XCTAssertEqual(state.firstMoment.map(\.bitPattern), copy.firstMoment.map(\.bitPattern))
        XCTAssertEqual(state.secondMoment.map(\.bitPattern), copy.secondMoment.map(\.bitPattern))
        XCTAssertEqual(back.parameters.map(\.bitPattern), model.parameters.toArray().map(\.bitPattern))
        let liveFile = try Data(contentsOf: URL(fileURLWithPath: root + "/live/" + LlamaCheckpoint.optimizerFile))
        XCTAssertTrue(liveFile == (try Data(contentsOf: URL(fileURLWithPath: root + "/copy/" + LlamaCheckpoint.optimizerFile))))

        let resumed = AdamW(layout: model.layout)
        try resumed.restore(state)
        randomGradients()
        let pa = FloatBuffer(model.parameters.toArray()), pb = FloatBuffer(back.parameters)
        opt.update(parameters: pa, gradients: model.gradients, learningRate: 1e-2)
        resumed.update(parameters: pb, gradients: model.gradients, learningRate: 1e-2)
        XCTAssertEqual(pa.toArray().map(\.bitPattern), pb.toArray().map(\.bitPattern))

        XCTAssertThrowsError(try model.save(to: root + "/wrong", optimizerState: AdamW(parameterCount: 3))) { error in
            guard case .invalidConfig(let why)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("optimizer moments hold 3/3 floats"), why)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/wrong"))
    }

    func testLayoutOptimizerExemptsNormsOnly() throws {
        let layout = ParameterLayout(config: .tiny)
        let opt = AdamW(layout: layout)
        XCTAssertEqual(opt.noDecay.count, 2 * LlamaConfig.tiny.numHiddenLayers + 1)
        XCTAssertTrue(opt.noDecay.allSatisfy { $0.count == LlamaConfig.tiny.hiddenSize })
    }

    func testGlobalNormClipping() {
        let g = FloatBuffer([3, 4])
        XCTAssertEqual(GradientClipping.clipGlobalNorm(g, maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(g[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(g[1], 0.8, accuracy: 1e-6)
        let small = FloatBuffer([0.3, 0.4])
        XCTAssertEqual(GradientClipping.clipGlobalNorm(small, maxNorm: 1), 0.5, accuracy: 1e-6)
        XCTAssertEqual(small.toArray(), [0.3, 0.4])
    }

    func testWarmupCosineSchedule() {
        let s = WarmupCosineSchedule(peakLearningRate: 1e-3, warmupSteps: 4, totalSteps: 14, minLearningRate: 1e-4)
        XCTAssertEqual(s.learningRate(step: 0), 2.5e-4, accuracy: 1e-9)
        XCTAssertEqual(s.learningRate(step: 3), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(s.learningRate(step: 4), 1e-3, accuracy: 1e-9)           // cos(0)
        XCTAssertEqual(s.learningRate(step: 9), 5.5e-4, accuracy: 1e-8)          // halfway: (max+min)/2
        XCTAssertEqual(s.learningRate(step: 6), 1e-4 + 9e-4 * Float(0.5 * (1 + cos(Double.pi * 0.2))), accuracy: 1e-8)
        XCTAssertEqual(s.learningRate(step: 14), 1e-4)
        XCTAssertEqual(s.learningRate(step: 100), 1e-4)
    }
}
