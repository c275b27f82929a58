/// The built-in tasks by name, as the CLI and configs refer to them.
public enum TaskCatalog {
    public static let names = ["arithmetic", "sequence"]

    /// Every level name a config may give after the task and a colon.
    public static let arithmeticLevels = ["1", "2", "3", "4", "5", "mixed", "word"]
    public static let sequenceLevels = ["1", "2", "3", "4"]

    /// The generator for `name` at a difficulty `level` (nil: the default, arithmetic 3 and
    /// sequence 2, where a tiny SFT model starts at a moderate accuracy that RL can raise).
    public static func generator(named name: String, level: Int? = nil, answerFormat: AnswerFormat = .bare) throws -> any TaskGenerator {
        switch name {
        case "arithmetic": return try ArithmeticTask.level(level ?? 3, answerFormat: answerFormat)
        case "sequence": return try SequenceTask.level(level ?? 2, answerFormat: answerFormat)
        default: throw TaskError.unknownTask(name: name, known: names)
        }
    }

    /// The generator a config's `task.name` names: `addition` (one- and two-digit a+b), `arithmetic`
    /// or `sequence` at their default level, or with a level after a colon — `arithmetic:1` one-digit
    /// addition, `arithmetic:2` two-digit addition, `arithmetic:mixed` mixed operations,
    /// `arithmetic:word` multi-step word problems, `sequence:3` (`arithmetic-1` is accepted too).
    /// The cluster and `tether train` both resolve names here, so a config means the same task in either.
    public static func generator(spec: String, answerFormat: AnswerFormat) throws -> any TaskGenerator {
        if spec == "addition" { return try ArithmeticTask(minDigits: 1, maxDigits: 2, operators: ["+"], answerFormat: answerFormat) }
        let separator = spec.lastIndex(where: { $0 == ":" || $0 == "-" })
        let base = separator.map { String(spec[..<$0]) } ?? spec
        guard names.contains(base) else { throw TaskError.unknownTask(name: spec, known: ["addition"] + names) }
        guard let separator else { return try generator(named: base, answerFormat: answerFormat) }
        let level = String(spec[spec.index(after: separator)...])
        switch (base, level) {
        case ("arithmetic", "mixed"): return try ArithmeticTask.mixed(answerFormat: answerFormat)
        case ("arithmetic", "word"): return WordProblemTask(answerFormat: answerFormat)
        default:
            guard let n = Int(level) else {
                let known = base == "arithmetic" ? arithmeticLevels : sequenceLevels
                throw TaskError.invalidSetting("\(spec): the level after '\(spec[separator])' must be one of \(known.joined(separator: ", "))")
            }
            return try generator(named: base, level: n, answerFormat: answerFormat)
        }
    }
}
