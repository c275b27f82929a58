import TetherKernels

/// Integer arithmetic: prompt `12+35=`, answer `47`.
///
/// The difficulty knobs are the operand digit counts and the operators. An operand's digit count
/// is drawn uniformly from `minDigits...maxDigits`, then its value uniformly among numbers with
/// that many digits (0–9 for one digit), so short operands stay common at every level.
public struct ArithmeticTask: TaskGenerator {
    public let name = "arithmetic"
    public var answerFormat: AnswerFormat
    public var minDigits: Int
    public var maxDigits: Int
    /// Any of `+`, `-`, `*`.
    public var operators: [Character]
    /// When false, `a-b` is drawn with a ≥ b so no answer is negative.
    public var allowNegative: Bool

    public init(minDigits: Int = 1, maxDigits: Int = 2, operators: [Character] = ["+", "-"], allowNegative: Bool = false, answerFormat: AnswerFormat = .bare) throws {
        guard 1 <= minDigits, minDigits <= maxDigits, maxDigits <= 6 else {
            throw TaskError.invalidSetting("arithmetic digits must satisfy 1 ≤ min ≤ max ≤ 6 (got \(minDigits)...\(maxDigits))")
        }
        guard !operators.isEmpty, operators.allSatisfy({ "+-*".contains($0) }) else {
            throw TaskError.invalidSetting("arithmetic operators must be a non-empty subset of + - * (got \(String(operators)))")
        }
        self.minDigits = minDigits
        self.maxDigits = maxDigits
        self.operators = operators
        self.allowNegative = allowNegative
        self.answerFormat = answerFormat
    }

    /// Preset difficulty levels: 1: one-digit addition · 2: one-digit + and − · 3: up to two
    /// digits, + and − (the default) · 4: up to two digits, + − with negative answers · 5: up to
    /// three digits, + −, negatives.
    ///
    /// Calibration (a PyTorch stand-in for the policy: character model, hidden 64, 2 layers,
    /// 1000 SFT steps of 64 examples from the `sft` split, greedy decoding): level 3 reaches
    /// 16–17 % on `train` and `heldout` prompts (41 % when SFT saw the 80 % of problems an
    /// earlier split gave it), level 4 13 %, level 5 4 %. Levels 1–2 have only 100–155 problems:
    /// a model memorises its SFT share and reaches 6–14 % on the rest, so they suit smoke tests,
    /// not generalisation.
    public static func level(_ level: Int, answerFormat: AnswerFormat = .bare) throws -> ArithmeticTask {
        switch level {
        case 1: return try ArithmeticTask(maxDigits: 1, operators: ["+"], answerFormat: answerFormat)
        case 2: return try ArithmeticTask(maxDigits: 1, answerFormat: answerFormat)
        case 3: return try ArithmeticTask(maxDigits: 2, answerFormat: answerFormat)
        case 4: return try ArithmeticTask(maxDigits: 2, allowNegative: true, answerFormat: answerFormat)
        case 5: return try ArithmeticTask(maxDigits: 3, allowNegative: true, answerFormat: answerFormat)
        default: throw TaskError.invalidSetting("arithmetic level must be 1...5, got \(level)")
        }
    }

    func operand(_ rng: inout SplitMix64) -> Int {
        let d = rng.int(in: minDigits ... maxDigits)
        if d == 1 { return rng.int(in: 0 ... 9) }
        var lo = 1
        for _ in 1 ..< d { lo *= 10 }
        return rng.int(in: lo ... lo * 10 - 1)
    }

    public func draw(_ rng: inout SplitMix64) -> Problem? {
        var a = operand(&rng), b = operand(&rng)
        let op = rng.element(of: operators)
        if op == "-" && !allowNegative && a < b { swap(&a, &b) }
        let value: Int
        switch op {
        case "+": value = a + b
        case "-": value = a - b
        default: value = a * b
        }
        let expression = "\(a)\(op)\(b)"
        return Problem(prompt: expression + "=", answer: String(value), reasoning: expression)
    }
}
