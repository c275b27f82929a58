import TetherModel

/// AdamW's moments and step as the `optimizer.safetensors` of a checkpoint (`OptimizerState`),
/// so a learner or trainer saves and resumes its optimizer with one call each.
extension AdamW {
    public var checkpointState: OptimizerState {
        OptimizerState(step: step, firstMoment: firstMoment.toArray(), secondMoment: secondMoment.toArray())
    }

    public func restore(_ state: OptimizerState) throws {
        try restore(step: state.step, firstMoment: state.firstMoment, secondMoment: state.secondMoment)
    }
}
