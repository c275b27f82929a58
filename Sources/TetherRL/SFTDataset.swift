import Foundation
import TetherModel

/// A bad line in an SFT JSONL file, named by file and 1-based line number.
public struct SFTDataError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let line: Int
    public let reason: String
    public var description: String {
        line > 0 ? "\(path):\(line): \(reason)" : "\(path): \(reason)"
    }
}

/// A tokenized example: the prompt as `Tokenizer.taskPromptIds` frames it (`<bos> prompt` for the
/// built-in vocabulary, a user turn through the chat template for an instruct checkpoint), then `completion <eos>`, with the loss on the completion and `<eos>` only.
public struct SFTSequence: Equatable, Sendable {
    public var tokens: [Int]
    /// Index of the first completion token in `tokens`; targets from here on carry the loss.
    public var completionStart: Int
    public var completionTokenCount: Int { tokens.count - completionStart }

    public init(_ example: SFTExample, tokenizer: Tokenizer) throws {
        let prompt = try tokenizer.taskPromptIds(example.prompt)
        tokens = prompt + (try tokenizer.completionIds(example.completion))
        completionStart = prompt.count
    }
}

public enum SFTDataset {
    /// Parses `{"prompt": …, "completion": …}` lines (blank lines skipped). Every failure — bad JSON,
    /// a missing or non-string field, a character outside the tokenizer, a sequence longer than the
    /// model's positions — names the line.
    public static func load(path: String, tokenizer: Tokenizer, maxLength: Int) throws -> [SFTSequence] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw SFTDataError(path: path, line: 0, reason: "cannot read the file (\(error.localizedDescription))")
        }
        return try parse(data, path: path, tokenizer: tokenizer, maxLength: maxLength)
    }

    public static func parse(_ data: Data, path: String, tokenizer: Tokenizer, maxLength: Int) throws -> [SFTSequence] {
        var out: [SFTSequence] = []
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (i, raw) in lines.enumerated() {
            let n = i + 1
            func fail(_ why: String) -> SFTDataError { SFTDataError(path: path, line: n, reason: why) }
            let line = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw[...]
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                throw fail("not a JSON object")
            }
            guard let prompt = obj["prompt"] as? String else { throw fail("missing string field \"prompt\"") }
            guard let completion = obj["completion"] as? String else { throw fail("missing string field \"completion\"") }
            let seq: SFTSequence
            do { seq = try SFTSequence(SFTExample(prompt: prompt, completion: completion), tokenizer: tokenizer) } catch {
                throw fail("\(error)")
            }
            guard seq.tokens.count <= maxLength else {
                throw fail("example is \(seq.tokens.count) tokens with <bos>/<eos>, more than the model's \(maxLength) positions")
            }
            out.append(seq)
        }
        guard !out.isEmpty else { throw SFTDataError(path: path, line: 0, reason: "no examples") }
        return out
    }

    /// JSONL text of examples (what `load` reads back).
    public static func jsonl(_ examples: [SFTExample]) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = Data()
        for x in examples {
            out.append(try e.encode(x))
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }
}
