/// ggml's block formats decoded to Float32, one row (a whole number of blocks) at a time,
/// following `dequantize_row_*` in ggml-quants.c value for value: each block stores an f16 scale
/// `d` (and for Q4_1/Q4_K an f16 offset), and small integers `q`; a value is `d·q` (+ offset).
/// Inner loops run over 32 contiguous values so the compiler vectorizes them.
enum GGUFDequantization {
    static func row(_ type: GGUFTensorType, from src: UnsafeRawPointer, to dst: UnsafeMutablePointer<Float>, count: Int) {
        let blocks = count / type.blockElements
        switch type {
        case .f32:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<count { dst[i] = half(src, 2 * i) }
        case .bf16:
            // BF16 is the top half of a Float32: widening is exact.
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .q8_0:
            for b in 0..<blocks { q8_0(src + b * 34, dst + b * 32) }
        case .q4_0:
            for b in 0..<blocks { q4_0(src + b * 18, dst + b * 32) }
        case .q4_1:
            for b in 0..<blocks { q4_1(src + b * 20, dst + b * 32) }
        case .q4_K:
            for b in 0..<blocks { q4_K(src + b * 144, dst + b * 256) }
        case .q6_K:
            for b in 0..<blocks { q6_K(src + b * 210, dst + b * 256) }
        }
    }

    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }

    /// `block_q8_0 {f16 d; i8 qs[32]}`: y = d·q.
    @inline(__always)
    static func q8_0(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(b, 0)
        let qs = (b + 2).assumingMemoryBound(to: Int8.self)
        for j in 0..<32 { y[j] = Float(qs[j]) * d }
    }

    /// `block_q4_0 {f16 d; u8 qs[16]}`: low nibbles are values 0–15, high nibbles 16–31; y = d·(q − 8).
    @inline(__always)
    static func q4_0(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(b, 0)
        let qs = (b + 2).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            y[j] = Float(Int32(qs[j] & 0x0F) - 8) * d
            y[j + 16] = Float(Int32(qs[j] >> 4) - 8) * d
        }
    }

    /// `block_q4_1 {f16 d; f16 m; u8 qs[16]}`: y = d·q + m.
    @inline(__always)
    static func q4_1(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(b, 0), m = half(b, 2)
        let qs = (b + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            y[j] = Float(qs[j] & 0x0F) * d + m
            y[j + 16] = Float(qs[j] >> 4) * d + m
        }
    }

    /// `block_q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}`: eight sub-blocks of 32 with 6-bit
    /// scales and mins packed in `scales` (`get_scale_min_k4`); y = d·sc·q − dmin·m.
    @inline(__always)
    static func q4_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(b, 0), dmin = half(b, 2)
        let scales = (b + 4).assumingMemoryBound(to: UInt8.self)
        let qs = (b + 16).assumingMemoryBound(to: UInt8.self)
        @inline(__always) func scaleMin(_ j: Int) -> (Float, Float) {
            if j < 4 { return (Float(scales[j] & 63), Float(scales[j + 4] & 63)) }
            return (Float((scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4)),
                    Float((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4)))
        }
        for chunk in 0..<4 {
            let (sc1, m1) = scaleMin(2 * chunk), (sc2, m2) = scaleMin(2 * chunk + 1)
            let d1 = d * sc1, min1 = dmin * m1, d2 = d * sc2, min2 = dmin * m2
            let q = qs + 32 * chunk, out = y + 64 * chunk
            for l in 0..<32 {
                out[l] = d1 * Float(q[l] & 0x0F) - min1
                out[l + 32] = d2 * Float(q[l] >> 4) - min2
            }
        }
    }

    /// `block_q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}`: 6-bit values (4 low bits in `ql`,
    /// 2 high bits in `qh`) minus 32, sixteen sub-blocks of 16 with 8-bit scales; y = d·sc·q.
    @inline(__always)
    static func q6_K(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(b, 208)
        for half in 0..<2 {
            let ql = (b + 64 * half).assumingMemoryBound(to: UInt8.self)
            let qh = (b + 128 + 32 * half).assumingMemoryBound(to: UInt8.self)
            let sc = (b + 192 + 8 * half).assumingMemoryBound(to: Int8.self)
            let out = y + 128 * half
            for l in 0..<32 {
                let s = l / 16
                let q1 = Int32((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32
                let q2 = Int32((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32
                let q3 = Int32((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                let q4 = Int32((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                out[l] = d * Float(sc[s]) * Float(q1)
                out[l + 32] = d * Float(sc[s + 2]) * Float(q2)
                out[l + 64] = d * Float(sc[s + 4]) * Float(q3)
                out[l + 96] = d * Float(sc[s + 6]) * Float(q4)
            }
        }
    }
}
