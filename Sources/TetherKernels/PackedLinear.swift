import Dispatch

/// A linear layer `y = x·Wᵀ` over a weight packed once into column panels, for the few-row GEMMs
/// of a decoding step.
///
/// With row-major cblas the weight `[out, in]` is OpenBLAS's "A" operand, which it re-packs on
/// every call: at a few dozen rows that copy (every weight read and written once per token) costs
/// about 40 % of the multiply itself. Packing it once, into the layout the micro-kernel streams,
/// removes the copy from the step (the GotoBLAS scheme, Goto & van de Geijn 2008, with the packed
/// operand kept across calls).
///
/// Layout: panels of `panelWidth` (w) output features; panel p holds `W[p·w + j, k]` at `k·w + j`,
/// so one step of the inner-product loop reads w consecutive floats. The last panel is zero-padded
/// when `out` is not a multiple of w.
///
/// Micro-kernel, sized to the register file (BLIS's analytical model, Low et al. 2016: as many
/// accumulators as leave room for one panel step and one broadcast):
/// - AVX2 (16 ymm): w = 24, 4 rows × 24 columns, 12 SIMD8 accumulators plus three panel vectors and
///   one broadcast; each panel vector feeds four FMAs and each broadcast three.
/// - AVX-512 (`TETHER_AVX512`, 32 zmm): w = 48, 8 rows × 48 columns, 24 SIMD16 accumulators plus
///   three panel vectors and one broadcast; each panel vector feeds eight FMAs, so the panel is
///   streamed once per eight rows. Measured at 64 rows on Zen 5 against 4×48, 6×48 and 8×32 (all
///   about 2× the AVX2 tile, 8×48 the best or level with the best on every decoding shape); a
///   4 × 48 kernel takes row remainders of at most four.
/// Rows are read straight from the row-major input.
public enum PackedLinear {
    #if TETHER_AVX512
    public static let panelWidth = 48
    static let rowBlock = 8
    #else
    public static let panelWidth = 24
    static let rowBlock = 4
    #endif

    /// Floats of the packed form of a `[outFeatures, inFeatures]` weight.
    public static func packedCount(outFeatures: Int, inFeatures: Int) -> Int {
        (outFeatures + panelWidth - 1) / panelWidth * panelWidth * inFeatures
    }

    /// Packs `weight` (`[outFeatures, inFeatures]`, row-major) into `packed`
    /// (`packedCount(outFeatures:inFeatures:)` floats). Panels are independent, so `workers` threads
    /// pack disjoint panel ranges.
    public static func pack(
        weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int, into packed: UnsafeMutablePointer<Float>, workers: Int = 1
    ) {
        let panels = (n + panelWidth - 1) / panelWidth
        forEachPanelRange(panels: panels, workers: workers) { range in
            for p in range { packPanel(p, weight: weight, outFeatures: n, inFeatures: k, into: packed + p * panelWidth * k) }
        }
    }

    /// One panel: the transpose of the `panelWidth × k` block of rows, eight columns of the weight at a
    /// time so that each row is read in whole SIMD8 vectors.
    static func packPanel(_ p: Int, weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int, into dst: UnsafeMutablePointer<Float>) {
        let first = p * panelWidth, width = min(panelWidth, n - first)
        if width < panelWidth { dst.update(repeating: 0, count: panelWidth * k) }
        let vectorK = k & ~7
        for j in 0..<width {
            let row = weight + (first + j) * k
            var c = 0
            while c < vectorK {
                let v = VectorOps.load(row + c)
                let d = dst + c * panelWidth + j
                d[0] = v[0]; d[panelWidth] = v[1]; d[2 * panelWidth] = v[2]; d[3 * panelWidth] = v[3]
                d[4 * panelWidth] = v[4]; d[5 * panelWidth] = v[5]; d[6 * panelWidth] = v[6]; d[7 * panelWidth] = v[7]
                c += 8
            }
            while c < k { dst[c * panelWidth + j] = row[c]; c += 1 }
        }
    }

    /// `y[rows × outFeatures] (+)= x[rows × inFeatures] · Wᵀ` with W given packed. `accumulate`
    /// adds to `y` (a residual branch) instead of overwriting it. The panels are split over
    /// `workers` threads, each writing its own columns of `y`.
    public static func forward(
        x: UnsafePointer<Float>, packed: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false, workers: Int = 1
    ) {
        if rows == 0 || outFeatures == 0 { return }
        let panels = (outFeatures + panelWidth - 1) / panelWidth
        forEachPanelRange(panels: panels, workers: workers) { range in
            forwardPanels(range, x: x, packed: packed, y: y, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, accumulate: accumulate)
        }
    }

    /// The valid `rows × width` corner of a partial tile (`panelWidth` floats a row) into `y`,
    /// added to it or overwriting it.
    @inline(__always)
    static func copyOut(_ tile: UnsafePointer<Float>, rows: Int, width: Int, to y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        for i in 0..<rows {
            let dst = y + i * ldy, src = tile + i * panelWidth
            if accumulate {
                for j in 0..<width { dst[j] += src[j] }
            } else {
                dst.update(from: src, count: width)
            }
        }
    }

    /// Runs `body` over `workers` contiguous, near-equal ranges of `0..<panels`, side by side.
    static func forEachPanelRange(panels: Int, workers: Int, _ body: (Range<Int>) -> Void) {
        let w = max(1, min(workers, panels))
        if w == 1 { body(0..<panels); return }
        // Each range touches only its own panels (and columns of the output): race-free.
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: w) { t in body((panels * t / w)..<(panels * (t + 1) / w)) }
        }
    }

    #if TETHER_AVX512
    static func forwardPanels(
        _ range: Range<Int>, x: UnsafePointer<Float>, packed: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures k: Int, outFeatures n: Int, accumulate: Bool
    ) {
        // Full blocks of 8 rows run on WideGEMM's 8 × 48 micro-kernel over the rows in place (the
        // panel is its B layout); a remainder runs on the 4 × 48 kernel, twice for 5 to 7 rows.
        // Partial tiles (a zero-padded last panel, a row remainder of 3, 5, 6 or 7) are computed
        // into this tile and copied out; remainders of 4 and 8 rows of a full panel go straight to `y`.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rowBlock * panelWidth) { buffer in
            let t = buffer.baseAddress!
            for p in range {
                let panel = packed + p * panelWidth * k, col = p * panelWidth, width = min(panelWidth, n - col)
                var r = 0
                while r < rows {
                    let height = min(rowBlock, rows - r)
                    let direct = width == panelWidth && (height == 8 || height == 4)
                    let out = direct ? y + r * n + col : t, ldy = direct ? n : panelWidth
                    // Rows past the end repeat the last one: computed, never stored.
                    @inline(__always) func row(_ i: Int) -> UnsafePointer<Float> { x + (r + min(i, height - 1)) * k }
                    if height == 8 {
                        WideGEMM.kernelRows(kc: k, a: x + r * k, lda: k, b: panel, c: out, ldc: ldy, alpha: 1,
                                            beta: direct && accumulate ? 1 : 0)
                    } else {
                        microKernel4(row(0), row(1), row(2), row(3), panel: panel, k: k, y: out, ldy: ldy, accumulate: direct && accumulate)
                        if height > 4 {
                            microKernel4(row(4), row(5), row(6), row(7), panel: panel, k: k, y: out + 4 * ldy, ldy: ldy, accumulate: false)
                        }
                    }
                    if !direct { copyOut(t, rows: height, width: width, to: y + r * n + col, ldy: n, accumulate: accumulate) }
                    r += height
                }
            }
        }
    }

    /// The 4 × 48 block `y[0..<4, 0..<48] (+)= Σ_k x_i[k] · panel[k, 0..<48]`, for row remainders.
    @inline(__always)
    static func microKernel4(
        _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>,
        panel: UnsafePointer<Float>, k: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool
    ) {
        var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>()
        var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>()
        var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>()
        var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>()
        var b = panel
        for c in 0..<k {
            let b0 = VectorOps.load16(b), b1 = VectorOps.load16(b + 16), b2 = VectorOps.load16(b + 32)
            var v = SIMD16<Float>(repeating: x0[c])
            a00 = a00.addingProduct(v, b0); a01 = a01.addingProduct(v, b1); a02 = a02.addingProduct(v, b2)
            v = SIMD16<Float>(repeating: x1[c])
            a10 = a10.addingProduct(v, b0); a11 = a11.addingProduct(v, b1); a12 = a12.addingProduct(v, b2)
            v = SIMD16<Float>(repeating: x2[c])
            a20 = a20.addingProduct(v, b0); a21 = a21.addingProduct(v, b1); a22 = a22.addingProduct(v, b2)
            v = SIMD16<Float>(repeating: x3[c])
            a30 = a30.addingProduct(v, b0); a31 = a31.addingProduct(v, b1); a32 = a32.addingProduct(v, b2)
            b += panelWidth
        }
        store3(a00, a01, a02, y, accumulate)
        store3(a10, a11, a12, y + ldy, accumulate)
        store3(a20, a21, a22, y + 2 * ldy, accumulate)
        store3(a30, a31, a32, y + 3 * ldy, accumulate)
    }

    /// One row of a tile: `y[0..<48] (+)= (a0, a1, a2)`.
    @inline(__always)
    static func store3(_ a0: SIMD16<Float>, _ a1: SIMD16<Float>, _ a2: SIMD16<Float>, _ y: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        if accumulate {
            VectorOps.store16(a0 + VectorOps.load16(y), y)
            VectorOps.store16(a1 + VectorOps.load16(y + 16), y + 16)
            VectorOps.store16(a2 + VectorOps.load16(y + 32), y + 32)
        } else {
            VectorOps.store16(a0, y); VectorOps.store16(a1, y + 16); VectorOps.store16(a2, y + 32)
        }
    }
    #else
    static func forwardPanels(
        _ range: Range<Int>, x: UnsafePointer<Float>, packed: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rows: Int, inFeatures k: Int, outFeatures n: Int, accumulate: Bool
    ) {
        // Partial tiles (the last rows when `rows` is not a multiple of 4, the zero-padded last
        // panel) are computed into this tile and copied out.
        var tile = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(),
                    SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
        withUnsafeMutableBytes(of: &tile) { raw in
            let t = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for p in range {
                let panel = packed + p * panelWidth * k, col = p * panelWidth, width = min(panelWidth, n - col)
                var r = 0
                while r < rows {
                    let height = min(rowBlock, rows - r)
                    // Rows past the end repeat the last one: computed, never stored.
                    let x0 = x + r * k, x1 = x + (r + min(1, height - 1)) * k
                    let x2 = x + (r + min(2, height - 1)) * k, x3 = x + (r + min(3, height - 1)) * k
                    if height == rowBlock && width == panelWidth {
                        microKernel(x0, x1, x2, x3, panel: panel, k: k, y: y + r * n + col, ldy: n, accumulate: accumulate)
                    } else {
                        microKernel(x0, x1, x2, x3, panel: panel, k: k, y: t, ldy: panelWidth, accumulate: false)
                        copyOut(t, rows: height, width: width, to: y + r * n + col, ldy: n, accumulate: accumulate)
                    }
                    r += rowBlock
                }
            }
        }
    }

    /// The 4 × 24 block `y[0..<4, 0..<24] (+)= Σ_k x_i[k] · panel[k, 0..<24]`.
    @inline(__always)
    static func microKernel(
        _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>,
        panel: UnsafePointer<Float>, k: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool
    ) {
        var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>()
        var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>()
        var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>()
        var a30 = SIMD8<Float>(), a31 = SIMD8<Float>(), a32 = SIMD8<Float>()
        var b = panel
        for c in 0..<k {
            let b0 = VectorOps.load(b), b1 = VectorOps.load(b + 8), b2 = VectorOps.load(b + 16)
            var v = SIMD8<Float>(repeating: x0[c])
            a00 = a00.addingProduct(v, b0); a01 = a01.addingProduct(v, b1); a02 = a02.addingProduct(v, b2)
            v = SIMD8<Float>(repeating: x1[c])
            a10 = a10.addingProduct(v, b0); a11 = a11.addingProduct(v, b1); a12 = a12.addingProduct(v, b2)
            v = SIMD8<Float>(repeating: x2[c])
            a20 = a20.addingProduct(v, b0); a21 = a21.addingProduct(v, b1); a22 = a22.addingProduct(v, b2)
            v = SIMD8<Float>(repeating: x3[c])
            a30 = a30.addingProduct(v, b0); a31 = a31.addingProduct(v, b1); a32 = a32.addingProduct(v, b2)
            b += panelWidth
        }
        if accumulate {
            a00 += VectorOps.load(y); a01 += VectorOps.load(y + 8); a02 += VectorOps.load(y + 16)
            a10 += VectorOps.load(y + ldy); a11 += VectorOps.load(y + ldy + 8); a12 += VectorOps.load(y + ldy + 16)
            a20 += VectorOps.load(y + 2 * ldy); a21 += VectorOps.load(y + 2 * ldy + 8); a22 += VectorOps.load(y + 2 * ldy + 16)
            a30 += VectorOps.load(y + 3 * ldy); a31 += VectorOps.load(y + 3 * ldy + 8); a32 += VectorOps.load(y + 3 * ldy + 16)
        }
        VectorOps.store(a00, y); VectorOps.store(a01, y + 8); VectorOps.store(a02, y + 16)
        VectorOps.store(a10, y + ldy); VectorOps.store(a11, y + ldy + 8); VectorOps.store(a12, y + ldy + 16)
        VectorOps.store(a20, y + 2 * ldy); VectorOps.store(a21, y + 2 * ldy + 8); VectorOps.store(a22, y + 2 * ldy + 16)
        VectorOps.store(a30, y + 3 * ldy); VectorOps.store(a31, y + 3 * ldy + 8); VectorOps.store(a32, y + 3 * ldy + 16)
    }
    #endif
}
