import Foundation
import TetherModel
import XCTest

/// The template interpreter on its own (no peer): whitespace control under transformers' Jinja
/// environment, loops and scoping, and typed errors with positions for whatever it refuses.
/// Expected texts are what Jinja 3.1 renders for the same templates (ChatTemplateParityTests checks
/// a larger corpus against Jinja itself).
final class ChatTemplateTests: XCTestCase {
    let conversation: [ChatMessage] = [.system("S"), .user("U1"), .assistant("A1"), .user("U2")]

    func render(_ source: String, _ messages: [ChatMessage]? = nil, generation: Bool = false,
                extra: [String: TemplateValue] = [:]) throws -> String {
        try ChatTemplate(source: source).render(messages: messages ?? conversation, addGenerationPrompt: generation, extra: extra)
    }

    func assertError(_ source: String, at line: Int, _ column: Int, file: StaticString = #filePath, lineNumber: UInt = #line,
                     _ check: (ChatTemplateError) -> Bool) {
        do {
            let out = try render(source)
            XCTFail("rendered \(out.debugDescription) instead of failing", file: file, line: lineNumber)
        } catch let error as ChatTemplateError {
            XCTAssertTrue(check(error), "unexpected error \(error)", file: file, line: lineNumber)
            XCTAssertEqual(error.location, TemplateLocation(line: line, column: column), "\(error)", file: file, line: lineNumber)
        } catch {
            XCTFail("untyped error \(error)", file: file, line: lineNumber)
        }
    }

    // MARK: whitespace (trim_blocks, lstrip_blocks, - and + modifiers)

    func testBlockTagsOnTheirOwnLinesLeaveNoBlankLines() throws {
        let t = "{% for m in messages %}\n    {% if m.role == 'user' %}\n        <{{ m.content }}>\n    {% endif %}\n{% endfor %}\n"
        XCTAssertEqual(try render(t), "        <U1>\n        <U2>\n")
    }

    func testMinusModifiersStripAllWhitespaceIncludingNewlines() throws {
        XCTAssertEqual(try render("{%- for m in messages %}\n    {{- m.role[0] }}\n{%- endfor %}\n"), "suau")
        XCTAssertEqual(try render("  {% if true %}\n  x\n  {% endif %}\n  y  {{- ' z' }}\n{# c #}\nw\n"), "  x\n  y z\nw")
    }

    func testPlusModifiersKeepWhitespaceThatTrimAndLstripWouldRemove() throws {
        XCTAssertEqual(try render("a\n  {%+ if true %}b{% endif +%}\nc"), "a\n  b\nc")
        XCTAssertEqual(try render("a\n  {% if true %}b{% endif %}\nc"), "a\nbc")
    }

    func testOneTrailingNewlineOfTheTemplateIsDropped() throws {
        XCTAssertEqual(try render("x\n"), "x")
        XCTAssertEqual(try render("x\n\n"), "x\n")
        XCTAssertEqual(try render("x\r\ny\r\n"), "x\ny")
    }

    // MARK: control flow and scoping

    func testLoopVariablesElseAndFilter() throws {
        XCTAssertEqual(try render("{% for m in messages %}{{ loop.index }}{{ 'F' if loop.first }}{{ 'L' if loop.last }} {% endfor %}"), "1F 2 3 4L ")
        XCTAssertEqual(try render("{% for m in messages[1:] %}{{ m.content }}{% else %}none{% endfor %}|{% for m in messages[9:] %}x{% else %}none{% endfor %}"),
                       "U1A1U2|none")
        XCTAssertEqual(try render("{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }} {% endfor %}"), "1/2 2/2 ")
        XCTAssertEqual(try render("{% for x in [1,2,3,4,5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"), "13")
    }

    func testSetInsideALoopLastsOneIterationButNamespaceCarriesState() throws {
        XCTAssertEqual(try render("{% set c = 0 %}{% for i in [1,2] %}{{ c }}{% set c = c + 1 %}{{ c }}{% endfor %}{{ c }}"), "01010")
        XCTAssertEqual(try render("{% if true %}{% set e = 5 %}{% endif %}{{ e }}"), "5")
        XCTAssertEqual(try render("{% set ns = namespace(parts=[]) %}{% for m in messages %}{% set ns.parts = ns.parts + [m.role] %}{% endfor %}{{ ns.parts|join(' ') }}"),
                       "system user assistant user")
    }

    func testReversedIterationAndStringSurgeryOfReasoningTemplates() throws {
        XCTAssertEqual(try render("{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}{{ index }}{{ message.content }}{%- endfor %}"),
                       "3U22A11U10S")
        let t = #"{{ '<think>\nabc\n</think>\n\nanswer'.split('</think>')[-1].lstrip('\n') }}|{{ '<think>\nabc\n</think>'.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}"#
        XCTAssertEqual(try render(t), "answer|abc")
        XCTAssertEqual(try render("{{ enable_thinking is defined and enable_thinking is false }}"), "False")
        XCTAssertEqual(try render("{{ enable_thinking is defined and enable_thinking is false }}", extra: ["enable_thinking": false]), "True")
    }

    func testFilterBindsTighterThanConcatenation() throws {
        XCTAssertEqual(try render("{{ 'a' ~ 'b' | upper }}"), "aB")
        XCTAssertEqual(try render("{{ '<' + messages[0].content | lower + '>' }}"), "<s>")
    }

    func testTransformersPassesToolsAndDocumentsAsNone() throws {
        XCTAssertEqual(try render("{{ tools is defined }}{{ tools is none }}{{ documents }}{{ add_generation_prompt }}", generation: true), "TrueTrueNoneTrue")
        let t = try ChatTemplate(source: "{{ bos_token }}|{{ eos_token }}|{{ tools|length }}")
        XCTAssertEqual(try t.render(messages: [.user("x")], addGenerationPrompt: false, bosToken: "<s>", eosToken: "</s>", tools: [["name": "f"]]), "<s>|</s>|1")
        XCTAssertThrowsError(try t.render(messages: [], addGenerationPrompt: true)) { XCTAssertEqual($0 as? ChatTemplateError, .emptyConversation) }
    }

    func testOneParsedTemplateRendersManyConversations() throws {
        let t = try ChatTemplate(source: ChatTemplateFixtures.smolLM2)
        let a = try t.render(messages: [.user("Hi")], addGenerationPrompt: true)
        XCTAssertEqual(a, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(try t.render(messages: [.system("Be brief."), .user("Hi")], addGenerationPrompt: false),
                       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        XCTAssertEqual(try t.render(messages: [.user("Hi")], addGenerationPrompt: true), a)

        let qwen = try ChatTemplate(source: ChatTemplateFixtures.qwen25)
        let messages: [ChatMessage] = [.system("You are a helpful assistant."), .user("What is 7 + 5?"), .assistant("12."), .user("And 8 + 5?")]
        let start = Date()
        let n = 2000
        for _ in 0..<n { _ = try qwen.render(messages: messages, addGenerationPrompt: true) }
        let perRender = Date().timeIntervalSince(start) / Double(n)
        print(String(format: "Qwen2.5 template, 4 messages: %.1f µs per render", perRender * 1e6))
        XCTAssertLessThan(perRender, 0.01, "rendering a prompt should cost far less than generating from it")
    }

    func testStrftimeNowFormatsTheLocalDate() throws {
        let year = Calendar.current.component(.year, from: Date())
        XCTAssertEqual(try render("{{ strftime_now('%Y') }}"), String(year))
    }

    // MARK: errors: typed, with the template position

    func testRaiseExceptionCarriesTheTemplatesMessage() {
        assertError("{% if messages|length > 2 %}\n  {{ raise_exception('Conversation roles must alternate') }}\n{% endif %}", at: 2, 21) {
            $0 == .raised("Conversation roles must alternate", TemplateLocation(line: 2, column: 21))
        }
    }

    func testSyntaxErrorsNameTheirPosition() {
        assertError("Hello\n{{ name }", at: 2, 9) { if case .syntax = $0 { return true } else { return false } }
        assertError("{% endfor %}", at: 1, 4) { if case .syntax = $0 { return true } else { return false } }
        assertError("{{ 'unterminated }}", at: 1, 4) { if case .syntax = $0 { return true } else { return false } }
        assertError("{% for x in messages %}\n{{ x ]] }}\n{% endfor %}", at: 2, 6) { if case .syntax = $0 { return true } else { return false } }
        assertError("{% break %}", at: 1, 4) { if case .syntax = $0 { return true } else { return false } }
        assertError("{# never closed", at: 1, 1) { if case .syntax = $0 { return true } else { return false } }
    }

    func testConstructsOutsideTheSubsetAreRefusedByName() {
        func unsupported(_ what: String) -> (ChatTemplateError) -> Bool {
            { if case .unsupported(let w, _) = $0 { return w.contains(what) } else { return false } }
        }
        assertError("text\n{% include 'other.jinja' %}", at: 2, 4, unsupported("include"))
        assertError("{% raw %}{{ x }}{% endraw %}", at: 1, 1, unsupported("raw"))
        assertError("{{ messages|wordwrap }}", at: 1, 12, unsupported("wordwrap"))
        assertError("{{ '%d items' % 3 }}", at: 1, 15, unsupported("printf"))
        assertError("{{ 'x{}'.format(1) }}", at: 1, 16, unsupported("format"))
        assertError("{% for m in messages recursive %}{% endfor %}", at: 1, 22, unsupported("recursive"))
        assertError("{{ 1 is prime }}", at: 1, 6, unsupported("prime"))
        assertError("{{ cycler('a') }}", at: 1, 10, unsupported("cycler"))
        assertError("{{ messages.pop() }}", at: 1, 16, unsupported("pop"))
    }

    func testUndefinedValuesPrintEmptyButCannotBeUsed() throws {
        XCTAssertEqual(try render("[{{ nothing }}][{{ nothing|length }}][{{ messages[0].nothing }}][{{ nothing is defined }}]"), "[][0][][False]")
        assertError("{{ nothing.attr }}", at: 1, 11) { $0 == .undefined("'nothing' is undefined", TemplateLocation(line: 1, column: 11)) }
        assertError("{{ messages[9].role }}", at: 1, 15) { if case .undefined = $0 { return true } else { return false } }
        assertError("{{ 'a' + 1 }}", at: 1, 8) { if case .invalidOperation = $0 { return true } else { return false } }
        assertError("{% set x = 9223372036854775807 + 1 %}", at: 1, 32) { if case .invalidOperation = $0 { return true } else { return false } }
    }

    func testHostileTemplatesFailWithErrorsInsteadOfCrashing() {
        let deep = "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}"
        XCTAssertThrowsError(try ChatTemplate(source: deep)) { XCTAssertTrue("\($0)".contains("levels deep"), "\($0)") }
        let deepBlocks = String(repeating: "{% if true %}", count: 2000) + String(repeating: "{% endif %}", count: 2000)
        XCTAssertThrowsError(try ChatTemplate(source: deepBlocks)) { XCTAssertTrue("\($0)".contains("levels deep"), "\($0)") }
        XCTAssertThrowsError(try render("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")) { XCTAssertTrue("\($0)".contains("recursed"), "\($0)") }
        XCTAssertThrowsError(try render("{{ 'x' * 1000000000000 }}")) { XCTAssertTrue("\($0)".contains("larger than"), "\($0)") }
        XCTAssertThrowsError(try render("{% for i in range(1000000) %}{% endfor %}")) { XCTAssertTrue("\($0)".contains("range too big"), "\($0)") }
        XCTAssertThrowsError(try render("{% set ns = namespace(_x=1) %}")) { XCTAssertTrue("\($0)".contains("underscore"), "\($0)") }
    }

    func testErrorDescriptionsSayWhatAndWhere() {
        let e = ChatTemplateError.unsupported("the filter 'wordwrap'", TemplateLocation(line: 3, column: 7))
        XCTAssertEqual(e.description, "chat template uses the filter 'wordwrap' at line 3, column 7, which Tether's template interpreter does not support")
    }
}
