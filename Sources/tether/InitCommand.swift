import ArgumentParser
import Foundation
import TetherModel

/// `tether init`: a freshly initialised policy written as a Hugging Face checkpoint directory.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a randomly initialised Llama policy as a Hugging Face checkpoint directory.",
        discussion: """
        The directory holds config.json, model.safetensors, tokenizer.json and tokenizer_config.json; \
        transformers.LlamaForCausalLM.from_pretrained(DIR) loads it. The tokenizer is Tether's built-in \
        64-token character vocabulary (digits, a-z, space, newline and common punctuation).

        Presets:
          tiny       hidden 64, 2 layers, 4 heads (2 KV heads), FFN 192, 128 positions (tests, demo)
          reference  hidden 256, 4 layers, 4 heads, FFN 768, 256 positions (the benchmark workload)

        Weights are drawn N(0, 0.02²) (norms 1) from --seed, so the same seed gives the same file. \
        An existing directory at --out is replaced atomically.
        """)

    enum Preset: String, ExpressibleByArgument, CaseIterable {
        case tiny, reference
        var config: LlamaConfig { self == .tiny ? .tiny : .reference }
    }

    @Option(help: "Model size: \(Preset.allCases.map(\.rawValue).joined(separator: " or ")).")
    var preset: Preset = .tiny

    @Option(help: "Checkpoint directory to write.")
    var out: String

    @Option(help: "Seed of the random initialisation.")
    var seed: UInt64 = 0

    @OptionGroup var blas: BLASThreadOption

    func run() async throws {
        blas.apply()
        let vocabulary = CharTokenizer.standard
        var config = preset.config
        config.bosTokenId = vocabulary.bosId
        config.eosTokenId = vocabulary.eosId
        guard vocabulary.vocabSize == config.vocabSize else {
            throw ValidationError("preset \(preset.rawValue) has vocab_size \(config.vocabSize) but the tokenizer has \(vocabulary.vocabSize) tokens")
        }
        let model = try LlamaModel(config: config, seed: seed)
        try model.save(to: out, tokenizer: .standard)
        FileHandle.standardError.write(Data(
            "wrote \(out): \(preset.rawValue) Llama, \(model.layout.totalCount) parameters, vocab \(config.vocabSize), seed \(seed)\n".utf8))
    }
}
