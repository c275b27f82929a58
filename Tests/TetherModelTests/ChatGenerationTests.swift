import Foundation
import TetherModel
import TetherTestSupport
import XCTest

/// Chat prompts and greedy chat turns equal `transformers`' on the real model: the prompt ids of
/// `apply_chat_template(add_generation_prompt=True)` and the tokens of `generate(do_sample=False)`,
/// which stops at the end-of-turn token. Needs `scripts/get-model smollm2-135m-instruct`.
final class ChatGenerationTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path
    static let smolLM2 = repoRoot + "/models/smollm2-135m-instruct"
    static let helper = repoRoot + "/scripts/peers/hf_chat_generate.py"

    func testGreedyChatTurnsEqualTransformersOnSmolLM2() throws {
        guard FileManager.default.fileExists(atPath: Self.smolLM2 + "/model.safetensors") else {
            throw XCTSkip("SmolLM2 absent: run scripts/get-model smollm2-135m-instruct")
        }
        try PeerPython.require(["torch", "transformers"])
        let conversations: [[ChatMessage]] = [
            [.user("What is 7 + 5?")],
            [.user("Name three colors.")],
            [.system("You are a terse calculator. Answer with a number only."), .user("What is 12 * 3?")],
            [.user("1 2 4 8 16: what comes next?"), .assistant("32"), .user("And after that?")],
        ]
        let maxNewTokens = 40
        let jobs = conversations.map { c in
            ["messages": c.map { ["role": $0.role, "content": $0.content] }, "max_new_tokens": maxNewTokens] as [String: Any]
        }
        let arg = String(decoding: try JSONSerialization.data(withJSONObject: jobs), as: UTF8.self)
        let out = try PeerPython.run("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                                     [Self.helper, Self.smolLM2, arg], timeout: 600)
        let peer = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]])

        let (model, checkpoint) = try LlamaModel.load(from: Self.smolLM2)
        let format = try ChatFormat(tokenizer: checkpoint.tokenizer)
        let stops = format.endOfTurnIds(model.config)
        XCTAssertEqual(stops, [try XCTUnwrap(checkpoint.tokenizer.id(of: "<|im_end|>"))])
        for (conversation, expected) in zip(conversations, peer) {
            let promptIds = try format.promptIds(conversation)
            XCTAssertEqual(promptIds, expected["prompt_ids"] as? [Int], "prompt of \(conversation)")
            let completion = try model.generate(prompts: [promptIds], maxNewTokens: maxNewTokens,
                                                sampling: SamplingParameters(temperature: 0, stopTokenIds: stops), seed: 0)[0]
            XCTAssertEqual(completion.tokens, expected["new_ids"] as? [Int], "greedy turn of \(conversation)")
            let text = try checkpoint.tokenizer.decode(completion.tokens)
            XCTAssertEqual(text, expected["text"] as? String)
            print("chat \(conversation.last!.content.debugDescription) → \(text.debugDescription) (transformers: identical)")
        }
    }

    func testACheckpointWithoutATemplateIsATypedError() throws {
        XCTAssertThrowsError(try ChatFormat(tokenizer: .standard)) { error in
            guard case ModelError.invalidTokenizer(let why) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("no chat template"), why)
        }
    }

    /// Every eos id of the config ends a turn (Llama 3 instruct lists several); without one, the tokenizer's eos_token.
    func testEndOfTurnIdsFollowTheConfigThenTheTokenizer() throws {
        let tokenizer = try Tokenizer(files: .init(
            tokenizerJSON: Tokenizer.standard.files.tokenizerJSON,
            tokenizerConfigJSON: Tokenizer.standard.files.tokenizerConfigJSON,
            chatTemplateFile: "{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"))
        let format = try ChatFormat(tokenizer: tokenizer)
        var config = LlamaConfig.tiny
        config.eosTokenIds = .list([2, 7])
        XCTAssertEqual(format.endOfTurnIds(config), [2, 7])
        config.eosTokenIds = nil
        XCTAssertEqual(format.endOfTurnIds(config), [try XCTUnwrap(tokenizer.eosId)])
        XCTAssertEqual(try format.render([.user("1+2=?")]), "user: 1+2=?<eos>\nassistant: ")
        XCTAssertEqual(try format.promptIds([.user("1+2=?")]),
                       try tokenizer.encode("user: 1+2=?<eos>\nassistant: ", addSpecialTokens: false))
        // Task prompts go through the template when there is one, else stay raw text after <bos>.
        XCTAssertEqual(try tokenizer.taskPromptIds("1+2=?"), try format.promptIds(user: "1+2=?"))
        XCTAssertEqual(try Tokenizer.standard.taskPromptIds("1+2=?"), try Tokenizer.standard.promptIds("1+2=?"))
        XCTAssertEqual(try Tokenizer.standard.taskPromptIds("1+2=?").first, Tokenizer.standard.bosId)
    }
}
