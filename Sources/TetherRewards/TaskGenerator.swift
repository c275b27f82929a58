import TetherKernels
import TetherModel

/// A built-in task: draws problems (prompt and integer answer) from a seeded generator.
public protocol TaskGenerator: Sendable {
    /// The task name written into each prompt record; it also names the verifier that scores it.
    var name: String { get }
    var answerFormat: AnswerFormat { get }
    /// The wordings of its chat prompts.
    var phrasing: TaskPhrasing { get }
    /// One problem, or nil when this draw is rejected (e.g. an ambiguous sequence).
    func draw(_ rng: inout SplitMix64) -> Problem?
}

extension TaskGenerator {
    /// The split `problem` belongs to: a function of the problem alone, so held-out problems are
    /// unseen whatever the wording (a checkpoint without a chat template sees no wording at all).
    public func split(of problem: Problem) -> DatasetSplit { DatasetSplit.of(task: name, prompt: problem.prompt) }

    /// Whether `problem` may be drawn for `split`.
    func admits(_ problem: Problem, to split: DatasetSplit) -> Bool { self.split(of: problem) == split }
}

/// A problem in canonical form (`prompt`, hashed by the split), the question a chat prompt asks
/// (`question`, put into a phrasing), the answer, and the reasoning a `.tagged` completion shows.
public struct Problem: Equatable, Hashable, Sendable {
    public var prompt: String
    public var question: String
    public var answer: String
    public var reasoning: String

    public init(prompt: String, question: String? = nil, answer: String, reasoning: String) {
        self.prompt = prompt
        self.question = question ?? prompt
        self.answer = answer
        self.reasoning = reasoning
    }
}

/// A task string or setting that cannot be used.
public enum TaskError: Error, Equatable, CustomStringConvertible {
    case unknownTask(name: String, known: [String])
    case splitExhausted(task: String, split: DatasetSplit, found: Int, requested: Int)
    case invalidSetting(String)

    public var description: String {
        switch self {
        case .unknownTask(let name, let known): return "unknown task '\(name)' (known: \(known.joined(separator: ", ")))"
        case .splitExhausted(let task, let split, let found, let requested):
            return "task '\(task)' yields only \(found) of \(requested) \(split.rawValue) problems with these settings; raise the difficulty or lower n"
        case .invalidSetting(let why): return "invalid task setting: \(why)"
        }
    }
}

/// Builds prompt and SFT datasets from a generator, for one split, deterministically for a seed.
public enum TaskDataset {
    /// `count` problems of `split`, distinct while the split has enough distinct problems (a tiny
    /// problem space, e.g. 1-digit addition, then repeats problems rather than fail). Draws that
    /// belong to another split are skipped.
    public static func problems(_ task: any TaskGenerator, split: DatasetSplit, count: Int, seed: UInt64) throws -> [Problem] {
        guard count >= 0 else { throw TaskError.invalidSetting("n must be ≥ 0, got \(count)") }
        var rng = SplitMix64(seed: seed ^ DatasetSplit.fnv1a64(task.name + "/" + split.rawValue))
        var out: [Problem] = []
        var seen = Set<String>()
        var sinceNew = 0
        var draws = 0
        let patience = 2_000 + 20 * count
        while out.count < count {
            draws += 1
            if out.isEmpty && draws > 50_000 {
                throw TaskError.splitExhausted(task: task.name, split: split, found: 0, requested: count)
            }
            guard let p = task.draw(&rng), task.admits(p, to: split) else { continue }
            if seen.insert(p.prompt).inserted {
                out.append(p)
                sinceNew = 0
            } else {
                sinceNew += 1
                // The split's distinct problems are (nearly) all used: allow repeats.
                if sinceNew > patience { out.append(p) }
            }
        }
        return out
    }

    /// Prompt records `{"id","task","prompt","answer","messages"}`; ids are `task/split/index`; the
    /// chat message asks the question in the split's phrasing with the task's answer-format instruction.
    public static func prompts(_ task: any TaskGenerator, split: DatasetSplit, count: Int, seed: UInt64) throws -> [TaskPrompt] {
        try problems(task, split: split, count: count, seed: seed).enumerated().map { i, p in
            TaskPrompt(id: "\(task.name)/\(split.rawValue)/\(i)", task: task.name, prompt: p.prompt, answer: p.answer,
                       messages: task.phrasing.messages(for: p, split: split, seed: seed, format: task.answerFormat))
        }
    }

    /// SFT records whose completion is the correct answer in the task's format, from the `.sft`
    /// split by default. Held-out problems are refused: training on them would void the evaluation.
    public static func sft(_ task: any TaskGenerator, split: DatasetSplit = .sft, count: Int, seed: UInt64) throws -> [SFTExample] {
        guard split != .heldout else { throw TaskError.invalidSetting("SFT examples from the held-out split would leak the evaluation set") }
        return try problems(task, split: split, count: count, seed: seed).map {
            SFTExample(prompt: $0.prompt, completion: task.answerFormat.completion(answer: $0.answer, reasoning: $0.reasoning))
        }
    }
}
