import Foundation
import TetherCluster
import TetherModel
import TetherRewards
import TetherWire
import XCTest

/// Limits that used to fail silently: weights over `wire.max_message_bytes` (ZeroMQ dropped them
/// and actors waited forever), prompts over `task.max_prompt_tokens` (cut to their last tokens),
/// and chat models sampling past their end-of-turn token (only the tokenizer's eos stopped them).
final class ClusterLimitsTests: XCTestCase {
    /// The weights frame must fit the message limit: exactly at it is fine, one byte less is a
    /// config error naming the key, the frame's size and the value that would fit.
    func testWeightsOverTheMessageLimitAreAConfigError() throws {
        var config = RunConfig()
        let architecture = try config.policyArchitecture()
        let bytes = ParameterLayout(config: architecture).totalCount * 4
        config.wire.maxMessageBytes = bytes
        XCTAssertNoThrow(try config.checkWeightsFitMessageLimit(architecture))
        config.wire.maxMessageBytes = bytes - 1
        XCTAssertThrowsError(try config.checkWeightsFitMessageLimit(architecture)) { e in
            guard case .invalidValue("wire.max_message_bytes", let why)? = e as? ConfigError else { return XCTFail("\(e)") }
            XCTAssertTrue(why.contains("one frame of \(bytes) bytes") && why.contains("at least \(bytes)"), why)
        }
    }

    /// Real processes: a launch whose weights exceed `wire.max_message_bytes` stops at once with the
    /// key in its message (it used to start, and the actors waited for weights that never came),
    /// and so does a learner started on its own (a cluster without the launcher).
    func testLaunchAndLearnerStopWhenWeightsExceedTheMessageLimit() throws {
        let h = try ClusterHarness("msglimit")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 3, extra: ["wire: {max_message_bytes: 4096}"])
        let launch = try h.start("launch", executable: h.binary, ["launch", config.path, "--out", h.runDirectory.path, "--actors", "1"])
        XCTAssertTrue(h.wait(launch, timeout: 60), "launch hung on weights no actor can receive\n\(h.allLogs())")
        XCTAssertNotEqual(launch.terminationStatus, 0)
        XCTAssertTrue(h.log("launch").contains("wire.max_message_bytes"), h.log("launch"))
        XCTAssertFalse(h.log("launch").contains("started actor-0"), "no process should start\n\(h.log("launch"))")

        let learner = try h.startLearner(config: config)
        XCTAssertTrue(h.wait(learner, timeout: 60), h.allLogs())
        XCTAssertNotEqual(learner.terminationStatus, 0)
        XCTAssertTrue(h.log("learner").contains("more than wire.max_message_bytes 4096"), h.log("learner"))
    }

    /// A prompt longer than `task.max_prompt_tokens` is an error that names the limit, how many
    /// prompts exceed it and the longest (it used to be cut to its last tokens silently); a prompt
    /// within the limit keeps all its tokens.
    func testOverlongPromptsAreAnErrorNamingTheLimit() throws {
        var config = RunConfig()
        config.task.name = "addition"
        config.task.maxPromptTokens = 5
        let task = try RunTask(config: config, trainPromptCount: 64)
        let lengths = try task.trainPrompts.map { try $0.promptIds(task.tokenizer).count }
        let longest = try XCTUnwrap(lengths.max())
        XCTAssertGreaterThan(longest, 5, "the task must have prompts over the limit for this test")
        let over = lengths.filter { $0 > 5 }.count
        XCTAssertThrowsError(try task.checkPromptLengths(task.trainPrompts, what: "training")) { e in
            guard case .invalidValue("task.max_prompt_tokens", let why)? = e as? ConfigError else { return XCTFail("\(e)") }
            XCTAssertTrue(why.hasPrefix("\(over) of \(task.trainPrompts.count) training prompts are longer than task.max_prompt_tokens 5"), why)
            XCTAssertTrue(why.contains("is \(longest) tokens") && why.contains("at least \(longest)"), why)
        }
        let long = task.trainPrompts[try XCTUnwrap(lengths.firstIndex { $0 > 5 })]
        XCTAssertThrowsError(try task.promptTokens(long)) { e in
            guard case .invalidValue("task.max_prompt_tokens", let why)? = e as? ConfigError else { return XCTFail("\(e)") }
            XCTAssertTrue(why.contains("prompt '\(long.id)'"), why)
        }
        config.task.maxPromptTokens = longest
        let fits = try RunTask(config: config, trainPromptCount: 64)
        XCTAssertNoThrow(try fits.checkPromptLengths(fits.trainPrompts, what: "training"))
        XCTAssertEqual(try fits.promptTokens(long), try long.promptIds(fits.tokenizer), "a prompt within the limit keeps every token")
    }

    /// The learner refuses such a run at start (before binding anything), naming the key.
    func testLearnerRefusesOverlongPromptsAtStart() throws {
        let h = try ClusterHarness("promptlimit")
        defer { h.cleanup() }
        let config = try h.writeConfig(maxStaleness: 1, steps: 3)
        let yaml = try String(contentsOf: config, encoding: .utf8)
        XCTAssertTrue(yaml.contains("max_prompt_tokens: 16"))
        try yaml.replacingOccurrences(of: "max_prompt_tokens: 16", with: "max_prompt_tokens: 5").write(to: config, atomically: true, encoding: .utf8)
        let learner = try h.startLearner(config: config)
        XCTAssertTrue(h.wait(learner, timeout: 60), h.allLogs())
        XCTAssertNotEqual(learner.terminationStatus, 0)
        XCTAssertTrue(h.log("learner").contains("training prompts are longer than task.max_prompt_tokens 5"), h.log("learner"))
    }

    /// An actor stops a completion at the chat format's end-of-turn ids (the model config's eos
    /// list) as well as at the tokenizer's eos and the ticket's stop tokens: sampled from a random
    /// toy model, no completion runs past an end-of-turn token, while the eos-only sampling it
    /// replaced does.
    func testActorsStopAtTheChatFormatsEndOfTurn() throws {
        let tokenizer = try Tokenizer(files: .init(
            tokenizerJSON: Tokenizer.standard.files.tokenizerJSON,
            tokenizerConfigJSON: Tokenizer.standard.files.tokenizerConfigJSON,
            chatTemplateFile: "{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"))
        let eos = try XCTUnwrap(tokenizer.eosId)
        let endOfTurn = 7
        XCTAssertNotEqual(endOfTurn, eos)
        var config = RunConfig()
        config.task.name = "addition"
        config.task.maxPromptTokens = 64
        let task = try RunTask(config: config, trainPromptCount: 8, tokenizer: tokenizer)
        var architecture = try config.model.freshArchitecture()
        architecture.maxPositionEmbeddings = 128
        architecture.eosTokenIds = .list([eos, endOfTurn])
        XCTAssertEqual(try task.stopTokenIds(model: architecture), [eos, endOfTurn])
        XCTAssertEqual(try RunTask(config: config, trainPromptCount: 8).stopTokenIds(model: architecture), [Tokenizer.standard.eosId!],
                       "without a chat template only the tokenizer's eos ends a completion")
        let settings = SamplingSettings(temperature: 1, maxNewTokens: 24, seed: 3, stopTokens: [9])
        let sampling = try task.samplingParameters(settings, model: architecture)
        XCTAssertEqual(sampling.stopTokenIds, [eos, endOfTurn, 9])

        let model = try LlamaModel(config: architecture, seed: 11, std: 0.02)
        let prompt = try Tokenizer.standard.promptIds("12+35=")
        let prompts = Array(repeating: prompt, count: 48)
        let stopped = try model.generate(prompts: prompts, maxNewTokens: 24, sampling: sampling, seed: 5)
        for c in stopped {
            for stop in [endOfTurn, 9] where c.tokens.dropLast().contains(stop) { XCTFail("sampled past stop token \(stop): \(c.tokens)") }
        }
        XCTAssertTrue(stopped.contains { $0.tokens.last == endOfTurn && $0.finishReason == .eos }, "no completion ended its turn: the test proves nothing")
        let eosOnly = try model.generate(prompts: prompts, maxNewTokens: 24,
                                         sampling: SamplingParameters(temperature: 1, eosTokenId: eos), seed: 5)
        XCTAssertTrue(eosOnly.contains { $0.tokens.dropLast().contains(endOfTurn) }, "the eos-only sampler never passed an end-of-turn token here")
    }
}
