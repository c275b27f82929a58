/// A position in a chat template's source: 1-based line and column (columns count Unicode scalars,
/// as Python counts characters).
public struct TemplateLocation: Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "line \(line), column \(column)" }
}

/// Everything that can go wrong parsing or rendering a chat template. Each case names the problem
/// and where it is, so a template Tether cannot render exactly as `transformers` does is refused
/// with a reason instead of producing a different prompt.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    /// The template is not valid Jinja (Jinja raises `TemplateSyntaxError` for it too).
    case syntax(String, TemplateLocation)
    /// Valid Jinja that this interpreter does not implement (a statement, filter, test or method).
    case unsupported(String, TemplateLocation)
    /// A use of an undefined value that Jinja rejects with `UndefinedError`.
    case undefined(String, TemplateLocation)
    /// An operation Python rejects (`TypeError`, `ValueError`, division by zero, overflow).
    case invalidOperation(String, TemplateLocation)
    /// The template called `raise_exception(message)`: it refuses these messages.
    case raised(String, TemplateLocation)
    /// No messages: `apply_chat_template` refuses an empty conversation before rendering.
    case emptyConversation

    public var description: String {
        switch self {
        case .syntax(let why, let at): return "chat template syntax error at \(at): \(why)"
        case .unsupported(let what, let at):
            return "chat template uses \(what) at \(at), which Tether's template interpreter does not support"
        case .undefined(let what, let at): return "chat template error at \(at): \(what)"
        case .invalidOperation(let why, let at): return "chat template error at \(at): \(why)"
        case .raised(let message, let at): return "chat template raised an exception at \(at): \(message)"
        case .emptyConversation: return "cannot apply a chat template to an empty conversation: give at least one message"
        }
    }

    /// Where in the template the problem is (nil when it is not in the template).
    public var location: TemplateLocation? {
        switch self {
        case .syntax(_, let at), .unsupported(_, let at), .undefined(_, let at),
             .invalidOperation(_, let at), .raised(_, let at):
            return at
        case .emptyConversation:
            return nil
        }
    }
}
