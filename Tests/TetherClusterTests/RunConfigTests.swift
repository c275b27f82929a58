import Foundation
import TetherCluster
import TetherModel
import TetherRL
import Yams
import XCTest

final class RunConfigTests: XCTestCase {
    static let localYAML = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("cluster/local.yaml")

    func loadError(_ yaml: String, overrides: [String] = []) -> ConfigError? {
        do {
            _ = try RunConfig.load(yaml: yaml, overrides: overrides)
            return nil
        } catch let error as ConfigError { return error } catch {
            XCTFail("untyped error \(error)")
            return nil
        }
    }

    func testLocalYAMLLoadsToExactlyTheDefaults() throws {
        let config = try RunConfig.load(contentsOf: Self.localYAML)
        XCTAssertEqual(config, RunConfig.defaults)
        XCTAssertLessThanOrEqual(config.totalBLASThreads, 2, "the default must fit a 2-core machine")
    }

    /// Docs match code: local.yaml has exactly the struct's keys, in order, each with a comment.
    func testEveryConfigKeyIsDocumentedInLocalYAML() throws {
        let text = try String(contentsOf: Self.localYAML, encoding: .utf8)
        func walk(_ node: Node, _ prefix: [String]) -> [String] {
            guard let mapping = node.mapping else { return [prefix.joined(separator: ".")] }
            return mapping.flatMap { walk($0.value, prefix + [$0.key.string!]) }
        }
        let documented = walk(try XCTUnwrap(Yams.compose(yaml: text)), [])
        let keys = try RunConfig.keyPaths()
        XCTAssertEqual(documented, keys)
        XCTAssertGreaterThan(keys.count, 60)
        // Every leaf key line carries a comment.
        for line in text.split(separator: "\n") where line.hasPrefix("  ") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
            XCTAssertTrue(line.contains(" # "), "undocumented key line: \(line)")
        }
        // Every stored property of every section is a config key (none silently excluded from coding
        // but `givenKeys`, which records where values came from).
        let sections = Mirror(reflecting: RunConfig.defaults).children.filter { $0.label != "givenKeys" }
        XCTAssertEqual(sections.count, Set(keys.map { $0.split(separator: ".")[0] }).count)
        for section in sections {
            // A nested section (`task.reward_service`) counts its own properties.
            let stored = Mirror(reflecting: section.value).children.reduce(0) { n, child in
                let m = Mirror(reflecting: child.value)
                return n + (m.displayStyle == .struct ? m.children.count : 1)
            }
            let coded = keys.filter { $0.hasPrefix("\(section.label!).") }.count
            XCTAssertEqual(stored, coded, "section \(section.label!): \(stored) properties but \(coded) keys")
        }
    }

    /// cluster/smollm2-grpo.yaml (the real-model demo) loads, validates, and keeps the recipe's
    /// promises: the imported SmolLM2 as policy and KL reference, two cores, short chat completions,
    /// η = 1 with decoupled PPO, periodic held-out evaluation, and a wire that admits its weights.
    func testSmolLM2ConfigLoadsAndFitsTwoCores() throws {
        let url = Self.localYAML.deletingLastPathComponent().appendingPathComponent("smollm2-grpo.yaml")
        let c = try RunConfig.load(contentsOf: url)
        XCTAssertEqual(c.model.checkpoint, "models/smollm2-135m-instruct")
        XCTAssertEqual(c.model.referenceCheckpoint, "", "the KL reference is the imported model")
        XCTAssertGreaterThan(c.algorithm.klBeta, 0)
        XCTAssertEqual(c.task.name, "arithmetic:1")
        XCTAssertLessThanOrEqual(c.totalBLASThreads, 2)
        XCTAssertLessThanOrEqual(c.rollout.maxNewTokens, 32)
        XCTAssertLessThanOrEqual(c.rollout.groupSize * c.rollout.promptsPerBatch, 64)
        XCTAssertEqual(c.staleness.maxStaleness, 1)
        XCTAssertEqual(c.staleness.offPolicyCorrection, .decoupled)
        XCTAssertGreaterThan(c.run.evalEverySteps, 0)
        XCTAssertGreaterThan(c.run.evalSamples, 0)
        // SmolLM2-135M: tied 49152 × 576 embedding, 30 layers of q/o 576², k/v 576 × 192, a 3 × 576 × 1536
        // MLP and two norms, plus the final norm; its F32 weights go out as one frame.
        let perLayer = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536 + 2 * 576
        let weightBytes = 4 * (49152 * 576 + 30 * perLayer + 576)
        XCTAssertGreaterThan(c.wire.maxMessageBytes, weightBytes)
        XCTAssertGreaterThan(c.actors.leaseSeconds, 60, "a ticket of real completions takes tens of seconds")
    }

    func testPartialFileKeepsDefaultsAndResolvedYAMLRoundTrips() throws {
        let config = try RunConfig.load(yaml: "staleness:\n  max_staleness: 4\nalgorithm:\n  name: dr_grpo\n  clip_eps_high: 0.28\n")
        var expected = RunConfig.defaults
        expected.staleness.maxStaleness = 4
        expected.algorithm.name = .drGRPO
        expected.algorithm.clipEpsHigh = 0.28
        XCTAssertEqual(config, expected)
        XCTAssertEqual(try RunConfig.load(yaml: config.yaml()), config)
        XCTAssertEqual(try RunConfig.load(yaml: ""), RunConfig.defaults)
        XCTAssertEqual(config.stalenessPolicy, StalenessPolicy(
            maxStaleness: 4, groupsPerBatch: 32, promptsPerTicket: 4, leaseSeconds: 120,
            membership: MembershipPolicy(expectedActors: 1, startupGraceSeconds: 30, heartbeatTimeoutSeconds: 10)))
    }

    func testEmptySectionsKeepDefaultsAndNullLeavesAreTypeErrors() throws {
        XCTAssertEqual(try RunConfig.load(yaml: "rollout:\nstaleness:\n  max_staleness: 2\n").rollout, RunConfig.defaults.rollout)
        XCTAssertEqual(loadError("rollout:\n  group_size:\n"),
                       .typeMismatch(path: "rollout.group_size", expected: "an integer", got: "nothing (null)"))
        XCTAssertEqual(loadError("", overrides: ["run.steps="]),
                       .typeMismatch(path: "run.steps", expected: "an integer", got: "nothing (null)"))
        // An empty string-valued key means "none" (e.g. no checkpoint to start from).
        XCTAssertEqual(try RunConfig.load(yaml: "model:\n  checkpoint:\n").model.checkpoint, "")
    }

    func testUnknownKeyNamesItsPathAndSuggestsTheNearestKey() {
        let error = loadError("algorithm:\n  clip_eps_hgh: 0.3\n")
        XCTAssertEqual(error, .unknownKey(path: "algorithm.clip_eps_hgh", suggestion: "clip_eps_high"))
        XCTAssertEqual(error?.description, "algorithm.clip_eps_hgh: unknown key; did you mean clip_eps_high?")
        XCTAssertEqual(loadError("stalenes:\n  max_staleness: 1\n"), .unknownKey(path: "stalenes", suggestion: "staleness"))
        XCTAssertEqual(loadError("wire:\n  zzz_totally_new: 1\n"), .unknownKey(path: "wire.zzz_totally_new", suggestion: nil))
        XCTAssertEqual(loadError("model:\n  vocab_size: 64\n  nested:\n    deeper: 1\n"), .unknownKey(path: "model.nested", suggestion: nil))
    }

    func testWrongTypesNameTheKeyAndTheExpectedType() {
        XCTAssertEqual(loadError("rollout:\n  group_size: eight\n"),
                       .typeMismatch(path: "rollout.group_size", expected: "an integer", got: "'eight'"))
        XCTAssertEqual(loadError("rollout:\n  temperature: warm\n"),
                       .typeMismatch(path: "rollout.temperature", expected: "a number", got: "'warm'"))
        XCTAssertEqual(loadError("task:\n  shuffle: sometimes\n"),
                       .typeMismatch(path: "task.shuffle", expected: "true or false", got: "'sometimes'"))
        XCTAssertEqual(loadError("rollout: 5\n"), .typeMismatch(path: "rollout", expected: "a mapping of keys", got: "'5'"))
        XCTAssertEqual(loadError("rollout:\n  group_size: [1, 2]\n"),
                       .typeMismatch(path: "rollout.group_size", expected: "an integer", got: "a list"))
        guard case .invalidValue(let path, let reason)? = loadError("algorithm:\n  name: grpx\n") else { return XCTFail() }
        XCTAssertEqual(path, "algorithm.name")
        XCTAssertTrue(reason.contains("'grpx'") && reason.contains("grpo, dr_grpo, rloo, ppo"), reason)
    }

    func testOverridesApplyWithTheSameValidation() throws {
        let config = try RunConfig.load(yaml: "", overrides: [
            "staleness.max_staleness=0", "run.out_dir=/tmp/x", "algorithm.kl_estimator=k1", "task.shuffle=false",
        ])
        XCTAssertEqual(config.staleness.maxStaleness, 0)
        XCTAssertEqual(config.run.outDir, "/tmp/x")
        XCTAssertEqual(config.algorithm.klEstimator, .k1)
        XCTAssertFalse(config.task.shuffle)
        // An override wins over the file.
        XCTAssertEqual(try RunConfig.load(yaml: "run:\n  steps: 10\n", overrides: ["run.steps=20"]).run.steps, 20)
        XCTAssertEqual(loadError("", overrides: ["staleness.max_stalenes=0"]),
                       .unknownKey(path: "staleness.max_stalenes", suggestion: "max_staleness"))
        XCTAssertEqual(loadError("", overrides: ["rollout.top_p=high"]),
                       .typeMismatch(path: "rollout.top_p", expected: "a number", got: "'high'"))
        XCTAssertEqual(loadError("", overrides: ["rollout=3"]), .typeMismatch(path: "rollout", expected: "a mapping of keys", got: "'3'"))
        XCTAssertEqual(loadError("", overrides: ["rollout.top_p"]), .badOverride("rollout.top_p", reason: "expected key.path=value"))
        XCTAssertEqual(loadError("", overrides: ["rollout..top_p=1"]), .badOverride("rollout..top_p=1", reason: "empty key path"))
    }

    func testOutOfRangeValuesAreRejectedWithTheirPath() {
        let cases: [(String, String)] = [
            ("rollout.top_p=1.5", "rollout.top_p"),
            ("rollout.group_size=1", "rollout.group_size"),
            ("staleness.max_staleness=-1", "staleness.max_staleness"),
            ("model.num_attention_heads=3", "model.hidden_size"),
            ("learner.control_endpoint=localhost", "learner.control_endpoint"),
            ("actors.heartbeat_timeout_seconds=1", "actors.heartbeat_timeout_seconds"),
            ("task.name=jsonl", "task.dataset_path"),
        ]
        for (override, path) in cases {
            guard case .invalidValue(let got, _)? = loadError("", overrides: [override]) else {
                XCTFail("\(override) accepted")
                continue
            }
            XCTAssertEqual(got, path, override)
        }
    }

    /// Every numeric key, set to a value no run could use (infinite, NaN, 1e300, Int.max, their
    /// negatives), is rejected naming that key: values that used to pass validation and then trap in
    /// a Duration/Int conversion (heartbeat timeout `.inf`, lease 1e300) or poison the weights
    /// (learning rate 1e300).
    func testEveryNumericKeyRejectsValuesThatWouldOverflowAConversion() throws {
        let defaults = try XCTUnwrap(Yams.compose(yaml: try YAMLEncoder().encode(RunConfig.defaults)))
        var checked = 0
        for path in try RunConfig.keyPaths() where path != "run.seed" {
            var node: Node? = defaults
            for key in path.split(separator: ".") { node = node?[String(key)] }
            let text = try XCTUnwrap(node?.scalar?.string, path)
            let hostile: [String]
            if Int(text) != nil {
                hostile = ["\(Int.max)", "\(Int.min)", "9223372036854775807", "4611686018427387904"]
            } else if Double(text) != nil {
                hostile = [".inf", "-.inf", ".nan", "1e300", "-1e300"]
            } else { continue }
            checked += 1
            for value in hostile {
                let error = loadError("", overrides: ["\(path)=\(value)"])
                switch error {
                case .invalidValue(let got, _)?, .typeMismatch(let got, _, _)?: XCTAssertEqual(got, path, "\(path)=\(value): \(error!)")
                default: XCTFail("\(path)=\(value) accepted or untyped: \(String(describing: error))")
                }
            }
        }
        XCTAssertGreaterThan(checked, 40, "every numeric key is covered")
        XCTAssertEqual(loadError("", overrides: ["actors.heartbeat_timeout_seconds=.inf"])?.description,
                       "actors.heartbeat_timeout_seconds: must be a finite number in (0.0, 604800.0], got inf")
        XCTAssertEqual(loadError("", overrides: ["learner.learning_rate=1e300"])?.description,
                       "learner.learning_rate: must be a finite number in (0.0, 1.0], got 1e+300")
    }

    /// The `model:` section maps to the policy's `LlamaConfig` in one place: with an existing
    /// checkpoint a given key that disagrees is an error naming both values, keys not given take
    /// the checkpoint's values (what the run's saved config then says), and the positions check
    /// uses the real architecture.
    func testModelKeysAreCheckedAgainstAnExistingCheckpoint() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-model-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = LlamaConfig(vocabSize: 64, hiddenSize: 128, numHiddenLayers: 1, numAttentionHeads: 4, intermediateSize: 96,
                               maxPositionEmbeddings: 64)
        try LlamaModel(config: base).save(to: dir)
        let yaml = "model:\n  checkpoint: \(dir)\n  num_hidden_layers: 1\n"
        XCTAssertThrowsError(try RunConfig.load(yaml: yaml, overrides: ["model.hidden_size=96"]).policyArchitecture()) { e in
            guard case .invalidValue(let path, let reason)? = e as? ConfigError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, "model.hidden_size")
            XCTAssertTrue(reason.contains("96") && reason.contains("128") && reason.contains(dir), reason)
        }
        // Keys left at their defaults (hidden 128 matches by chance; intermediate 384 and 32
        // positions do not) follow the checkpoint, and the resolved config says so.
        let resolved = try RunConfig.load(yaml: yaml).resolvingModel()
        XCTAssertEqual(resolved.model.intermediateSize, 96)
        XCTAssertEqual(resolved.model.maxPositionEmbeddings, 64)
        XCTAssertEqual(try resolved.policyArchitecture(), try LlamaCheckpoint.readConfig(from: dir))
        // Reloading the saved config gives every key; all agree with the checkpoint.
        XCTAssertNoThrow(try RunConfig.load(yaml: try resolved.yaml()).policyArchitecture())
        // Prompt + completion are checked against the checkpoint's 64 positions, not the section's 32.
        XCTAssertNoThrow(try RunConfig.load(yaml: yaml, overrides: ["task.max_prompt_tokens=40"]).policyArchitecture())
        XCTAssertThrowsError(try RunConfig.load(yaml: yaml, overrides: ["rollout.max_new_tokens=1000"]).policyArchitecture()) { e in
            guard case .invalidValue(let path, let reason)? = e as? ConfigError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, "rollout.max_new_tokens")
            XCTAssertTrue(reason.contains("64"), reason)
        }
        // Without a checkpoint the section is the architecture, validated by LlamaConfig.validate.
        XCTAssertEqual(try RunConfig.load(yaml: "model: {checkpoint: ''}").policyArchitecture().hiddenSize, 128)
        guard case .invalidValue(let path, _)? = loadError("model: {hidden_size: 12}") else { return XCTFail("odd head_dim accepted") }
        XCTAssertEqual(path, "model", "head_dim 3 is odd: LlamaConfig's rotary check")
    }

    /// The cluster's actors score with the task's verifier: a reward model is refused up front.
    func testClusterRefusesARewardModel() throws {
        let config = try RunConfig.load(yaml: "task: {reward: reward_model, reward_model_path: rm}")
        XCTAssertThrowsError(try config.validateForCluster()) { e in
            guard case .invalidValue(let path, let reason)? = e as? ConfigError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, "task.reward")
            XCTAssertTrue(reason.contains("tether train"), reason)
        }
        XCTAssertNoThrow(try RunConfig.defaults.validateForCluster())
    }

    /// Each `staleness.off_policy_correction` name maps to its objective with `is_cap` as its bound,
    /// `proximal_logprobs` reaches the update, and bad names and bounds are errors naming the key.
    func testOffPolicyCorrectionsMapToTheirObjectivesAndBadValuesAreNamed() throws {
        func objective(_ correction: String, cap: String = "2.0") throws -> PolicyObjective {
            try RunConfig.load(yaml: "", overrides: ["staleness.off_policy_correction=\(correction)", "staleness.is_cap=\(cap)"])
                .rlOptions(eosTokenId: nil, synchronous: false).algorithm.objective
        }
        XCTAssertEqual(try objective("none"), .ppoClip(epsilonLow: 0.2, epsilonHigh: 0.2))
        XCTAssertEqual(try objective("decoupled"), .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .mask))
        XCTAssertEqual(try objective("truncated_is", cap: "3"), .truncatedIS(cap: 3))
        XCTAssertEqual(try objective("masked_is", cap: "5"),
                       .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 5, capMode: .maskOutside))
        XCTAssertEqual(try objective("sequence_truncated_is"),
                       .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.2, behaviourWeightCap: 2, capMode: .truncateSequence))
        // tether train samples with the weights it trains: no correction applies.
        let sync = try RunConfig.load(yaml: "", overrides: ["staleness.off_policy_correction=masked_is"]).rlOptions(eosTokenId: nil, synchronous: true)
        XCTAssertEqual(sync.algorithm.objective, .ppoClip(epsilonLow: 0.2, epsilonHigh: 0.2))

        XCTAssertEqual(RunConfig.defaults.rlOptions(eosTokenId: nil, synchronous: false).algorithm.proximal, .forward)
        let loglinear = try RunConfig.load(yaml: "staleness: {proximal_logprobs: loglinear}")
        XCTAssertEqual(loglinear.rlOptions(eosTokenId: nil, synchronous: false).algorithm.proximal, .loglinear)

        guard case .invalidValue(let path, let reason)? = loadError("", overrides: ["staleness.off_policy_correction=icepop"]) else { return XCTFail() }
        XCTAssertEqual(path, "staleness.off_policy_correction")
        XCTAssertTrue(reason.contains("'icepop'") && reason.contains("none, decoupled, truncated_is, masked_is, sequence_truncated_is"), reason)
        guard case .invalidValue(let p2, let r2)? = loadError("", overrides: ["staleness.proximal_logprobs=linear"]) else { return XCTFail() }
        XCTAssertEqual(p2, "staleness.proximal_logprobs")
        XCTAssertTrue(r2.contains("forward, loglinear"), r2)
        // masked_is keeps tokens with ratio in [1/c, c]: c = 1 would keep only exact matches.
        guard case .invalidValue(let p3, let r3)? = loadError("", overrides: ["staleness.off_policy_correction=masked_is", "staleness.is_cap=1"])
        else { return XCTFail("masked_is with is_cap 1 accepted") }
        XCTAssertEqual(p3, "staleness.is_cap")
        XCTAssertTrue(r3.contains("masked_is") && r3.contains("> 1"), r3)
        XCTAssertNoThrow(try RunConfig.load(yaml: "", overrides: ["staleness.off_policy_correction=truncated_is", "staleness.is_cap=1"]))
        XCTAssertEqual(loadError("", overrides: ["staleness.off_policy_correction=masked_is", "staleness.is_cap=0.5"])?.description,
                       "staleness.is_cap: must be a finite number in [1.0, 1000000.0], got 0.5")
    }

    func testDuplicateKeysAreAnErrorNamingTheKey() {
        XCTAssertEqual(loadError("run:\n  steps: 10\n  name: a\n  steps: 20\n"), .duplicateKey(path: "run.steps"))
        XCTAssertEqual(loadError("run: {steps: 10}\nrun: {name: b}\n"), .duplicateKey(path: "run"))
        XCTAssertEqual(loadError("learner: {learning_rate: 0.1, learning_rate: 0.2}\n"), .duplicateKey(path: "learner.learning_rate"))
        XCTAssertEqual(ConfigError.duplicateKey(path: "run.steps").description, "run.steps: key given more than once")
    }

    func testSyntaxErrorsAndMissingFilesAreTyped() {
        guard case .syntax? = loadError("model: [unclosed\n") else { return XCTFail("no syntax error") }
        XCTAssertThrowsError(try RunConfig.load(contentsOf: URL(fileURLWithPath: "/nonexistent/tether.yaml"))) { error in
            guard case .unreadable(let path, _)? = error as? ConfigError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, "/nonexistent/tether.yaml")
        }
    }
}
