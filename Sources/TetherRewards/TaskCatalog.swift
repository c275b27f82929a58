/// The built-in tasks by name, as the CLI and configs refer to them.
public enum TaskCatalog {
    public static let names = ["arithmetic", "sequence"]

    /// The generator for `name` at a difficulty `level` (nil: the default, arithmetic 3 and
    /// sequence 2, where a tiny SFT model starts at a moderate accuracy that RL can raise).
    public static func generator(named name: String, level: Int? = nil, answerFormat: AnswerFormat = .bare) throws -> any TaskGenerator {
        switch name {
        case "arithmetic": return try ArithmeticTask.level(level ?? 3, answerFormat: answerFormat)
        case "sequence": return try SequenceTask.level(level ?? 2, answerFormat: answerFormat)
        default: throw TaskError.unknownTask(name: name, known: names)
        }
    }

    /// The verifier that scores a task's prompts: its exact-answer verifier.
    public static func verifier(forTask name: String, answerFormat: AnswerFormat = .bare) throws -> IntegerAnswerVerifier {
        guard names.contains(name) else { throw TaskError.unknownTask(name: name, known: names) }
        return IntegerAnswerVerifier(name: name, format: answerFormat)
    }
}
