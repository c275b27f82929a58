import Foundation
import TetherModel

/// `RunConfig` → `LlamaConfig`: the one mapping from the `model:` section to the policy's
/// architecture that `tether train`, the learner and every actor use, validated by
/// `LlamaConfig.validate` (the rules the kernels rely on), not by a copy of it.
extension ModelSection {
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
        typealias K = CodingKeys
        let sizes = [(K.vocabSize, vocabSize), (.hiddenSize, hiddenSize), (.numHiddenLayers, numHiddenLayers),
                     (.numAttentionHeads, numAttentionHeads), (.numKeyValueHeads, numKeyValueHeads),
                     (.intermediateSize, intermediateSize), (.maxPositionEmbeddings, maxPositionEmbeddings)]
        for (key, value) in sizes where value < 1 || value > LlamaConfig.dimensionLimit {
            throw ConfigError.invalidValue(path: "model.\(key.rawValue)", reason: "must be in 1…\(LlamaConfig.dimensionLimit), got \(value)")
        }
        for (key, value, upper) in [(K.ropeTheta, ropeTheta, 1e12), (.rmsNormEps, rmsNormEps, 1)] where !(value.isFinite && value > 0 && value <= upper) {
            throw ConfigError.invalidValue(path: "model.\(key.rawValue)", reason: "must be a finite number in (0, \(upper)], got \(value)")
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
        typealias K = CodingKeys
        return [
            (K.vocabSize.rawValue, "\(vocabSize)", "\(c.vocabSize)"),
            (K.hiddenSize.rawValue, "\(hiddenSize)", "\(c.hiddenSize)"),
            (K.numHiddenLayers.rawValue, "\(numHiddenLayers)", "\(c.numHiddenLayers)"),
            (K.numAttentionHeads.rawValue, "\(numAttentionHeads)", "\(c.numAttentionHeads)"),
            (K.numKeyValueHeads.rawValue, "\(numKeyValueHeads)", "\(c.numKeyValueHeads)"),
            (K.intermediateSize.rawValue, "\(intermediateSize)", "\(c.intermediateSize)"),
            (K.maxPositionEmbeddings.rawValue, "\(maxPositionEmbeddings)", "\(c.maxPositionEmbeddings)"),
            (K.ropeTheta.rawValue, "\(Float(ropeTheta))", "\(c.ropeTheta)"),
            (K.rmsNormEps.rawValue, "\(Float(rmsNormEps))", "\(c.rmsNormEps)"),
            (K.tieWordEmbeddings.rawValue, "\(tieWordEmbeddings)", "\(c.tieWordEmbeddings)"),
        ]
    }
}

extension RunConfig {
    /// The policy's architecture: `model.checkpoint`'s `config.json` when that directory exists here,
    /// else the `model:` section (an actor on another host has no copy of the base; the learner
    /// makes a missing base from the section, so the two agree; an empty `model.checkpoint` is a
    /// random initialisation over the built-in vocabulary). A `model.*` key the config gives
    /// that disagrees with the checkpoint is an error naming both values: training the checkpoint's
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
        c.model.vocabSize = a.vocabSize
        c.model.hiddenSize = a.hiddenSize
        c.model.numHiddenLayers = a.numHiddenLayers
        c.model.numAttentionHeads = a.numAttentionHeads
        c.model.numKeyValueHeads = a.numKeyValueHeads
        c.model.intermediateSize = a.intermediateSize
        c.model.maxPositionEmbeddings = a.maxPositionEmbeddings
        // Through the Float's shortest decimal, so 1e-5 is written as 1e-05, not 9.99999974737875e-06.
        c.model.ropeTheta = Double("\(a.ropeTheta)") ?? Double(a.ropeTheta)
        c.model.rmsNormEps = Double("\(a.rmsNormEps)") ?? Double(a.rmsNormEps)
        c.model.tieWordEmbeddings = a.tieWordEmbeddings
        return c
    }
}
