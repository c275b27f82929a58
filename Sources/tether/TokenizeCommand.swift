import ArgumentParser
import Foundation
import TetherModel

/// `tether tokenize`: a checkpoint's tokenizer as a filter, for checking what the model sees
/// (the ids equal `transformers`' `tokenizer(line)["input_ids"]`).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode stdin lines to JSON id arrays with a checkpoint's tokenizer (or decode them back with --decode).",
        discussion: """
        Each input line is encoded on its own (without its line break) and printed as one JSON array \
        of ids, with the special tokens the tokenizer's post-processor adds (as transformers does; \
        --no-special-tokens leaves them out). --decode reads one JSON array of ids per line and prints \
        the text as a JSON string, special tokens kept unless --skip-special-tokens. --chat renders \
        each line as a user message through the chat template first (the ids of \
        apply_chat_template(..., add_generation_prompt=True)).
        """)

    @Option(help: "Checkpoint directory (only tokenizer.json, tokenizer_config.json and chat_template.jinja are read).")
    var checkpoint: String

    @Flag(help: "Read JSON id arrays and print the decoded text of each as a JSON string.")
    var decode = false

    @Flag(help: "Encode without the special tokens the post-processor would add (e.g. <bos>).")
    var noSpecialTokens = false

    @Flag(help: "With --decode: drop special tokens from the text.")
    var skipSpecialTokens = false

    @Flag(help: "Treat each line as a user message rendered through the checkpoint's chat template (with the generation prompt).")
    var chat = false

    func validate() throws {
        guard !(chat && decode) else { throw ValidationError("--chat encodes; it does not combine with --decode") }
    }

    func run() throws {
        let tokenizer = try Tokenizer.read(from: checkpoint)
        let format = chat ? try ChatFormat(tokenizer: tokenizer) : nil
        var out = ""
        var lineNumber = 0
        while let line = readLine(strippingNewline: true) {
            lineNumber += 1
            if decode {
                out += jsonString(try tokenizer.decode(try Self.ids(line, lineNumber: lineNumber), skipSpecialTokens: skipSpecialTokens))
            } else {
                let ids = try format.map { try $0.promptIds(user: line) } ?? tokenizer.encode(line, addSpecialTokens: !noSpecialTokens)
                out += "[" + ids.map(String.init).joined(separator: ",") + "]"
            }
            out += "\n"
            if out.utf8.count > 1 << 16 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }

    /// One input line of `--decode`: a JSON array of integer ids.
    static func ids(_ line: String, lineNumber: Int) throws -> [Int] {
        guard let array = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any] else {
            throw TokenizeInputError(line: lineNumber, reason: "not a JSON array of token ids")
        }
        return try array.map { v in
            guard let n = v as? NSNumber, let id = Int(exactly: n.doubleValue) else {
                throw TokenizeInputError(line: lineNumber, reason: "\(v) is not an integer token id")
            }
            return id
        }
    }
}

/// A `--decode` input line that is not a JSON array of integers.
struct TokenizeInputError: Error, CustomStringConvertible {
    var line: Int
    var reason: String
    var description: String { "stdin line \(line): \(reason)" }
}
