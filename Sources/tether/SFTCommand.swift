import ArgumentParser
import Foundation
import TetherModel
import TetherRL

/// `tether sft`: supervised fine-tuning of a checkpoint on prompt/completion pairs (a thin shell
/// around `SFTTrainer`).
struct SFTCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning on prompt/completion JSONL; writes a new checkpoint.",
        discussion: """
        Each non-blank line of --data is {"prompt": "...", "completion": "..."}. The model is trained \
        on <bos> prompt completion <eos> with the loss (mean cross-entropy) on the completion and \
        <eos> tokens only. AdamW (betas 0.9/0.999, weight decay 0.01, norms not decayed), linear \
        warm-up then cosine decay to lr/10, gradient clipping at norm 1.

        With 10 or more examples, --held-out-fraction of them (at most 256) are kept out of training \
        and their loss is reported before, every --eval-every steps, and after training.

        Progress (step, loss, held-out loss, tokens/s, ETA) goes to stderr: one line rewritten in \
        place on a terminal, plain lines otherwise. --out is written atomically with \
        trainer_state.json and optimizer.safetensors beside the weights.

        --resume continues the run saved in --checkpoint (its AdamW moments, step and data position) \
        up to --steps in total; with the same --data, --seed and --batch-size the result equals an \
        uninterrupted run.
        """)

    @Option(help: "Checkpoint directory to start from.")
    var checkpoint: String

    @Option(help: "JSONL file of {\"prompt\": ..., \"completion\": ...} lines.")
    var data: String

    @Option(help: "Checkpoint directory to write (replaced atomically if it exists).")
    var out: String

    @Option(help: "Optimizer steps.")
    var steps: Int = 200

    @Option(help: "Sequences per step.")
    var batchSize: Int = 16

    @Option(help: "Peak learning rate.")
    var lr: Float = 3e-3

    @Option(help: "Warm-up steps (default: 5% of --steps).")
    var warmupSteps: Int?

    @Option(help: "Fraction of the examples held out for evaluation (0 disables).")
    var heldOutFraction: Double = 0.1

    @Option(help: "Steps between held-out evaluations.")
    var evalEvery: Int = 50

    @Option(help: "Seed of the held-out split and the data order.")
    var seed: UInt64 = 0

    @Flag(help: "Continue the SFT run saved in --checkpoint (needs its trainer_state.json and optimizer.safetensors).")
    var resume = false

    @OptionGroup var blas: BLASThreadOption

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number") }
        guard (0..<1).contains(heldOutFraction) else { throw ValidationError("--held-out-fraction must be in [0, 1)") }
        guard evalEvery >= 1 else { throw ValidationError("--eval-every must be at least 1") }
        if let w = warmupSteps, w < 0 { throw ValidationError("--warmup-steps must be non-negative") }
    }

    func run() async throws {
        blas.apply()
        let (model, ckpt) = try LlamaModel.load(from: checkpoint)
        let sequences = try SFTDataset.load(path: data, tokenizer: ckpt.tokenizer, maxLength: model.config.maxPositionEmbeddings)
        let (train, heldOut) = SFTTrainer.split(sequences, heldOutFraction: heldOutFraction, seed: seed)
        let err = FileHandle.standardError
        err.write(Data("sft: \(train.count) training examples, \(heldOut.count) held out; \(steps) steps of \(batchSize)\n".utf8))
        if heldOut.isEmpty && heldOutFraction > 0 {
            err.write(Data("sft: fewer than 10 examples, so no held-out evaluation\n".utf8))
        }
        let options = SFTOptions(steps: steps, batchSize: batchSize, learningRate: lr, warmupSteps: warmupSteps,
                                 evaluateEvery: evalEvery, seed: seed)
        let trainer = SFTTrainer(model: model, options: options, padToken: ckpt.tokenizer.paddingId)
        if resume {
            guard let state = ckpt.trainerState, let moments = ckpt.optimizerState else {
                throw ValidationError("--resume: \(checkpoint) has no trainer_state.json and optimizer.safetensors to resume from")
            }
            guard state.step < steps else {
                throw ValidationError("--resume: the saved run is already at step \(state.step); pass a larger --steps")
            }
            try trainer.restore(trainerState: state, optimizerState: moments)
            err.write(Data("sft: resuming at step \(state.step)\n".utf8))
        }
        var line = TerminalStatusLine(totalSteps: steps)
        var lastHeldOut: Double?
        let summary = try trainer.train(train, heldOut: heldOut) { p in
            if let h = p.heldOutLoss { lastHeldOut = h }
            var text = String(format: "step %d/%d  loss %.4f", p.step, p.totalSteps, p.loss)
            if let h = lastHeldOut { text += String(format: "  held-out %.4f", h) }
            text += String(format: "  lr %.2e  %.0f tok/s", p.learningRate, p.tokensPerSecond)
            text += "  ETA " + TerminalStatusLine.duration(p.etaSeconds)
            line.update(step: p.step, text, force: p.heldOutLoss != nil)
        }
        line.finish()
        try model.save(to: out, tokenizer: ckpt.tokenizer, trainerState: trainer.trainerState(),
                       optimizerState: trainer.optimizerState())
        var done = "sft: done in " + TerminalStatusLine.duration(summary.seconds)
        done += String(format: ", %.0f tok/s, final loss %.4f", Double(summary.tokens) / max(summary.seconds, 1e-9), summary.finalLoss)
        if let a = summary.initialHeldOutLoss, let b = summary.finalHeldOutLoss {
            done += String(format: ", held-out loss %.4f → %.4f", a, b)
        }
        err.write(Data((done + "; wrote \(out)\n").utf8))
    }
}
