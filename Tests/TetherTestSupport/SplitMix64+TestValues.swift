import TetherKernels

extension SplitMix64 {
    /// Uniform in [−1, 1) with 24 bits: reproducible test inputs.
    public mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    public mutating func floats(_ n: Int, scale: Float = 0.1) -> [Float] { (0 ..< n).map { _ in float() * scale } }
}
