/// One turn of a conversation, as `transformers` chat templates receive it: `{"role", "content"}`.
public struct ChatMessage: Codable, Hashable, Sendable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }

    var templateValue: TemplateValue { ["role": .string(role), "content": .string(content)] }
}

/// A model's chat template (`chat_template` in `tokenizer_config.json`, or `chat_template.jinja`),
/// parsed once and rendered many times: RL renders a prompt per rollout, so a render walks a
/// prebuilt tree and never re-reads the source.
///
/// Rendering is byte-identical to `transformers`' `apply_chat_template(messages, tokenize=False,
/// add_generation_prompt=…)` for the Jinja subset chat templates use (see TemplateParser.swift and
/// TemplateBuiltins.swift). Jinja outside that subset is refused with
/// `ChatTemplateError.unsupported`, naming the construct and its line and column, at `init` for
/// statements and at render time for filters, tests and methods: never a silently different prompt.
public struct ChatTemplate: Sendable {
    public let source: String
    private let body: [TemplateStatement]
    private let map: SourceMap

    public init(source: String) throws {
        self.source = source
        let scalars = Array(source.unicodeScalars)
        map = SourceMap(scalars)
        var lexer = TemplateLexer(scalars, map: map)
        var parser = TemplateParser(tokens: try lexer.tokenize(), map: map)
        body = try parser.parseTemplate()
    }

    /// Renders a conversation of plain `{role, content}` messages.
    ///
    /// - Parameters:
    ///   - bosToken, eosToken: the tokenizer's special tokens; `transformers` passes every special
    ///     token the tokenizer defines (`bos_token`, `eos_token`, …). Left undefined when nil.
    ///   - extra: further template variables (`date_string`, `enable_thinking`, …); they override
    ///     the others, as keyword arguments to `apply_chat_template` do.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String? = nil, eosToken: String? = nil,
                       tools: [TemplateValue]? = nil, extra: [String: TemplateValue] = [:]) throws -> String {
        try render(messageValues: messages.map(\.templateValue), addGenerationPrompt: addGenerationPrompt,
                   bosToken: bosToken, eosToken: eosToken, tools: tools, extra: extra)
    }

    /// Renders messages of any shape (tool calls, content parts), as `transformers` passes them:
    /// `messages`, `tools` and `documents` (None unless given), `add_generation_prompt`, the
    /// special tokens, then `extra`. Like `apply_chat_template`, it refuses an empty conversation,
    /// drops message keys whose value is None, and copies a message's reasoning
    /// (`reasoning_content`, `thinking` or `reasoning`) to both `thinking` and `reasoning_content`.
    public func render(messageValues: [TemplateValue], addGenerationPrompt: Bool, bosToken: String? = nil, eosToken: String? = nil,
                       tools: [TemplateValue]? = nil, extra: [String: TemplateValue] = [:]) throws -> String {
        guard !messageValues.isEmpty else { throw ChatTemplateError.emptyConversation }
        var variables: [String: RuntimeValue] = [
            "messages": .list(messageValues.map { RuntimeValue(Self.normalized($0)) }),
            "tools": tools.map { .list($0.map(RuntimeValue.init)) } ?? .none,
            "documents": .none,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { variables["bos_token"] = .string(bosToken) }
        if let eosToken { variables["eos_token"] = .string(eosToken) }
        for (k, v) in extra { variables[k] = RuntimeValue(v) }
        return try render(variables: variables)
    }

    /// transformers' `_normalize_chat_messages` and `_alias_reasoning_fields`.
    static func normalized(_ message: TemplateValue) -> TemplateValue {
        guard case .dict(let d) = message else { return message }
        var kept = OrderedDictionary<TemplateValue>()
        for (k, v) in d.entries where v != .none { kept[k] = v }
        guard let reasoning = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap({ kept[$0] }).first else {
            return .dict(kept)
        }
        var aliased = OrderedDictionary<TemplateValue>()
        aliased["thinking"] = reasoning
        for (k, v) in kept.entries { aliased[k] = v }
        aliased["reasoning_content"] = reasoning
        return .dict(aliased)
    }

    /// Renders with exactly these template variables (nothing implied).
    public func render(variables: [String: TemplateValue]) throws -> String {
        try render(variables: variables.mapValues(RuntimeValue.init))
    }

    private func render(variables: [String: RuntimeValue]) throws -> String {
        var out = ""
        _ = try TemplateRenderer(map: map).execute(body, TemplateScope(variables, parent: nil), &out)
        return out
    }
}
