/// An update that produced a non-finite log-prob, loss, gradient or weight. Training on cannot
/// recover (NaN spreads to every weight within a step), so the driver stops without checkpointing
/// or broadcasting these weights: the last committed checkpoint stays the last good one. The usual
/// cause is a step size the model cannot take, so the message names the keys that set it.
public struct NonFiniteUpdate: Error, CustomStringConvertible {
    /// The version this update would have produced (filled in by the driver).
    public var version: Int?
    public var quantity: String
    public var learningRate: Float

    public init(version: Int? = nil, quantity: String, learningRate: Float) {
        self.version = version; self.quantity = quantity; self.learningRate = learningRate
    }

    public var description: String {
        let update = version.map { "the update to version \($0)" } ?? "an update"
        return "\(update) produced a non-finite \(quantity); stopping without saving these weights (the last checkpoint is kept). "
            + "Likely cause: learner.learning_rate \(learningRate) too large for this model (also check learner.grad_clip_norm, "
            + "algorithm.kl_beta, algorithm.entropy_coef and staleness.is_cap)"
    }
}
