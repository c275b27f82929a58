/// A Float32 array over one contiguous, 64-byte-aligned allocation (llm.c's `malloc`ed slabs).
///
/// Kernels take `UnsafeMutablePointer<Float>` views hoisted out of it, so hot loops see no Array
/// copy-on-write checks and no class-property exclusivity checks. The parameter buffer, gradients,
/// AdamW moments and activations are each one `FloatBuffer`.
///
/// `@unchecked Sendable`: the storage is a raw allocation with no internal synchronisation; a buffer is
/// owned by one thread at a time (a model, an optimizer, a sender) and handed over, never shared
/// while being written.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// A zero-filled buffer of `count` floats.
    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    /// A view of `count` floats starting at `offset` (a named parameter, one row block, …).
    public func slice(_ offset: Int, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(offset >= 0 && offset + count <= self.count, "slice \(offset)..<\(offset + count) outside buffer of \(self.count)")
        return UnsafeMutableBufferPointer(start: pointer + offset, count: count)
    }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "copy between buffers of \(other.count) and \(count) floats")
        pointer.update(from: other.pointer, count: count)
    }

    public func toArray() -> [Float] { Array(buffer) }
}
