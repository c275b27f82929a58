#if canImport(Glibc)
import Glibc
#endif

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
    /// Bytes mapped with mmap(2) by `init(reserving:)`, 0 for a heap allocation.
    private let mappedBytes: Int

    private init(count: Int, pointer: UnsafeMutablePointer<Float>, mappedBytes: Int) {
        self.count = count
        self.pointer = pointer
        self.mappedBytes = mappedBytes
    }

    /// A zero-filled buffer of `count` floats.
    public convenience init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        let pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
        self.init(count: count, pointer: pointer, mappedBytes: 0)
    }

    /// A zero-filled buffer of `count` floats whose pages cost nothing until first touched: private
    /// anonymous memory from mmap(2) is zero by definition, so nothing is written up front. A
    /// workspace reserved for the largest shape a run can bring then faults in only the pages the
    /// shapes that do arrive use, and is never reallocated (and faulted in again) when a larger
    /// one comes. On a VM whose host backs guest memory lazily a first touch costs ~3 s per GB, so
    /// the difference is seconds per learner step. Falls back to `init(count:)` for small buffers
    /// and when the mapping fails.
    public convenience init(reserving count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard bytes >= Self.reservationThreshold,
              let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), raw != MAP_FAILED
        else {
            self.init(count: count)
            return
        }
        self.init(count: count, pointer: raw.bindMemory(to: Float.self, capacity: max(count, 1)), mappedBytes: bytes)
    }

    /// Maps every page of a buffer that holds nothing yet (a fresh `init(reserving:)` workspace)
    /// now rather than at its first use, in one madvise(MADV_POPULATE_WRITE) call (Linux 5.14)
    /// where the kernel has it, else by writing a zero to each page. A heap buffer is already
    /// mapped: `init(count:)` wrote its zeros.
    public func prefault() {
        guard mappedBytes > 0 else { return }
        if madvise(UnsafeMutableRawPointer(pointer), mappedBytes, Self.populateWrite) == 0 { return }
        let floatsPerPage = max(1, Int(sysconf(Int32(_SC_PAGESIZE))) / MemoryLayout<Float>.stride)
        for i in stride(from: 0, to: count, by: floatsPerPage) { pointer[i] = 0 }
    }

    /// MADV_POPULATE_WRITE, which Glibc's headers may predate.
    private static let populateWrite: Int32 = 23

    /// Below this a heap allocation is cheaper than a mapping of its own.
    static let reservationThreshold = 1 << 20

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit {
        if mappedBytes > 0 { munmap(UnsafeMutableRawPointer(pointer), mappedBytes) } else { UnsafeMutableRawPointer(pointer).deallocate() }
    }

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
