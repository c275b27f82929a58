/// Everything that can go wrong loading, saving or running a policy, each case naming the culprit.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case invalidConfig(String)
    case missingFile(path: String)
    case missingTensor(name: String, file: String)
    case unexpectedTensor(name: String, file: String)
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    case unsupportedDType(name: String, dtype: String)
    case truncatedFile(path: String, detail: String)
    case corruptFile(path: String, detail: String)
    case invalidTokenizer(String)
    case unsupportedTokenizer(path: String, component: String)
    case unknownToken(String)
    case tokenOutOfRange(token: Int, vocabSize: Int)
    case sequenceTooLong(length: Int, maxPositions: Int)
    case slidingWindowExceeded(length: Int, window: Int)
    case emptySequence(index: Int)
    case invalidBatch(String)

    public var description: String {
        switch self {
        case .invalidConfig(let why): return "invalid model config: \(why)"
        case .missingFile(let path): return "missing file \(path)"
        case .missingTensor(let name, let file): return "tensor \(name) is missing from \(file)"
        case .unexpectedTensor(let name, let file): return "unexpected tensor \(name) in \(file) (not part of this architecture)"
        case .shapeMismatch(let name, let expected, let found):
            return "tensor \(name) has shape \(found), expected \(expected)"
        case .unsupportedDType(let name, let dtype): return "tensor \(name) has unsupported dtype \(dtype) (F32, BF16 and F16 load)"
        case .truncatedFile(let path, let detail): return "\(path) is truncated: \(detail)"
        case .corruptFile(let path, let detail): return "\(path) is corrupt: \(detail)"
        case .invalidTokenizer(let why): return "invalid tokenizer: \(why)"
        case .unsupportedTokenizer(let path, let component):
            return "\(path): tokenizer component \(component) is not implemented by Tether (it would tokenize differently from `tokenizers`)"
        case .unknownToken(let s): return "text contains \(s.debugDescription), which the tokenizer cannot encode"
        case .tokenOutOfRange(let token, let vocab): return "token id \(token) is outside the vocabulary (size \(vocab))"
        case .sequenceTooLong(let length, let maxPositions):
            return "sequence of \(length) tokens exceeds max_position_embeddings \(maxPositions)"
        case .slidingWindowExceeded(let length, let window):
            return "sequence of \(length) tokens exceeds the sliding_window \(window) (sliding-window attention is not implemented; only sequences within the window run)"
        case .emptySequence(let index): return "sequence \(index) is empty (a prompt needs at least one token)"
        case .invalidBatch(let why): return "invalid batch: \(why)"
        }
    }
}
