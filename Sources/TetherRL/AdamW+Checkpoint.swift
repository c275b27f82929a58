import TetherModel

/// AdamW lends its moment buffers to `optimizer.safetensors` (`OptimizerMoments`) and restores
/// them from a read-back `OptimizerState`, so a learner or trainer saves and resumes its optimizer
/// with one call each, and a save copies nothing.
extension AdamW: OptimizerMoments {
    public func withMoments<R>(_ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(UnsafeBufferPointer(firstMoment.buffer), UnsafeBufferPointer(secondMoment.buffer)) }
    }

    public func restore(_ state: OptimizerState) throws {
        try restore(step: state.step, firstMoment: state.firstMoment, secondMoment: state.secondMoment)
    }
}
