import TetherModel

/// The wordings a task's question is asked in, as a chat user turn. Training prompts vary between
/// several phrasings, so the policy learns the task rather than one sentence; the held-out split
/// asks every question in one more phrasing that no training prompt uses, so held-out accuracy
/// measures a wording the policy never trained on as well as problems it never saw.
///
/// A template holds `{q}`, replaced by the problem's question (`3 + 4`, `1, 2, 4, 8, 16`, a word
/// problem); the answer format's instruction follows it ("Answer with just the number.").
public struct TaskPhrasing: Equatable, Sendable {
    public var training: [String]
    public var heldOut: String

    public init(training: [String], heldOut: String) {
        precondition(!training.isEmpty && !training.contains(heldOut), "a held-out phrasing must differ from every training phrasing")
        self.training = training
        self.heldOut = heldOut
    }

    /// Which phrasing a problem of `split` is asked in: the held-out one for `.heldout`, else one of
    /// the training ones, chosen by a hash of the problem and the seed (the same problem and seed
    /// always read the same, on every platform).
    public func template(for problem: Problem, split: DatasetSplit, seed: UInt64) -> String {
        guard split != .heldout else { return heldOut }
        let h = DatasetSplit.fnv1a64(problem.prompt + "\u{0}" + String(seed))
        return training[Int(h % UInt64(training.count))]
    }

    /// The user turn of `problem`: the phrased question, then the instruction for `format`.
    public func messages(for problem: Problem, split: DatasetSplit, seed: UInt64, format: AnswerFormat) -> [ChatMessage] {
        let question = template(for: problem, split: split, seed: seed).replacingPlaceholder(with: problem.question)
        return [.user(question + " " + format.instruction)]
    }

    public static let arithmetic = TaskPhrasing(
        training: ["What is {q}?", "Compute {q}.", "Calculate {q}.", "Work out {q}.", "{q} = ?"],
        heldOut: "Find the value of {q}.")

    public static let sequence = TaskPhrasing(
        training: ["What number comes next in the sequence {q}?", "Continue the sequence: {q}, ?",
                   "Find the next term of the sequence {q}.", "What is the next number after {q}?"],
        heldOut: "Which number follows {q} in this pattern?")

    public static let wordProblem = TaskPhrasing(
        training: ["{q}", "Solve this problem. {q}", "Word problem: {q}", "Answer the question. {q}"],
        heldOut: "Read the problem and solve it. {q}")
}

extension String {
    func replacingPlaceholder(with question: String) -> String {
        guard let r = range(of: "{q}") else { return self }
        return replacingCharacters(in: r, with: question)
    }
}
