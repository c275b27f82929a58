/// The ggml tensor types the importer dequantizes, with ggml's ids (`enum ggml_type` in ggml.h)
/// and block layouts (`block_q4_0` … in ggml-common.h): a row of `ne[0]` values is stored as
/// `ne[0] / blockElements` blocks of `blockBytes` bytes each.
public enum GGUFTensorType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q8_0 = 8
    case q4_K = 12
    case q6_K = 14
    case bf16 = 30

    /// Values per block (1 for the plain float types; QK4_0 = QK4_1 = QK8_0 = 32, QK_K = 256).
    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q8_0: return 32
        case .q4_K, .q6_K: return 256
        }
    }

    /// Bytes per block: `{f16 d; u8 qs[16]}`, `{f16 d, m; u8 qs[16]}`, `{f16 d; i8 qs[32]}`,
    /// `{f16 d, dmin; u8 scales[12]; u8 qs[128]}`, `{u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}`.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18
        case .q4_1: return 20
        case .q8_0: return 34
        case .q4_K: return 144
        case .q6_K: return 210
        }
    }

    public var name: String { Self.ggmlNames[Int(rawValue)] }

    /// ggml's names for every type id it defines, so an unsupported one is reported by name.
    static let ggmlNames = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
        "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
        "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
    ]

    /// "Q5_K", or "type 77" for an id ggml does not define.
    static func describe(rawType: UInt32) -> String {
        rawType < ggmlNames.count ? ggmlNames[Int(rawType)] : "type \(rawType)"
    }
}
