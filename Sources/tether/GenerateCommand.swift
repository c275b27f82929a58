import ArgumentParser
import Foundation
import TetherModel

/// `tether generate`: sample one completion of a prompt from a checkpoint (KV-cache decoding).
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample a completion of a prompt (--prompt) or a chat turn (--chat) from a checkpoint; prints only the completion on stdout.",
        discussion: """
        --chat renders TEXT as a user message (after --system, when given) through the checkpoint's \
        chat template with the generation prompt, as transformers' apply_chat_template does, and stops \
        at the model's end-of-turn ids (config.json's eos_token_id, one id or a list; <|im_end|> for \
        SmolLM2). A --prompt is encoded with the checkpoint's tokenizer as transformers encodes it (special \
        tokens as its post-processor adds them: <bos> first for Tether's built-in vocabulary, none for \
        SmolLM2 or Qwen2); sampling stops at the tokenizer's eos_token or after --max-new-tokens (capped by the model's max_position_embeddings). The \
        distribution is Hugging Face's: logits / temperature, then top-k, then top-p (nucleus). \
        --temperature 0 is greedy decoding and ignores the seed. The same seed gives the same output.
        """)

    @Option(help: "Checkpoint directory (config.json, model.safetensors, tokenizer.json).")
    var checkpoint: String

    @Option(help: "Raw prompt text (for the built-in vocabulary: digits, a-z, space, newline, punctuation).")
    var prompt: String?

    @Option(help: "A user message, rendered through the checkpoint's chat template.")
    var chat: String?

    @Option(help: "With --chat: a system message before it (else the template's default, if it has one).")
    var system: String?

    @Option(help: "Maximum number of tokens to sample.")
    var maxNewTokens: Int = 64

    @Option(help: "Softmax temperature; 0 is greedy.")
    var temperature: Float = 1

    @Option(help: "Nucleus sampling: keep the most likely tokens whose probability sums to at least P (1 keeps all).")
    var topP: Float = 1

    @Option(help: "Keep only the K most likely tokens (0 keeps all).")
    var topK: Int = 0

    @Option(help: "Seed of the sampler.")
    var seed: UInt64 = 0

    @OptionGroup var blas: BLASThreadOption

    func validate() throws {
        guard (prompt == nil) != (chat == nil) else { throw ValidationError("give exactly one of --prompt and --chat") }
        guard system == nil || chat != nil else { throw ValidationError("--system needs --chat") }
        guard maxNewTokens >= 0 else { throw ValidationError("--max-new-tokens must be non-negative") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be a finite number ≥ 0") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard topK >= 0 else { throw ValidationError("--top-k must be non-negative") }
    }

    func run() async throws {
        blas.apply()
        let (model, ckpt) = try LlamaModel.load(from: checkpoint)
        // NaN weights sample token 0 (or whatever the sampler makes of NaN) forever: refuse instead
        // of printing plausible-looking output from a diverged run.
        if let bad = model.parameters.buffer.firstIndex(where: { !$0.isFinite }) {
            throw ModelError.corruptFile(path: checkpoint, detail: "weight \(bad) is \(model.parameters.buffer[bad]); the weights are not finite (a diverged run?)")
        }
        let tokenizer = ckpt.tokenizer
        let ids: [Int]
        var sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP, eosTokenId: tokenizer.eosId)
        if let chat {
            let format = try ChatFormat(tokenizer: tokenizer)
            ids = try format.promptIds(user: chat, system: system)
            sampling.eosTokenId = nil
            sampling.stopTokenIds = format.endOfTurnIds(model.config)
        } else {
            ids = try tokenizer.promptIds(prompt ?? "")
        }
        let room = model.config.maxPositionEmbeddings - ids.count + 1
        guard room > 0 else {
            throw ModelError.sequenceTooLong(length: ids.count, maxPositions: model.config.maxPositionEmbeddings)
        }
        let newTokens = min(maxNewTokens, room)
        if newTokens < maxNewTokens {
            FileHandle.standardError.write(Data("note: --max-new-tokens capped at \(newTokens) by max_position_embeddings \(model.config.maxPositionEmbeddings)\n".utf8))
        }
        let completion = try model.generate(prompts: [ids], maxNewTokens: newTokens, sampling: sampling, seed: seed)[0]
        print(try tokenizer.decode(completion.tokens))
    }
}
