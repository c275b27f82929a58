/// What can be wrong with a GGUF file or its import, each case naming the file and the key or
/// tensor at fault, so a user can tell a truncated download from an unsupported model.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    /// The file ends before a structure that must be there (header, a key, a tensor's data).
    case truncated(path: String, detail: String)
    /// A structure is present but cannot be right (bad magic, absurd count, misaligned offset, …).
    case corrupt(path: String, detail: String)
    case unsupportedVersion(path: String, version: UInt32)
    /// A ggml tensor type id that this importer cannot dequantize (the id and, if known, its name).
    case unsupportedTensorType(path: String, tensor: String, type: String)
    case unsupportedArchitecture(path: String, architecture: String)
    /// A metadata key is missing or holds the wrong type or an out-of-range value.
    case invalidMetadata(path: String, key: String, detail: String)
    /// A tensor the Llama importer does not know, lacks, or finds misshapen.
    case invalidTensor(path: String, tensor: String, detail: String)
    /// A tokenizer the importer cannot rebuild exactly (e.g. a pre-tokenizer it does not know).
    case unsupportedTokenizer(path: String, key: String, detail: String)

    public var description: String {
        switch self {
        case let .truncated(path, detail): return "\(path) is truncated: \(detail) (re-download the file)"
        case let .corrupt(path, detail): return "\(path) is not a valid GGUF file: \(detail)"
        case let .unsupportedVersion(path, version): return "\(path): GGUF version \(version) is not supported (versions 2 and 3 are)"
        case let .unsupportedTensorType(path, tensor, type):
            return "\(path): tensor \(tensor) has type \(type), which Tether cannot dequantize (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K are supported)"
        case let .unsupportedArchitecture(path, architecture):
            return "\(path): general.architecture is \(architecture.debugDescription); only \"llama\" imports"
        case let .invalidMetadata(path, key, detail): return "\(path): metadata \(key): \(detail)"
        case let .invalidTensor(path, tensor, detail): return "\(path): tensor \(tensor): \(detail)"
        case let .unsupportedTokenizer(path, key, detail): return "\(path): \(key): \(detail)"
        }
    }
}
