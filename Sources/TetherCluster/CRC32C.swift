import CTetherCRC32C

/// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78), the checksum of TFRecord framing and of
/// checkpoint files. Contiguous bytes go through `CTetherCRC32C`: the SSE4.2 `crc32` instruction,
/// three streams interleaved (over 10 GB/s), or slicing-by-8 tables where the CPU lacks it.
public enum CRC32C {
    private static let table: [UInt32] = (0 ..< 256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0 ..< 8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        bytes.withContiguousStorageIfAvailable { checksum(UnsafeRawBufferPointer($0)) } ?? bytewise(bytes)
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { update(0, bytes) }

    /// The checksum of the bytes that `crc` covers followed by `bytes`, so a file can be checksummed
    /// piece by piece.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        tether_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    /// Whether `checksum` runs on the `crc32` instruction.
    public static var hardwareAccelerated: Bool { tether_crc32c_hardware() != 0 }

    /// The slicing-by-8 fallback whatever the CPU, so tests check it on machines that never take it.
    public static func slicingBy8(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        tether_crc32c_portable(0, bytes.baseAddress, bytes.count)
    }

    /// One table lookup per byte (Sarwate 1988): the reference the fast paths are tested against, and
    /// the path for sequences without contiguous storage.
    public static func bytewise<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for byte in bytes { crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }

    /// TensorFlow's masking (`crc32c::Mask`): rotate right by 15 and add a constant, so a CRC stored
    /// inside checksummed data does not checksum to a fixed pattern.
    public static func masked(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
