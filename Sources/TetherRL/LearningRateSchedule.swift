import Foundation

/// Linear warmup then cosine decay (Loshchilov & Hutter 2017, SGDR, without restarts), the usual
/// LM fine-tuning schedule. `step` is 0-based: the rate for the (step+1)-th update.
///   step < W:         η = peak · (step + 1) / W
///   W ≤ step < S:     η = min + (peak − min) · ½ (1 + cos(π · (step − W) / (S − W)))
///   step ≥ S:         η = min
public struct WarmupCosineSchedule: Sendable, Codable, Equatable {
    public var peakLearningRate: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minLearningRate: Float

    public init(peakLearningRate: Float, warmupSteps: Int, totalSteps: Int, minLearningRate: Float = 0) {
        self.peakLearningRate = peakLearningRate
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(totalSteps, self.warmupSteps)
        self.minLearningRate = minLearningRate
    }

    public func learningRate(step: Int) -> Float {
        if step < warmupSteps { return peakLearningRate * Float(step + 1) / Float(warmupSteps) }
        if step >= totalSteps { return minLearningRate }
        let progress = Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
        return minLearningRate + (peakLearningRate - minLearningRate) * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}
