import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if TETHER_AVX512
/// Single-precision GEMM on 512-bit vectors, for the learner's tall GEMMs on AVX-512 machines:
/// `C = alpha · op(A) · op(B) + beta · C`, row-major, the contract of `cblas_sgemm`.
///
/// OpenBLAS runs its AVX2 kernels here (the environment pins `OPENBLAS_CORETYPE=Haswell`), half of
/// what Zen 5's full-width FMA units retire per cycle. This is the GotoBLAS/BLIS layered algorithm
/// (Goto & van de Geijn 2008, "Anatomy of High-Performance Matrix Multiplication"; Van Zee & van de
/// Geijn 2015, "BLIS"), with the loop roles of BLIS's row-vectorised kernels: C is vectorised along
/// its rows (N), so the operand that stays in L1 across micro-kernel calls is the broadcast one,
/// an `mr × kc` sliver of A, while a `kc × ncBlock` block of B sits in L2 and its `kc × nr` slivers
/// stream through the kernel.
///
///     for ic in M by mcBlock:                       A block, mcBlock × kc, in L3
///       for pc in K by kc:    pack A[ic…, pc…] into mr-tall panels
///         for jc in N by ncBlock:  pack B[pc…, jc…] into nr-wide panels   (L2)
///           for each A panel (L1): for each B panel: micro-kernel on an mr × nr tile of C
///
/// Transposes are absorbed by the packing, so one micro-kernel serves all four combinations; A
/// not transposed is not packed at all (its rows are the k-contiguous streams the kernel
/// broadcasts from), which saves a copy of A per call for the forward and input-gradient GEMMs.
/// Partial panels are zero-padded; a partial tile of C goes through a local tile. Each entry of C
/// is the sequential fused multiply-add sum over k (rounded at each `kc` block boundary), whatever
/// m, n, the tile it falls in or the thread count: a row of the product is bitwise the same
/// whether computed in a batch of one or of thousands, which keeps micro-batched, blocked and
/// shared-prompt passes equal to their unsplit forms (OpenBLAS's edge kernels sum differently).
/// Multi-threaded by splitting C into contiguous row (or column) blocks, one per thread of the
/// BLAS budget, each running the whole algorithm with its own pack buffers.
enum WideGEMM {
    /// Micro-tile: 8 rows × 48 columns, 24 zmm accumulators, three B vectors and a broadcast A
    /// element per row: 27 of the 32 registers. Per k step three vector loads and eight broadcasts
    /// feed 24 FMAs (8 × 32 and 12 × 32 measured the same at the kernel's peak, ~235 GFLOP/s per
    /// Zen 5 core; 8 × 48 reads the fewest bytes per FMA).
    static let mr = 8, nr = 48
    /// Depth of a rank-kc update: the A sliver (mr × kc, 12 KB) stays in Zen 5's 48 KB L1d.
    static let kc = 384
    /// Columns of the packed B block: kc × ncBlock floats (720 KB) in the 1 MB L2.
    static let ncBlock = 480
    /// Rows of the packed A block (1.5 MB, in L3): B is packed once per mcBlock rows.
    static let mcBlock = 1024

    /// Floats of one thread's pack buffers: the A block, the B block and a partial tile.
    static let bufferFloats = mcBlock * kc + kc * ncBlock + mr * nr

    /// Multiply-adds per thread below which a second thread costs more (waking it, ~5 µs) than it saves.
    static let minimumVolumePerThread = 1 << 20

    /// `C[m×n] = alpha · op(A) · op(B) + beta · C` on `threads` threads. `beta == 0` overwrites C
    /// without reading it (NaN there is not propagated), as BLAS does.
    static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scale(c, ldc: ldc, rows: 0..<m, columns: 0..<n, by: beta)
            return
        }
        let A = Operand(p: a, ld: lda, trans: transA), B = Operand(p: b, ld: ldb, trans: transB)
        // Split C on whole tiles, into blocks of at least four, along the side that leaves each
        // thread the fewest floats to pack: a thread packs its share of the split operand and all
        // of the other (A only when transposed, as it is read in place otherwise).
        let tilesM = (m + mr - 1) / mr, tilesN = (n + nr - 1) / nr
        let packedByRows = (transA ? m * k / threads : 0) + k * n, packedByColumns = (transA ? m * k : 0) + k * n / threads
        let byRows = tilesN < 4 * threads || (tilesM >= 4 * threads && packedByRows <= packedByColumns)
        let tiles = byRows ? tilesM : tilesN
        let w = max(1, min(threads, tiles / 4, m * n * k / minimumVolumePerThread))
        if w == 1 {
            blocked(A, B, rows: 0..<m, columns: 0..<n, k: k, alpha: alpha, beta: beta, c: c, ldc: ldc)
            return
        }
        // Each worker writes its own block of C and only reads A and B.
        nonisolated(unsafe) let c = c
        DispatchQueue.concurrentPerform(iterations: w) { t in
            let lo = tiles * t / w, hi = tiles * (t + 1) / w
            if byRows {
                blocked(A, B, rows: (lo * mr)..<min(m, hi * mr), columns: 0..<n, k: k, alpha: alpha, beta: beta, c: c, ldc: ldc)
            } else {
                blocked(A, B, rows: 0..<m, columns: (lo * nr)..<min(n, hi * nr), k: k, alpha: alpha, beta: beta, c: c, ldc: ldc)
            }
        }
    }

    /// A row-major operand and whether it enters the product transposed.
    struct Operand: @unchecked Sendable {
        let p: UnsafePointer<Float>, ld: Int, trans: Bool
    }

    /// `C[rows, columns]` = alpha · op(A)[rows, :] · op(B)[:, columns] + beta · C on the calling thread.
    static func blocked(
        _ A: Operand, _ B: Operand, rows: Range<Int>, columns: Range<Int>, k: Int,
        alpha: Float, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let buffers = threadBuffers()
        let packedA = buffers, packedB = buffers + mcBlock * kc, tile = packedB + kc * ncBlock
        for ic in stride(from: rows.lowerBound, to: rows.upperBound, by: mcBlock) {
            let mc = min(mcBlock, rows.upperBound - ic)
            for pc in stride(from: 0, to: k, by: kc) {
                let depth = min(kc, k - pc)
                // A not transposed is read in place: its rows are already k-contiguous, eight row
                // streams the kernel broadcasts from (only a partial last panel is packed, zero-padded).
                let direct = !A.trans
                let packedRows = direct ? mc / mr * mr : 0
                packA(A, rows: ic + packedRows, count: mc - packedRows, depth: pc, kc: depth, into: packedA)
                // Later rank-kc updates add to what the first one wrote.
                let b = pc == 0 ? beta : 1
                for jc in stride(from: columns.lowerBound, to: columns.upperBound, by: ncBlock) {
                    let nc = min(ncBlock, columns.upperBound - jc)
                    packB(B, columns: jc, count: nc, depth: pc, kc: depth, into: packedB)
                    for ir in stride(from: 0, to: mc, by: mr) {
                        let tileRows = min(mr, mc - ir)
                        let inPlace = ir < packedRows
                        let ap: UnsafePointer<Float> = inPlace ? A.p + ((ic + ir) * A.ld + pc) : UnsafePointer(packedA + (ir - packedRows) * depth)
                        for jr in stride(from: 0, to: nc, by: nr) {
                            let bp = packedB + jr * depth, tileColumns = min(nr, nc - jr)
                            let ct = c + (ic + ir) * ldc + jc + jr
                            let full = tileRows == mr && tileColumns == nr
                            let cp = full ? ct : tile, ld = full ? ldc : nr
                            let al: Float = full ? alpha : 1, be: Float = full ? b : 0
                            if inPlace {
                                kernelRows(kc: depth, a: ap, lda: A.ld, b: bp, c: cp, ldc: ld, alpha: al, beta: be)
                            } else {
                                kernel(kc: depth, a: ap, b: bp, c: cp, ldc: ld, alpha: al, beta: be)
                            }
                            if !full {
                                for r in 0..<tileRows {
                                    let dst = ct + r * ldc, src = tile + r * nr
                                    if b == 0 {
                                        for j in 0..<tileColumns { dst[j] = alpha * src[j] }
                                    } else {
                                        for j in 0..<tileColumns { dst[j] = alpha * src[j] + b * dst[j] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `op(A)[row0 ..< row0+count, p0 ..< p0+kc]` as mr-tall panels: panel i holds row `row0 + i·mr + r`
    /// at `i·mr·kc + k·mr + r`, rows past `count` zero.
    static func packA(_ A: Operand, rows row0: Int, count: Int, depth p0: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
        for i in stride(from: 0, to: count, by: mr) {
            let d = dst + i * kc, valid = min(mr, count - i)
            if A.trans {
                // op(A)[r, k] = A[k, r]: each k step is a contiguous run of the stored row.
                let src = A.p + p0 * A.ld + row0 + i
                if valid == mr {
                    for k in 0..<kc { VectorOps.store(VectorOps.load(src + k * A.ld), d + k * mr) }
                } else {
                    for k in 0..<kc {
                        for r in 0..<mr { d[k * mr + r] = r < valid ? src[k * A.ld + r] : 0 }
                    }
                }
            } else {
                gather(A.p + (row0 + i) * A.ld + p0, ld: A.ld, count: valid, width: mr, kc: kc, into: d, stride: mr)
            }
        }
    }

    /// `op(B)[p0 ..< p0+kc, col0 ..< col0+count]` as nr-wide panels: panel j holds column
    /// `col0 + j·nr + c` at `j·nr·kc + k·nr + c`, columns past `count` zero.
    static func packB(_ B: Operand, columns col0: Int, count: Int, depth p0: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
        for j in stride(from: 0, to: count, by: nr) {
            let d = dst + j * kc, valid = min(nr, count - j)
            if B.trans {
                // op(B)[k, c] = B[c, k]: eight stored rows at a time become eight columns of the panel.
                for c in stride(from: 0, to: nr, by: 8) {
                    let src = B.p + (col0 + j + c) * B.ld + p0, rows = max(0, min(8, valid - c))
                    if rows == 8 {
                        let vectorK = kc & ~7
                        for k in stride(from: 0, to: vectorK, by: 8) { transpose8x8(src + k, ld: B.ld, into: d + k * nr + c, stride: nr) }
                        gather(src + vectorK, ld: B.ld, count: 8, width: 8, kc: kc - vectorK, into: d + vectorK * nr + c, stride: nr)
                    } else {
                        gather(src, ld: B.ld, count: rows, width: 8, kc: kc, into: d + c, stride: nr)
                    }
                }
            } else {
                let src = B.p + p0 * B.ld + col0 + j
                if valid == nr {
                    for k in 0..<kc {
                        let s = src + k * B.ld, o = d + k * nr
                        VectorOps.store16(VectorOps.load16(s), o)
                        VectorOps.store16(VectorOps.load16(s + 16), o + 16)
                        VectorOps.store16(VectorOps.load16(s + 32), o + 32)
                    }
                } else {
                    for k in 0..<kc {
                        let s = src + k * B.ld, o = d + k * nr
                        for c in 0..<nr { o[c] = c < valid ? s[c] : 0 }
                    }
                }
            }
        }
    }

    /// Transposes `count` (≤ `width`) stored rows of `kc` floats into `kc` runs of `width` floats
    /// `stride` apart, zero-filling the runs past `count`.
    @inline(__always)
    static func gather(_ src: UnsafePointer<Float>, ld: Int, count: Int, width: Int, kc: Int, into d: UnsafeMutablePointer<Float>, stride: Int) {
        if count == width {
            for k in 0..<kc {
                for r in 0..<width { d[k * stride + r] = src[r * ld + k] }
            }
        } else {
            for k in 0..<kc {
                for r in 0..<width { d[k * stride + r] = r < count ? src[r * ld + k] : 0 }
            }
        }
    }

    /// `d[k·stride + r] = src[r·ld + k]` for an 8 × 8 block: three rounds of de-interleaving the
    /// eight rows (each round rotates the bits of the element index by one, so three of them turn
    /// row-major into column-major).
    @inline(__always)
    static func transpose8x8(_ src: UnsafePointer<Float>, ld: Int, into d: UnsafeMutablePointer<Float>, stride: Int) {
        var t = (VectorOps.load(src), VectorOps.load(src + ld), VectorOps.load(src + 2 * ld), VectorOps.load(src + 3 * ld),
                 VectorOps.load(src + 4 * ld), VectorOps.load(src + 5 * ld), VectorOps.load(src + 6 * ld), VectorOps.load(src + 7 * ld))
        for _ in 0..<3 {
            let p0 = SIMD16(lowHalf: t.0, highHalf: t.1), p1 = SIMD16(lowHalf: t.2, highHalf: t.3)
            let p2 = SIMD16(lowHalf: t.4, highHalf: t.5), p3 = SIMD16(lowHalf: t.6, highHalf: t.7)
            t = (p0.evenHalf, p1.evenHalf, p2.evenHalf, p3.evenHalf, p0.oddHalf, p1.oddHalf, p2.oddHalf, p3.oddHalf)
        }
        VectorOps.store(t.0, d); VectorOps.store(t.1, d + stride); VectorOps.store(t.2, d + 2 * stride); VectorOps.store(t.3, d + 3 * stride)
        VectorOps.store(t.4, d + 4 * stride); VectorOps.store(t.5, d + 5 * stride); VectorOps.store(t.6, d + 6 * stride); VectorOps.store(t.7, d + 7 * stride)
    }

    /// The micro-kernel on a packed A panel (8 floats per k step).
    @inline(never)
    static func kernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        microTile(kc: kc, a: a, rowStride: 1, kStep: mr, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta)
    }

    /// The micro-kernel on eight rows of A in place (`lda` apart, k-contiguous).
    @inline(never)
    static func kernelRows(kc: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        microTile(kc: kc, a: a, rowStride: lda, kStep: 1, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta)
    }

    /// `C[8×48] = alpha · Ã·B̃ + beta · C` over `kc` steps: row r of A at `a[r·rowStride + k·kStep]`,
    /// a B panel of 48 floats per step (64-byte aligned).
    @inline(__always)
    static func microTile(
        kc: Int, a: UnsafePointer<Float>, rowStride rs: Int, kStep: Int, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float
    ) {
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).load(as: SIMD16<Float>.self) }
        @inline(__always) func store(_ v0: SIMD16<Float>, _ v1: SIMD16<Float>, _ v2: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
            if beta == 0 {
                VectorOps.store16(alpha * v0, p); VectorOps.store16(alpha * v1, p + 16); VectorOps.store16(alpha * v2, p + 32)
            } else if alpha == 1 && beta == 1 {
                VectorOps.store16(VectorOps.load16(p) + v0, p); VectorOps.store16(VectorOps.load16(p + 16) + v1, p + 16); VectorOps.store16(VectorOps.load16(p + 32) + v2, p + 32)
            } else {
                VectorOps.store16((beta * VectorOps.load16(p)).addingProduct(alpha, v0), p)
                VectorOps.store16((beta * VectorOps.load16(p + 16)).addingProduct(alpha, v1), p + 16)
                VectorOps.store16((beta * VectorOps.load16(p + 32)).addingProduct(alpha, v2), p + 32)
            }
        }
        var c00 = SIMD16<Float>(); var c01 = SIMD16<Float>(); var c02 = SIMD16<Float>()
        var c10 = SIMD16<Float>(); var c11 = SIMD16<Float>(); var c12 = SIMD16<Float>()
        var c20 = SIMD16<Float>(); var c21 = SIMD16<Float>(); var c22 = SIMD16<Float>()
        var c30 = SIMD16<Float>(); var c31 = SIMD16<Float>(); var c32 = SIMD16<Float>()
        var c40 = SIMD16<Float>(); var c41 = SIMD16<Float>(); var c42 = SIMD16<Float>()
        var c50 = SIMD16<Float>(); var c51 = SIMD16<Float>(); var c52 = SIMD16<Float>()
        var c60 = SIMD16<Float>(); var c61 = SIMD16<Float>(); var c62 = SIMD16<Float>()
        var c70 = SIMD16<Float>(); var c71 = SIMD16<Float>(); var c72 = SIMD16<Float>()
        var ap = a, bp = b
        for _ in 0..<kc {
            let b0 = load(bp), b1 = load(bp + 16), b2 = load(bp + 32)
            let a0 = SIMD16<Float>(repeating: ap[0]); c00 = c00.addingProduct(a0, b0); c01 = c01.addingProduct(a0, b1); c02 = c02.addingProduct(a0, b2)
            let a1 = SIMD16<Float>(repeating: ap[1 * rs]); c10 = c10.addingProduct(a1, b0); c11 = c11.addingProduct(a1, b1); c12 = c12.addingProduct(a1, b2)
            let a2 = SIMD16<Float>(repeating: ap[2 * rs]); c20 = c20.addingProduct(a2, b0); c21 = c21.addingProduct(a2, b1); c22 = c22.addingProduct(a2, b2)
            let a3 = SIMD16<Float>(repeating: ap[3 * rs]); c30 = c30.addingProduct(a3, b0); c31 = c31.addingProduct(a3, b1); c32 = c32.addingProduct(a3, b2)
            let a4 = SIMD16<Float>(repeating: ap[4 * rs]); c40 = c40.addingProduct(a4, b0); c41 = c41.addingProduct(a4, b1); c42 = c42.addingProduct(a4, b2)
            let a5 = SIMD16<Float>(repeating: ap[5 * rs]); c50 = c50.addingProduct(a5, b0); c51 = c51.addingProduct(a5, b1); c52 = c52.addingProduct(a5, b2)
            let a6 = SIMD16<Float>(repeating: ap[6 * rs]); c60 = c60.addingProduct(a6, b0); c61 = c61.addingProduct(a6, b1); c62 = c62.addingProduct(a6, b2)
            let a7 = SIMD16<Float>(repeating: ap[7 * rs]); c70 = c70.addingProduct(a7, b0); c71 = c71.addingProduct(a7, b1); c72 = c72.addingProduct(a7, b2)
            ap += kStep; bp += nr
        }
        store(c00, c01, c02, c)
        store(c10, c11, c12, c + 1 * ldc)
        store(c20, c21, c22, c + 2 * ldc)
        store(c30, c31, c32, c + 3 * ldc)
        store(c40, c41, c42, c + 4 * ldc)
        store(c50, c51, c52, c + 5 * ldc)
        store(c60, c61, c62, c + 6 * ldc)
        store(c70, c71, c72, c + 7 * ldc)
    }

    /// `C[rows, columns] *= beta`, zero for `beta == 0` (the product is empty).
    static func scale(_ c: UnsafeMutablePointer<Float>, ldc: Int, rows: Range<Int>, columns: Range<Int>, by beta: Float) {
        if beta == 1 { return }
        for i in rows {
            let row = c + i * ldc
            for j in columns { row[j] = beta == 0 ? 0 : beta * row[j] }
        }
    }

    /// This thread's pack buffers (`bufferFloats`, 64-byte aligned), allocated on its first GEMM
    /// and freed when the thread exits.
    static func threadBuffers() -> UnsafeMutablePointer<Float> {
        if let p = pthread_getspecific(bufferKey) { return p.assumingMemoryBound(to: Float.self) }
        var p: UnsafeMutableRawPointer?
        posix_memalign(&p, 64, bufferFloats * MemoryLayout<Float>.stride)
        pthread_setspecific(bufferKey, p)
        return p!.bindMemory(to: Float.self, capacity: bufferFloats)
    }

    static let bufferKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()
}

#endif
