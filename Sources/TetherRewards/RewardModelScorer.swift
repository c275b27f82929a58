import Foundation
import TetherModel

/// A learned reward in place of a rule-based verifier: the Bradley–Terry reward model's scalar at
/// the last token of `<bos> prompt completion <eos>` (the prompt framed by the tokenizer's post-processor) (InstructGPT §3.5). Conforms to `Verifier`, so
/// actors and the trainer use it wherever a verifier goes, and `checkedScore` refuses a non-finite
/// score like any other.
///
/// `@unchecked Sendable`: scoring runs the model's forward, which reuses its activation buffers;
/// a scorer is owned by one actor/trainer thread at a time, never called concurrently.
public final class RewardModelScorer: Verifier, @unchecked Sendable {
    public let name = "reward_model"
    public let model: ScalarHeadModel
    public let tokenizer: Tokenizer

    public init(model: ScalarHeadModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Loads a directory written by `tether rm train` (checkpoint + `value_head.safetensors`).
    public convenience init(directory: String) throws {
        let (model, ckpt) = try ScalarHeadModel.load(from: directory)
        self.init(model: model, tokenizer: ckpt.tokenizer)
    }

    /// The tokens the reward model reads for one (prompt, completion) pair.
    public func tokens(prompt: String, completion: String) throws -> [Int] {
        try tokenizer.taskPromptIds(prompt) + tokenizer.completionIds(completion)
    }

    public func score(completion: String, for prompt: TaskPrompt) throws -> RewardBreakdown {
        try RewardBreakdown(name, scores([(prompt.prompt, completion)])[0])
    }

    /// Scores many pairs in one forward.
    public func scores(_ pairs: [(prompt: String, completion: String)]) throws -> [Float] {
        let batch = TokenBatch(sequences: try pairs.map { try tokens(prompt: $0.prompt, completion: $0.completion) }, padToken: tokenizer.paddingId)
        return try model.sequenceScores(batch)
    }
}
