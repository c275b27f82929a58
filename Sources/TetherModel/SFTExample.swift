/// One supervised example, a line of an SFT JSONL file `{"prompt","completion"}`: the model sees
/// `prompt` and learns to continue with `completion`. The completion carries no end-of-sequence
/// token: the SFT trainer appends it, so the model learns to stop after the answer. The tasks
/// (TetherRewards) write these and the SFT trainer (TetherRL) reads them, so it lives below both.
public struct SFTExample: Codable, Equatable, Sendable {
    public var prompt: String
    public var completion: String

    public init(prompt: String, completion: String) {
        self.prompt = prompt
        self.completion = completion
    }
}
