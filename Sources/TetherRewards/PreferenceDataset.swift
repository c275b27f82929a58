import Foundation
import TetherKernels

/// One preference, a line of a reward-model JSONL file: `{"prompt","chosen","rejected"}`, two
/// completions of the same prompt, the first preferred.
public struct PreferenceExample: Codable, Equatable, Sendable {
    public var prompt: String
    public var chosen: String
    public var rejected: String

    public init(prompt: String, chosen: String, rejected: String) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
    }

    public var jsonLine: String { JSONLines.encodeObject([("prompt", prompt), ("chosen", chosen), ("rejected", rejected)]) }
}

public enum PreferenceDataset {
    /// Reads `{"prompt","chosen","rejected"}` lines; a bad line is an error naming file and line.
    public static func load(path: String) throws -> [PreferenceExample] {
        try JSONLines.readChecked(PreferenceExample.self, path: path) { [("prompt", $0.prompt), ("chosen", $0.chosen), ("rejected", $0.rejected)] }
    }

    /// The built-in synthetic set: problems of a task's `split`, chosen = the correct answer,
    /// rejected = a wrong integer drawn uniformly from 0…2·max(|answer|, 9) (sign kept), so a
    /// reward model has to learn roughly what the answer is, not a surface feature of the text.
    public static func synthetic(_ task: any TaskGenerator, split: DatasetSplit, count: Int, seed: UInt64) throws -> [PreferenceExample] {
        let problems = try TaskDataset.problems(task, split: split, count: count, seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x9E_F5_E7_CE)
        return problems.map { p in
            let answer = Int(p.answer) ?? 0
            let span = 2 * max(abs(answer), 9) + 1
            var wrong = answer
            while wrong == answer { wrong = rng.int(in: 0...span) * (answer < 0 ? -1 : 1) }
            let format = task.answerFormat
            return PreferenceExample(prompt: p.prompt, chosen: format.completion(answer: p.answer, reasoning: p.reasoning),
                                     rejected: format.completion(answer: String(wrong), reasoning: p.reasoning))
        }
    }
}
