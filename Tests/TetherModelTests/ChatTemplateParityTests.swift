import Foundation
import TetherModel
import TetherTestSupport
import XCTest

/// Chat templates must render byte-identically to `transformers`' `apply_chat_template(...,
/// tokenize=False)`: the prompt a policy is trained on is the prompt it is served with. Every case
/// (the templates of SmolLM2, Qwen2.5, Llama 3 and 3.1, and a corpus of small templates for the
/// interpreter's semantics) is rendered by one Python run of scripts/peers/hf_chat_template.py.
final class ChatTemplateParityTests: XCTestCase {
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../scripts/peers/hf_chat_template.py").standardizedFileURL.path
    /// The real SmolLM2 tokenizer: the repo's model (`scripts/get-model`, its template in
    /// tokenizer_config.json), else a directory transformers saved (`chat_template.jinja`).
    static let smolTokenizerDirectory = TokenizerParityTests.smolDirectory() ?? "/tmp/smol/hf-tokenizer"

    /// The real tokenizer's template, as transformers reads it from that directory; nil when absent.
    static let smolTemplate: String? = {
        if let jinja = try? String(contentsOfFile: smolTokenizerDirectory + "/chat_template.jinja", encoding: .utf8) { return jinja }
        guard let data = FileManager.default.contents(atPath: smolTokenizerDirectory + "/tokenizer_config.json"),
              let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return config["chat_template"] as? String
    }()

    struct Case {
        var template: String
        var messages: [TemplateValue]
        var addGenerationPrompt: Bool
        var bosToken: String? = nil
        var eosToken: String? = nil
        var tools: [TemplateValue]? = nil
        var extra: [String: TemplateValue] = [:]
        var tokenizerDirectory: String? = nil
    }

    enum PeerResult: Equatable { case text(String), error(String) }

    nonisolated(unsafe) static var peer: [PeerResult]?  // XCTest runs one test at a time

    // MARK: conversations

    static let system: TemplateValue = ["role": "system", "content": "You are a helpful assistant."]
    static let conversations: [[TemplateValue]] = [
        [system, ["role": "user", "content": "What is 7 + 5?"]],
        [["role": "user", "content": "Hello!"]],
        [system, ["role": "user", "content": "Hi"], ["role": "assistant", "content": "Hello! How can I help?"],
         ["role": "user", "content": "Tell me a joke."]],
        [["role": "user", "content": "One"], ["role": "assistant", "content": "Two"], ["role": "user", "content": "Three"],
         ["role": "assistant", "content": "Four"]],
        [["role": "system", "content": "  Spaces around the system prompt  \n"],
         ["role": "user", "content": "Quote \" and ' and \\ and {{ braces }} and {% tags %}\nsecond line"],
         ["role": "assistant", "content": "日本語 🙂👍🏽 ünïcödé\t tab"],
         ["role": "user", "content": "  leading and trailing  \r\nCRLF\n\n"]],
    ]

    static let weatherTool: TemplateValue = [
        "type": "function",
        "function": [
            "name": "get_weather",
            "description": "Get the weather for a city — “quoted”, ünïcode.",
            "parameters": [
                "type": "object",
                "properties": ["city": ["type": "string", "description": "The city"],
                               "unit": ["type": "string", "enum": ["celsius", "fahrenheit"]]],
                "required": ["city"],
            ],
        ],
    ]
    static let toolConversation: [TemplateValue] = [
        system,
        ["role": "user", "content": "Weather in Paris and Zürich?"],
        ["role": "assistant", "content": "",
         "tool_calls": [["type": "function", "function": ["name": "get_weather", "arguments": ["city": "Paris", "unit": "celsius"]]]]],
        ["role": "tool", "content": "18C"],
        ["role": "tool", "content": "{\"temp\": 12}"],
        ["role": "assistant", "content": "Paris 18C, Zürich 12C."],
    ]

    /// Interpreter semantics, each compared with Jinja under transformers' environment.
    static let snippets: [String] = [
        "  {% if true %}\n  x\n  {% endif %}\n  y  {{- ' z' }}\n{# c #}\nw\n",
        "{%- for m in messages -%}\n  [{{ m.role }}]\n{%- endfor %}\n",
        "a\n{%+ if true %}b{% endif +%}\nc  {%- if true -%}  d  {%- endif -%}  e",
        "{#- leading comment -#}\n  A  \n  {#- c2 #}\n  B\n{# c3 -#}\n   C\n",
        "x\n   {{ 'y' }}\n   {% if true %}z{% endif %}\n\t{% if true %}\n t\n{% endif %}\n",
        "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}{{ '' if loop.last else ',' }}{% endfor %}",
        "{% for m in messages %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{% if not loop.first %}{{ loop.previtem.role }}{% endif %}{% if not loop.last %}{{ loop.nextitem.role }}{% endif %};{% endfor %}",
        "{% for x in [] %}a{% else %}empty{% endfor %}{% for x in [1] %}{{ x }}{% else %}no{% endfor %}",
        "{% for x in [1,2,3,4,5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
        "{% set c = 0 %}{% for i in [1,2] %}{{ c }}{% set c = c + 1 %}{{ c }}{% endfor %}{{ c }}{% if true %}{% set c = 9 %}{% endif %}{{ c }}",
        "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}",
        "{{ none }}|{{ true }}|{{ False }}|{{ [1, 'a', none, true, 1.5, \"it's\"] }}|{{ {'k': 'v', 'n': [1]} }}|{{ 1.0 }}|{{ 3/2 }}|{{ 7//2 }}|{{ -7//2 }}|{{ -7 % 3 }}|{{ 2**10 }}|{{ 1e3 }}|{{ 0.1 + 0.2 }}",
        "{{ 1/3 }}|{{ 2.5e-5 }}|{{ 1e16 }}|{{ 123456789.125 }}|{{ 10/4*2 }}|{{ -0.0 }}|{{ 1_000 }}|{{ 2**-1 }}",
        #"{{ 'a\tb\\c\'d\u00e9\x41' }}|{{ "q'" ~ 'r"' }}|{{ 'ab' 'cd' }}|{{ 'line\nbreak' }}"#,
        "{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' in 'cat' }}{{ 'k' in {'k':1} }}{{ 2 in [1,2] }}{{ 3 not in [1,2] }}{{ 1 < 2 < 3 }}{{ 'b' > 'a' }}{{ [1,2] < [1,3] }}{{ 'a' != 'b' }}{{ none == none }}",
        "{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ none or [] }}|{{ not none }}|{{ 1 if none else 2 }}|{{ 'y' if messages }}|{{ 'n' if not messages }}|{{ 'a' if false else 'b' if true else 'c' }}",
        "{{ messages[1:]|length }}{{ messages[-1].content }}{{ 'hello'[::-1] }}{{ 'hello'[1:3] }}{{ [1,2,3,4][::2] }}{{ [1,2,3][-2:] }}{{ 'abc'[5:] }}{{ [1,2,3,4,5][3:0:-1] }}",
        #"{{ ' a b '.strip() }}|{{ 'x,y,,z'.split(',') }}|{{ ' a  b '.split() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'Hello World'.upper() }}|{{ 'hello world'.title() }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'xxhixx'.strip('x') }}|{{ '-'.join(['a','b']) }}|{{ 'abc'.find('c') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|{{ 'abc'.capitalize() }}|{{ 'l1\nl2'.splitlines() }}|{{ '  x'.lstrip() }}|{{ 'x  '.rstrip() }}"#,
        "{% set d = {'a': 1, 'b': [2, 3]} %}{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 'dflt') }}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys()|list }}{{ d.values()|list }}{{ d['b'][1] }}{{ d.b.0 }}{% for k in d %}{{ k }}{% endfor %}",
        "{{ '  x  '|trim }}|{{ messages|length }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|{{ undefined_thing|default('dflt') }}|{{ ''|default('e', true) }}|{{ [1,2,3]|join('-') }}|{{ [1,2,3]|first }}|{{ [1,2,3]|last }}|{{ 'abc'|list }}|{{ [3,1,2]|sort }}|{{ ['b','A','a']|sort }}|{{ [1,2,3]|reverse|list }}|{{ [1,1,2]|unique|list }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ '42'|int + 1 }}|{{ '1.5'|float }}|{{ [1,2,3]|sum }}|{{ [4,2,9]|max }}|{{ [4,2,9]|min }}|{{ 'a<b>&'|e }}|{{ 'x'|string }}|{{ 'hello world'|capitalize }}|{{ 'a b'|title }}|{{ 'aaa'|replace('a','b',2) }}|{{ 'xyx'|trim('x') }}|{{ [3,1,2]|sort(reverse=true) }}",
        "{{ messages|map(attribute='role')|join(',') }}|{{ messages|selectattr('role','equalto','user')|list|length }}|{{ messages|rejectattr('role','eq','user')|map(attribute='content')|list }}|{{ [1,2,3,4]|select('odd')|list }}|{{ [1,2,3,4]|reject('even')|list }}|{{ ['a','b']|map('upper')|list }}|{{ {'x':1,'y':2}|items|list }}|{{ messages|map(attribute='missing', default='?')|list }}|{{ [0, 1, '', 'a']|select|list }}",
        #"{{ {'b': [1, 'é', none, true, 1.5, {}], 'a': '"q"\n\t'}|tojson }}|{{ [1, {'k': [2, []]}]|tojson(indent=2) }}|{{ {'b':1,'a':2}|tojson(sort_keys=true) }}|{{ 'x'|tojson }}|{{ messages[0]|tojson(separators=(',', ':')) }}|{{ messages|tojson }}|{{ {'e': 'é'}|tojson(ensure_ascii=true) }}"#,
        "{{ x is defined }}{{ messages is defined }}{{ none is none }}{{ 1 is number }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ false is sameas false }}{{ 'abc' is lower }}{{ 2 is in [1,2] }}{{ 'x' is not none }}{{ 5 is gt 3 }}{{ 1 is eq 1 }}{{ x is undefined }}{{ messages[0] is mapping }}",
        "{% macro render(m, prefix='> ') %}{{ prefix }}{{ m.role|upper }}: {{ m.content }}{% endmacro %}{% for m in messages %}{{ render(m) }}\n{{ render(m, prefix='* ') }}\n{% endfor %}",
        "{% set header %}[{{ messages|length }} messages]{% endset %}{{ header }}{{ header|length }}",
        "{% for m in messages %}{% if m.role == 'system' %}S{% elif m.role == 'user' %}U{% else %}A{% endif %}{% endfor %}",
        "{{ 'a' ~ 1 ~ none ~ [1] }}|{{ 'x' + 'y' * 2 }}|{{ [1] + [2] }}|{{ 1 + 2 * 3 - 4 / 2 }}|{{ (1 + 2) * 3 }}|{{ -2 ** 2 }}|{{ 10 % 4 }}|{{ 2 * 'ab' }}|{{ 7.5 // 2 }}|{{ -7.5 % 2 }}",
        "{% for m in messages %}{{ loop.cycle('odd','even') }} {% endfor %}",
        "{% for i in range(3) %}{{ i }}{% endfor %}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1, b='x') }}{{ namespace(a=1).a }}",
        "{% if messages|length > 2 %}{{ raise_exception('Too many: ' ~ messages|length) }}{% endif %}ok",
        "{{ missing.attr }}",
        "{{ 'a' + 1 }}",
        "{{ messages[9].role }}",
        "{{ messages[9] }}|{{ messages[0].nothing }}|{{ messages[0]['nothing'] }}",
        "{% for m in messages %}{{ m.content|length }},{{ m.content[::-1] }},{{ m.content|upper }};{% endfor %}",
        "{{ messages[0]['content'] | trim + '!' }}|{{ 'ß'|upper }}|{{ 'İ'|lower|length }}",
        "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 'x') %}{{ t[1] }}{% for a, b in [[1, 2], [3, 4]] %}{{ a * b }}{% endfor %}",
        "{{ x|default }}|{{ none|default('n') }}|{{ none|default('n', true) }}|{{ x|length }}|{{ x|trim }}{% for i in x %}never{% endfor %}|{{ x == none }}|{{ x|list }}",
        "{{ {'a': {'b': 1}} }}{{ {'a': {'b': 1}}['a']['b'] }}",
        "{{ '{{ not a tag }}' }}{{ \"{% nor this %}\" }}",
        "{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}{{ tools }}{{ documents }}",
        "{% for m in messages %}{{ m['content'].split()|length }} {% endfor %}",
        "{% set m = messages[-1] %}{% if m.content is string %}str{% endif %}{{ m.get('content', 'x')|length }}",
        "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}{{ index }}{{ message.content[:3] }}{%- endfor %}",
        #"{{ '<think>\nabc\n</think>\n\nanswer'.split('</think>')[-1].lstrip('\n') }}|{{ '<think>\nabc\n</think>'.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}"#,
        "{{ enable_thinking is defined and enable_thinking is false }}{% if (messages[1]['role'] == 'user') != (0 % 2 == 0) %}bad{% else %}good{% endif %}",
        "{% set ns = namespace(parts=[]) %}{% for m in messages %}{% set ns.parts = ns.parts + [m.role] %}{% endfor %}{{ ns.parts|join(' ') }}{{ ns.parts|tojson }}",
        "{{ \"they're here-and (there)\"|title }}|{{ \"they're\".title() }}|{{ 2.5|round }}|{{ 0.125|round(2) }}|{{ 3.5|round }}|{{ '123' is lower }}|{{ 'a1' is lower }}|{{ 'A1' is upper }}",
        "{% for m in messages %}{{ m|tojson }}\n{% endfor %}",
    ]

    // MARK: cases

    static let cases: [Case] = {
        var all: [Case] = []
        let families: [(String, String?, String?)] = [
            ("smollm2", "<|im_start|>", "<|im_end|>"), ("qwen25", nil, "<|im_end|>"),
            ("llama31", "<|begin_of_text|>", "<|eot_id|>"), ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
        ]
        for (template, bos, eos) in families {
            for conversation in conversations {
                for generation in [false, true] {
                    all.append(Case(template: template, messages: conversation, addGenerationPrompt: generation, bosToken: bos, eosToken: eos))
                }
            }
        }
        all.append(Case(template: "qwen25", messages: toolConversation, addGenerationPrompt: false, eosToken: "<|im_end|>", tools: [weatherTool]))
        all.append(Case(template: "qwen25", messages: Array(toolConversation.prefix(2)), addGenerationPrompt: true, eosToken: "<|im_end|>", tools: [weatherTool, weatherTool]))
        all.append(Case(template: "qwen25", messages: Array(toolConversation.dropFirst().prefix(4)), addGenerationPrompt: true, eosToken: "<|im_end|>", tools: [weatherTool]))
        let llamaToolCall: TemplateValue = ["role": "assistant", "tool_calls": [["type": "function", "function": ["name": "get_weather", "arguments": ["city": "Paris"]]]]]
        all.append(Case(template: "llama31", messages: [system, ["role": "user", "content": "  Weather in Paris?  "], llamaToolCall,
                                                       ["role": "tool", "content": "18C"], ["role": "ipython", "content": ["temp": 18]]],
                        addGenerationPrompt: true, bosToken: "<|begin_of_text|>", tools: [weatherTool]))
        all.append(Case(template: "llama31", messages: [["role": "user", "content": "Weather?"]], addGenerationPrompt: true,
                        bosToken: "<|begin_of_text|>", tools: [weatherTool], extra: ["tools_in_user_message": false, "date_string": "01 Dec 2026"]))
        all.append(Case(template: "llama31", messages: [system, ["role": "user", "content": "Search for Swift"],
                                                       ["role": "assistant", "tool_calls": [["function": ["name": "brave_search", "arguments": ["query": "Swift 6", "count": "3"]]]]]],
                        addGenerationPrompt: false, bosToken: "<|begin_of_text|>", extra: ["builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"]]))
        all.append(Case(template: "llama31", messages: [system], addGenerationPrompt: true, bosToken: "<|begin_of_text|>", tools: [weatherTool]))
        all.append(Case(template: "llama31", messages: [system, llamaToolCall, llamaToolCall], addGenerationPrompt: true, bosToken: "<|begin_of_text|>",
                        extra: ["date_string": "26 Jul 2024"]))
        for (n, _) in snippets.enumerated() {
            all.append(Case(template: "snippet\(n)", messages: conversations[2], addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>"))
            all.append(Case(template: "snippet\(n)", messages: conversations[4], addGenerationPrompt: false))
        }
        // transformers drops None-valued keys and aliases reasoning fields before rendering.
        all.append(Case(template: "snippet\(snippets.count - 1)", messages: [
            ["role": "assistant", "content": nil, "reasoning_content": "step 1"],
            ["role": "user", "content": "x", "name": nil, "thinking": "t2", "reasoning": "r"],
        ], addGenerationPrompt: false))
        if smolTemplate != nil {
            for conversation in conversations {
                all.append(Case(template: "smollm2-real", messages: conversation, addGenerationPrompt: true, tokenizerDirectory: smolTokenizerDirectory))
            }
        }
        return all
    }()

    static func templateSource(_ name: String) throws -> String {
        switch name {
        case "smollm2": return ChatTemplateFixtures.smolLM2
        case "qwen25": return ChatTemplateFixtures.qwen25
        case "llama31": return ChatTemplateFixtures.llama31
        case "llama3": return ChatTemplateFixtures.llama3
        case "smollm2-real": return try XCTUnwrap(smolTemplate, "no chat template in \(smolTokenizerDirectory)")
        default: return snippets[Int(name.dropFirst("snippet".count))!]
        }
    }

    // MARK: peer

    func peerResults() throws -> [PeerResult] {
        if let p = Self.peer { return p }
        try PeerPython.require(["transformers", "jinja2", "tokenizers"])
        var templates: [(String, TemplateValue)] = []
        for name in Set(Self.cases.map(\.template)).sorted() where name != "smollm2-real" {
            templates.append((name, .string(try Self.templateSource(name))))
        }
        let cases: [TemplateValue] = Self.cases.map { c in
            var entries: [(String, TemplateValue)] = [("template", .string(c.template)), ("messages", .list(c.messages)),
                                                      ("add_generation_prompt", .bool(c.addGenerationPrompt))]
            if let b = c.bosToken { entries.append(("bos_token", .string(b))) }
            if let e = c.eosToken { entries.append(("eos_token", .string(e))) }
            if let t = c.tools { entries.append(("tools", .list(t))) }
            if !c.extra.isEmpty { entries.append(("extra", .dict(OrderedDictionary(c.extra.sorted { $0.key < $1.key })))) }
            if let d = c.tokenizerDirectory { entries.append(("tokenizer_dir", .string(d))) }
            return .dict(OrderedDictionary(entries))
        }
        let jobs = TemplateValue.dict(OrderedDictionary([("templates", .dict(OrderedDictionary(templates))), ("cases", .list(cases))]))
        let path = try makeTemporaryDirectory(self, "tether-chat-template") + "/jobs.json"
        try Data(Self.json(jobs).utf8).write(to: URL(fileURLWithPath: path))
        let out = try PeerPython.run("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                                     [Self.helper, path], timeout: 600)
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: String]])
        XCTAssertEqual(rows.count, Self.cases.count)
        Self.peer = try rows.map { row in
            if let t = row["text"] { return .text(t) }
            return .error(try XCTUnwrap(row["error"]))
        }
        return Self.peer!
    }

    static func json(_ v: TemplateValue) -> String {
        switch v {
        case .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return "\(d)"
        case .string(let s): return jsonString(s)
        case .list(let l): return "[" + l.map(json).joined(separator: ",") + "]"
        case .dict(let d): return "{" + d.entries.map { jsonString($0.key) + ":" + json($0.value) }.joined(separator: ",") + "}"
        }
    }

    /// Tether's render of a case: the text, or the error's description.
    static func tether(_ c: Case) -> Result<String, Error> {
        Result {
            try ChatTemplate(source: try templateSource(c.template)).render(
                messageValues: c.messages, addGenerationPrompt: c.addGenerationPrompt, bosToken: c.bosToken,
                eosToken: c.eosToken, tools: c.tools, extra: c.extra)
        }
    }

    /// Compares every case of the templates whose names pass `select`; returns how many matched.
    @discardableResult
    func assertParity(_ select: (String) -> Bool, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let peer = try peerResults()
        var checked = 0, rendered = 0
        for (n, c) in Self.cases.enumerated() where select(c.template) {
            checked += 1
            let context = "case \(n) (\(c.template), add_generation_prompt=\(c.addGenerationPrompt))"
            switch (Self.tether(c), peer[n]) {
            case (.success(let ours), .text(let theirs)):
                rendered += 1
                XCTAssertEqual(ours, theirs, "\(context): Tether\n\(ours.debugDescription)\ntransformers\n\(theirs.debugDescription)", file: file, line: line)
            case (.failure(let error), .error(let theirs)):
                if case ChatTemplateError.raised(let message, _) = error {
                    XCTAssertTrue(theirs.hasSuffix(": " + message), "\(context): raised \(message.debugDescription), transformers \(theirs)", file: file, line: line)
                }
            case (.success(let ours), .error(let theirs)):
                XCTFail("\(context): Tether rendered \(ours.debugDescription) but transformers raised \(theirs)", file: file, line: line)
            case (.failure(let error), .text(let theirs)):
                XCTFail("\(context): Tether failed (\(error)) but transformers rendered \(theirs.debugDescription)", file: file, line: line)
            }
        }
        XCTAssertGreaterThan(checked, 0, file: file, line: line)
        print("chat template parity: \(checked) cases (\(rendered) rendered, \(checked - rendered) errors on both sides) identical to transformers")
        return checked
    }

    func testSmolLM2TemplateMatchesTransformers() throws { try assertParity { $0 == "smollm2" } }

    func testQwen25TemplateMatchesTransformers() throws { try assertParity { $0 == "qwen25" } }

    func testLlama31TemplateMatchesTransformers() throws { try assertParity { $0 == "llama31" } }

    func testLlama3TemplateMatchesTransformers() throws { try assertParity { $0 == "llama3" } }

    func testInterpreterSemanticsMatchJinja() throws { try assertParity { $0.hasPrefix("snippet") } }

    /// The template transformers saved for the real SmolLM2 tokenizer, through `AutoTokenizer`.
    func testRealSmolLM2TokenizerMatchesTransformers() throws {
        guard Self.smolTemplate != nil else {
            throw XCTSkip("no SmolLM2 tokenizer with a chat template: neither models/smollm2-135m-instruct (scripts/get-model smollm2-135m-instruct) nor \(Self.smolTokenizerDirectory)")
        }
        XCTAssertEqual(try Self.templateSource("smollm2-real"), ChatTemplateFixtures.smolLM2)
        try assertParity { $0 == "smollm2-real" }
    }
}
