import TetherKernels

/// Normal test inputs from a fixed seed, so a failing gradient check reproduces.
struct Rand {
    var rng: SeededRandom
    init(_ seed: UInt64) { rng = SeededRandom(seed: seed) }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in Float(rng.nextNormal()) * scale } }
}
