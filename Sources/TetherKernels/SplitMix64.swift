/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator whose stream is fixed by its
/// definition, so a task dataset (or a test's input) is the same for a seed on every platform and
/// Swift version (the standard library's `random(in:using:)` algorithms are not guaranteed
/// stable). It also seeds `SeededRandom`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `range` by multiply-shift (Lemire 2019 without the rejection step; the bias is
    /// below 2⁻⁴⁰ for the ranges tasks use).
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) + 1
        return range.lowerBound + Int(next().multipliedFullWidth(by: span).high)
    }

    public mutating func element<T>(of array: [T]) -> T { array[int(in: 0 ... array.count - 1)] }
}
