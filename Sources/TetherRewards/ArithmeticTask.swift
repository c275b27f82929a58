import TetherKernels

/// Integer arithmetic: prompt `12+35=` (the chat question `12 + 35`), answer `47`.
///
/// The difficulty knobs are the operand digit counts, the operators and the number of operands. An
/// operand's digit count is drawn uniformly from `minDigits...maxDigits`, then its value uniformly
/// among numbers with that many digits (0–9 for one digit), so short operands stay common at every
/// level. With three operands the usual precedence holds (`2+3*4=` is 14).
public struct ArithmeticTask: TaskGenerator {
    public let name = "arithmetic"
    public var answerFormat: AnswerFormat
    public var minDigits: Int
    public var maxDigits: Int
    /// Any of `+`, `-`, `*`.
    public var operators: [Character]
    /// When false, a draw with a negative answer is turned around (`a-b` with a ≥ b) or rejected.
    public var allowNegative: Bool
    /// Operands per expression: 2 (`a+b`) or 3 (`a+b*c`).
    public var operands: Int
    public var phrasing: TaskPhrasing { .arithmetic }

    public init(minDigits: Int = 1, maxDigits: Int = 2, operators: [Character] = ["+", "-"], allowNegative: Bool = false,
                operands: Int = 2, answerFormat: AnswerFormat = .bare) throws {
        guard 1 <= minDigits, minDigits <= maxDigits, maxDigits <= 6 else {
            throw TaskError.invalidSetting("arithmetic digits must satisfy 1 ≤ min ≤ max ≤ 6 (got \(minDigits)...\(maxDigits))")
        }
        guard !operators.isEmpty, operators.allSatisfy({ "+-*".contains($0) }) else {
            throw TaskError.invalidSetting("arithmetic operators must be a non-empty subset of + - * (got \(String(operators)))")
        }
        guard (2 ... 3).contains(operands) else { throw TaskError.invalidSetting("arithmetic operands must be 2 or 3, got \(operands)") }
        self.minDigits = minDigits
        self.maxDigits = maxDigits
        self.operators = operators
        self.allowNegative = allowNegative
        self.operands = operands
        self.answerFormat = answerFormat
    }

    /// Preset difficulty levels: 1: one-digit addition (100 problems) · 2: two-digit addition
    /// (10–99 + 10–99) · 3: up to two digits, + and − (the toy's default) · 4: up to two digits,
    /// + − with negative answers · 5: up to three digits, + −, negatives. `mixed` and `word` name the
    /// other two levels (`ArithmeticTask.mixed`, `WordProblemTask`).
    ///
    /// Calibration (a PyTorch stand-in for the policy: character model, hidden 64, 2 layers,
    /// 1000 SFT steps of 64 examples from the `sft` split, greedy decoding): level 3 reaches
    /// 16–17 % on `train` and `heldout` prompts (41 % when SFT saw the 80 % of problems an
    /// earlier split gave it), level 4 13 %, level 5 4 %. Level 1 has only 100 problems: a model
    /// memorises its SFT share, so it suits smoke tests, not generalisation. SmolLM2-135M-Instruct
    /// (chat template, last integer, `transformers`): level 1 greedy 19/32, sampled 18 %; level 2
    /// greedy 6/32, sampled 2 %.
    public static func level(_ level: Int, answerFormat: AnswerFormat = .bare) throws -> ArithmeticTask {
        switch level {
        case 1: return try ArithmeticTask(maxDigits: 1, operators: ["+"], answerFormat: answerFormat)
        case 2: return try ArithmeticTask(minDigits: 2, maxDigits: 2, operators: ["+"], answerFormat: answerFormat)
        case 3: return try ArithmeticTask(maxDigits: 2, answerFormat: answerFormat)
        case 4: return try ArithmeticTask(maxDigits: 2, allowNegative: true, answerFormat: answerFormat)
        case 5: return try ArithmeticTask(maxDigits: 3, allowNegative: true, answerFormat: answerFormat)
        default: throw TaskError.invalidSetting("arithmetic level must be 1...5, mixed or word, got \(level)")
        }
    }

    /// Mixed operations: three operands of one or two digits joined by two of + − × (`7+12*3=`),
    /// with precedence, answers never negative.
    public static func mixed(answerFormat: AnswerFormat = .bare) throws -> ArithmeticTask {
        try ArithmeticTask(maxDigits: 2, operators: ["+", "-", "*"], operands: 3, answerFormat: answerFormat)
    }

    func operand(_ rng: inout SplitMix64) -> Int {
        let d = rng.int(in: minDigits ... maxDigits)
        if d == 1 { return rng.int(in: 0 ... 9) }
        var lo = 1
        for _ in 1 ..< d { lo *= 10 }
        return rng.int(in: lo ... lo * 10 - 1)
    }

    public func draw(_ rng: inout SplitMix64) -> Problem? {
        var values = (0 ..< operands).map { _ in operand(&rng) }
        let ops = (1 ..< operands).map { _ in rng.element(of: operators) }
        if operands == 2 && ops[0] == "-" && !allowNegative && values[0] < values[1] { values.swapAt(0, 1) }
        let value = ArithmeticTask.evaluate(values, ops)
        if value < 0 && !allowNegative { return nil }
        var expression = String(values[0]), question = String(values[0])
        for (op, v) in zip(ops, values.dropFirst()) {
            expression += "\(op)\(v)"
            question += " \(op == "*" ? "×" : String(op)) \(v)"
        }
        return Problem(prompt: expression + "=", question: question, answer: String(value), reasoning: expression)
    }

    /// The value of `v0 op0 v1 op1 v2 …` with `*` before `+` and `-`, left to right otherwise.
    static func evaluate(_ values: [Int], _ ops: [Character]) -> Int {
        var terms = [values[0]], signs: [Int] = [1]
        for (op, v) in zip(ops, values.dropFirst()) {
            switch op {
            case "*": terms[terms.count - 1] *= v
            case "-": terms.append(v); signs.append(-1)
            default: terms.append(v); signs.append(1)
            }
        }
        return zip(terms, signs).reduce(0) { $0 + $1.0 * $1.1 }
    }
}
