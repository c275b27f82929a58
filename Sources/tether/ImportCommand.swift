import ArgumentParser
import Foundation
import TetherModel

/// `tether import gguf FILE.gguf --out DIR`: turns a llama.cpp model file into a checkpoint directory.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a model from another format into a Hugging Face checkpoint directory.",
        subcommands: [GGUF.self])

    struct GGUF: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gguf",
            abstract: "Import a Llama-architecture GGUF file (llama.cpp): dequantize to F32, rebuild the tokenizer.",
            discussion: """
            Reads GGUF v2/v3 with F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K tensors, undoes llama.cpp's \
            Q/K head permutation, and writes config.json, model.safetensors (F32), tokenizer.json, \
            tokenizer_config.json (with the chat template) and generation_config.json. The directory is \
            replaced atomically. Progress goes to stderr.
            """)

        @Argument(help: "The .gguf file.")
        var file: String

        @Option(help: "Checkpoint directory to write (replaced if it exists).")
        var out: String

        func run() async throws {
            let summary = try GGUFLlamaImporter.importFile(file, to: out) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            print("imported \(summary.tensorCount) tensors (\(summary.parameterCount) parameters) into \(out)")
        }
    }
}
