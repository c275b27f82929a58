import ArgumentParser
import Foundation
import TetherModel

/// `tether bench tokenizer`: encode throughput of a checkpoint's tokenizer on one thread, measured
/// the way scripts/peers/hf_tokenizers.py measures `tokenizers` (the file's lines encoded without
/// special tokens, best of `repeats` passes), so scripts/bench-tokenizer can print both.
struct BenchTokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encode throughput (MB/s of UTF-8 text, one thread) of a checkpoint's tokenizer on a text file.")

    @Option(help: "Checkpoint directory with tokenizer.json.") var checkpoint: String
    @Option(help: "UTF-8 text file; its lines are encoded one by one.") var text: String
    @Option(help: "Timed passes over the text; the best is reported.") var repeats = 3
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    }

    func run() throws {
        let tokenizer = try Tokenizer.read(from: checkpoint)
        guard let data = FileManager.default.contents(atPath: text) else { throw ValidationError("cannot read \(text)") }
        let content = String(decoding: data, as: UTF8.self)
        let lines = content.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var best = Double.infinity, tokens = 0
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            var count = 0
            for line in lines { count += try tokenizer.encode(line, addSpecialTokens: false).count }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            tokens = count
        }
        let mbPerSecond = Double(content.utf8.count) / best / 1e6
        if json {
            print("{\"mb_per_s\": \(mbPerSecond), \"tokens\": \(tokens)}")
        } else {
            print(String(format: "tether tokenizer: %.2f MB/s (%d bytes, %d lines, %d tokens, best of %d)",
                         mbPerSecond, content.utf8.count, lines.count, tokens, repeats))
        }
    }
}
