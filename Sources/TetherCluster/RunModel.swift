import Foundation
import TetherModel

/// `RunConfig` → `LlamaConfig`: the one mapping from the `model:` section to the policy's
/// architecture that `tether train`, the learner and every actor use, validated by
/// `LlamaConfig.validate` (the rules the kernels rely on), not by a copy of it.
extension ModelSection {
    /// The section's size keys beside the `LlamaConfig` fields they set.
    static var sizes: [(key: CodingKeys, section: WritableKeyPath<ModelSection, Int>, llama: KeyPath<LlamaConfig, Int>)] { [
        (.vocabSize, \.vocabSize, \.vocabSize), (.hiddenSize, \.hiddenSize, \.hiddenSize),
        (.numHiddenLayers, \.numHiddenLayers, \.numHiddenLayers), (.numAttentionHeads, \.numAttentionHeads, \.numAttentionHeads),
        (.numKeyValueHeads, \.numKeyValueHeads, \.numKeyValueHeads), (.intermediateSize, \.intermediateSize, \.intermediateSize),
        (.maxPositionEmbeddings, \.maxPositionEmbeddings, \.maxPositionEmbeddings),
    ] }
    static var reals: [(key: CodingKeys, section: WritableKeyPath<ModelSection, Double>, llama: KeyPath<LlamaConfig, Float>, upper: Double)] {
        [(.ropeTheta, \.ropeTheta, \.ropeTheta, 1e12), (.rmsNormEps, \.rmsNormEps, \.rmsNormEps, 1)]
    }

    /// The model a missing base is made from: this section's shape over the built-in character
    /// vocabulary (its bos/eos ids), `head_dim = hidden_size / num_attention_heads`.
    public func freshArchitecture() throws -> LlamaConfig {
        let tok = CharTokenizer.standard
        guard vocabSize == tok.vocabSize else {
            throw ConfigError.invalidValue(path: "model.vocab_size", reason: "must be \(tok.vocabSize), the size of the built-in character tokenizer, to make a model from the model section (got \(vocabSize))")
        }
        return try architecture(bosTokenId: tok.bosId, eosTokenId: tok.eosId)
    }

    /// The section as a `LlamaConfig`, validated by `LlamaConfig.validate`. Each value is first
    /// range-checked on its own so the error names its key (a parsed Int.max must not reach a product).
    func architecture(bosTokenId: Int? = nil, eosTokenId: Int? = nil) throws -> LlamaConfig {
        for s in Self.sizes where !(1...LlamaConfig.dimensionLimit).contains(self[keyPath: s.section]) {
            throw ConfigError.invalidValue(path: "model.\(s.key.rawValue)", reason: "must be in 1…\(LlamaConfig.dimensionLimit), got \(self[keyPath: s.section])")
        }
        for r in Self.reals where !(self[keyPath: r.section].isFinite && self[keyPath: r.section] > 0 && self[keyPath: r.section] <= r.upper) {
            throw ConfigError.invalidValue(path: "model.\(r.key.rawValue)", reason: "must be a finite number in (0, \(r.upper)], got \(self[keyPath: r.section])")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ConfigError.invalidValue(path: "model.hidden_size", reason: "\(hiddenSize) is not divisible by model.num_attention_heads \(numAttentionHeads)")
        }
        let c = LlamaConfig(
            vocabSize: vocabSize, hiddenSize: hiddenSize, numHiddenLayers: numHiddenLayers,
            numAttentionHeads: numAttentionHeads, numKeyValueHeads: numKeyValueHeads,
            intermediateSize: intermediateSize, ropeTheta: Float(ropeTheta), rmsNormEps: Float(rmsNormEps),
            tieWordEmbeddings: tieWordEmbeddings, maxPositionEmbeddings: maxPositionEmbeddings,
            bosTokenId: bosTokenId, eosTokenId: eosTokenId)
        do { try c.validate() } catch { throw ConfigError.invalidValue(path: "model", reason: "\(error)") }
        return c
    }

    /// Each architecture key with this section's value and `c`'s, as the config spells them.
    func architectureKeys(against c: LlamaConfig) -> [(key: String, section: String, checkpoint: String)] {
        Self.sizes.map { ($0.key.rawValue, "\(self[keyPath: $0.section])", "\(c[keyPath: $0.llama])") }
            + Self.reals.map { ($0.key.rawValue, "\(Float(self[keyPath: $0.section]))", "\(c[keyPath: $0.llama])") }
            + [(CodingKeys.tieWordEmbeddings.rawValue, "\(tieWordEmbeddings)", "\(c.tieWordEmbeddings)")]
    }
}

extension RunConfig {
    /// The policy's architecture: `model.checkpoint`'s `config.json` when that directory exists here,
    /// else the `model:` section (an actor on another host has no copy of the base; the learner
    /// makes a missing base from the section, so the two agree; an empty `model.checkpoint` is a
    /// random initialisation over the built-in vocabulary). A `model.*` key the config gives that
    /// disagrees with the checkpoint is an error naming both values: training the checkpoint's
    /// shape while the saved config says another would mislead every reader of the run.
    public func policyArchitecture() throws -> LlamaConfig {
        let m = model
        let architecture: LlamaConfig
        if !m.checkpoint.isEmpty && FileManager.default.fileExists(atPath: m.checkpoint) {
            architecture = try LlamaCheckpoint.readConfig(from: m.checkpoint)
            for k in m.architectureKeys(against: architecture) where givenKeys.contains("model.\(k.key)") && k.section != k.checkpoint {
                throw ConfigError.invalidValue(path: "model.\(k.key)", reason: "the config gives \(k.section), but model.checkpoint \(m.checkpoint) has \(k.checkpoint); drop the key or point model.checkpoint at a model of that shape")
            }
        } else if m.checkpoint.isEmpty || m.vocabSize == CharTokenizer.standard.vocabSize {
            architecture = try m.freshArchitecture()
        } else {
            architecture = try m.architecture()  // a base that exists only on the learner's host
        }
        let positions = task.maxPromptTokens + rollout.maxNewTokens
        guard positions <= architecture.maxPositionEmbeddings else {
            throw ConfigError.invalidValue(path: "rollout.max_new_tokens", reason: "task.max_prompt_tokens + max_new_tokens = \(positions) exceeds the policy's max_position_embeddings \(architecture.maxPositionEmbeddings)")
        }
        return architecture
    }

    /// This config with the `model:` section set to the policy's real architecture
    /// (`policyArchitecture`), so the config a run saves describes the model it trains.
    public func resolvingModel() throws -> RunConfig {
        let a = try policyArchitecture()
        var c = self
        for s in ModelSection.sizes { c.model[keyPath: s.section] = a[keyPath: s.llama] }
        // Through the Float's shortest decimal, so 1e-5 is written as 1e-05, not 9.99999974737875e-06.
        for r in ModelSection.reals { c.model[keyPath: r.section] = Double("\(a[keyPath: r.llama])") ?? Double(a[keyPath: r.llama]) }
        c.model.tieWordEmbeddings = a.tieWordEmbeddings
        return c
    }
}
