import Foundation

/// A checkpoint's chat format: its tokenizer and its chat template (parsed once, when the tokenizer is read).
///
/// `promptIds` gives the ids `transformers`' `apply_chat_template(messages, add_generation_prompt=True,
/// tokenize=True)` gives: the template renders the conversation with the tokenizer's special tokens as
/// variables, and the text is encoded without the post-processor's specials (the template writes
/// `bos_token` itself where the family wants one). Generation then stops at the model's end-of-turn
/// ids (`endOfTurnIds`).
public struct ChatFormat: Sendable {
    public let tokenizer: Tokenizer
    public let template: ChatTemplate

    /// Fails with a typed error when the checkpoint carries no chat template, or one outside the
    /// Jinja subset `ChatTemplate` renders (never a wrongly formatted prompt).
    public init(tokenizer: Tokenizer) throws {
        guard let parsed = tokenizer.parsedChatTemplate else {
            throw ModelError.invalidTokenizer(
                "the checkpoint has no chat template (neither \(Tokenizer.chatTemplateFileName) nor chat_template in \(Tokenizer.configFileName)); give a raw prompt instead")
        }
        self.tokenizer = tokenizer
        self.template = try parsed.get()
    }

    /// The conversation as the template writes it.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        var extra: [String: TemplateValue] = [:]
        if let pad = tokenizer.padId.flatMap(tokenizer.token(of:)) { extra["pad_token"] = .string(pad) }
        return try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                   bosToken: tokenizer.bosId.flatMap(tokenizer.token(of:)),
                                   eosToken: tokenizer.eosId.flatMap(tokenizer.token(of:)), extra: extra)
    }

    /// Prompt ids of a conversation, ending with the assistant's header when `addGenerationPrompt`.
    public func promptIds(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> [Int] {
        try tokenizer.encode(render(messages, addGenerationPrompt: addGenerationPrompt), addSpecialTokens: false)
    }

    /// A single user turn, after a system message when one is given.
    public func promptIds(user: String, system: String? = nil) throws -> [Int] {
        try promptIds((system.map { [.system($0)] } ?? []) + [.user(user)])
    }

    /// The ids that end an assistant turn: the model config's `eos_token_id` (one id or a list, as
    /// `generate` in `transformers` stops on), else the tokenizer's `eos_token` (`<|im_end|>` for ChatML).
    public func endOfTurnIds(_ config: LlamaConfig) -> [Int] {
        if let ids = config.eosTokenIds?.all, !ids.isEmpty { return ids }
        return tokenizer.eosId.map { [$0] } ?? []
    }
}

extension Tokenizer {
    /// Ids of a task's prompt text (a question, an SFT or reward-model prompt): a user turn through
    /// the chat template when the checkpoint has one — an instruct model answers inside its own turn
    /// markup, as TRL's and verl's chat datasets render prompts — else the raw text with the
    /// post-processor's specials (`<bos> prompt` for the built-in vocabulary).
    public func taskPromptIds(_ text: String) throws -> [Int] {
        guard parsedChatTemplate != nil else { return try promptIds(text) }
        return try ChatFormat(tokenizer: self).promptIds(user: text)
    }
}
