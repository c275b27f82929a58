/// A recursive-descent parser for the Jinja subset of chat templates. The grammar and operator
/// precedence follow Jinja's own `jinja2/parser.py` (lowest first): conditional `a if c else b`,
/// `or`, `and`, `not`, comparisons (`==` … `in`, `not in`), `+ -`, `~`, `* / // %`, `**`, unary
/// `- +`, then primaries with postfix `.attr`, `[subscript]`, `(call)`, `|filter` and `is test`.
/// So `'a' + x | trim + 'b'` is `'a' + (x|trim) + 'b'`, and `not x is none` is `not (x is none)`.
struct TemplateParser {
    private let tokens: [TemplateToken]
    private let map: SourceMap
    private var i = 0
    private var loopDepth = 0
    /// Nesting of blocks and sub-expressions so far. Bounded, so a hostile template (ten thousand
    /// `(`) is a syntax error rather than a stack overflow.
    private var depth = 0
    static let maxDepth = 200

    init(tokens: [TemplateToken], map: SourceMap) {
        self.tokens = tokens
        self.map = map
    }

    mutating func parseTemplate() throws -> [TemplateStatement] {
        let (body, _) = try parseBody(until: [])
        return body
    }

    // MARK: token helpers

    private var current: TemplateToken { tokens[i] }
    private var next: TemplateToken { tokens[min(i + 1, tokens.count - 1)] }

    private mutating func advance() { if i < tokens.count - 1 { i += 1 } }

    private func fail(_ why: String, _ offset: Int? = nil) -> ChatTemplateError {
        .syntax(why, map.location(offset ?? current.offset))
    }

    private func isOp(_ op: String, _ token: TemplateToken? = nil) -> Bool { (token ?? current).kind == .op(op) }
    private func isName(_ name: String, _ token: TemplateToken? = nil) -> Bool { (token ?? current).kind == .name(name) }

    private mutating func skipOp(_ op: String) -> Bool {
        guard isOp(op) else { return false }
        advance()
        return true
    }

    private mutating func skipName(_ name: String) -> Bool {
        guard isName(name) else { return false }
        advance()
        return true
    }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw fail("expected '\(op)', found \(describe(current))") }
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else { throw fail("expected a name, found \(describe(current))") }
        advance()
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw fail("expected end of statement block, found \(describe(current))") }
        advance()
    }

    private func describe(_ t: TemplateToken) -> String {
        switch t.kind {
        case .text: return "text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string \(s.debugDescription)"
        case .integer(let v): return "\(v)"
        case .float(let v): return "\(v)"
        case .op(let o): return "'\(o)'"
        case .end: return "end of template"
        }
    }

    // MARK: statements

    /// Statements up to a `{% name %}` whose name is in `endTags`; returns that name with the
    /// stream just after it (the caller reads the rest of the tag).
    private mutating func parseBody(until endTags: Set<String>) throws -> ([TemplateStatement], String?) {
        var body: [TemplateStatement] = []
        while true {
            switch current.kind {
            case .text(let t):
                body.append(.text(t))
                advance()
            case .variableBegin:
                advance()
                let e = try parseTuple()
                guard current.kind == .variableEnd else { throw fail("expected '}}', found \(describe(current))") }
                advance()
                body.append(.output(e))
            case .blockBegin:
                advance()
                guard case .name(let keyword) = current.kind else { throw fail("expected a statement name, found \(describe(current))") }
                if endTags.contains(keyword) {
                    advance()
                    return (body, keyword)
                }
                body.append(contentsOf: try parseStatement(keyword))
            case .end:
                if !endTags.isEmpty {
                    throw fail("unexpected end of template, expected \(endTags.sorted().map { "'\($0)'" }.joined(separator: " or "))")
                }
                return (body, nil)
            default:
                throw fail("unexpected \(describe(current))")
            }
        }
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("the template nests blocks or expressions more than \(Self.maxDepth) levels deep") }
    }

    private mutating func parseStatement(_ keyword: String) throws -> [TemplateStatement] {
        let at = current.offset
        try enter()
        defer { depth -= 1 }
        switch keyword {
        case "if":
            advance()
            return [try parseIf()]
        case "for":
            advance()
            return [try parseFor(at: at)]
        case "set":
            advance()
            return [try parseSet(at: at)]
        case "macro":
            advance()
            return [try parseMacro(at: at)]
        case "break", "continue":
            guard loopDepth > 0 else { throw fail("'\(keyword)' outside of a loop") }
            advance()
            try expectBlockEnd()
            return [keyword == "break" ? .breakLoop : .continueLoop]
        case "generation":
            // transformers' AssistantTracker extension: renders its body; only the assistant-mask
            // bookkeeping (not part of the rendered text) is left out.
            advance()
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectBlockEnd()
            return body
        case "endif", "endfor", "endset", "endmacro", "else", "elif", "endgeneration":
            throw fail("unexpected '\(keyword)'")
        default:
            throw ChatTemplateError.unsupported("the '{% \(keyword) %}' statement", map.location(at))
        }
    }

    private mutating func parseIf() throws -> TemplateStatement {
        var branches: [(condition: TemplateExpression, body: [TemplateStatement])] = []
        var condition = try parseTuple(withConditional: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple(withConditional: false)
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .conditional(branches, otherwise: otherwise)
            default:
                try expectBlockEnd()
                return .conditional(branches, otherwise: [])
            }
        }
    }

    private mutating func parseFor(at: Int) throws -> TemplateStatement {
        let target = try parseAssignTarget(allowNamespace: false, endName: "in")
        guard skipName("in") else { throw fail("expected 'in', found \(describe(current))") }
        let iterable = try parseTuple(withConditional: false, endNames: ["recursive"])
        var filter: TemplateExpression?
        if skipName("if") { filter = try parseExpression() }
        if isName("recursive") { throw ChatTemplateError.unsupported("recursive for loops", map.location(current.offset)) }
        try expectBlockEnd()
        loopDepth += 1
        let (body, end) = try parseBody(until: ["endfor", "else"])
        loopDepth -= 1
        var otherwise: [TemplateStatement] = []
        if end == "else" {
            try expectBlockEnd()
            otherwise = try parseBody(until: ["endfor"]).0
        }
        try expectBlockEnd()
        return .forLoop(ForLoop(target: target, iterable: iterable, filter: filter, body: body, otherwise: otherwise, at: at))
    }

    private mutating func parseSet(at: Int) throws -> TemplateStatement {
        let target = try parseAssignTarget(allowNamespace: true, endName: nil)
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .assign(target, value, at: at)
        }
        guard case .name(let name) = target else { throw fail("expected '=' after the assignment target") }
        if isOp("|") { throw ChatTemplateError.unsupported("filtered block assignments ('{% set x | filter %}')", map.location(current.offset)) }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectBlockEnd()
        return .assignBlock(name, body)
    }

    private mutating func parseMacro(at: Int) throws -> TemplateStatement {
        let name = try expectName()
        try expectOp("(")
        var parameters: [(name: String, defaultValue: TemplateExpression?)] = []
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let p = try expectName()
            var d: TemplateExpression?
            if skipOp("=") { d = try parseExpression() } else if parameters.last?.defaultValue != nil {
                throw fail("non-default argument follows default argument")
            }
            parameters.append((p, d))
        }
        try expectOp(")")
        try expectBlockEnd()
        let outer = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody(until: ["endmacro"])
        loopDepth = outer
        try expectBlockEnd()
        return .macro(MacroDefinition(name: name, parameters: parameters, body: body, at: at))
    }

    /// `x`, `a, b`, `(a, b)` and, for `set`, `ns.attr`.
    private mutating func parseAssignTarget(allowNamespace: Bool, endName: String?) throws -> AssignTarget {
        if allowNamespace, case .name(let ns) = current.kind, isOp(".", next) {
            advance(); advance()
            return .namespaceAttribute(ns, try expectName())
        }
        var items: [AssignTarget] = []
        var isTuple = false
        while true {
            if !items.isEmpty {
                guard skipOp(",") else { break }
                isTuple = true
                if let e = endName, isName(e) { break }
                if isOp("=") || current.kind == .blockEnd { break }
            }
            if skipOp("(") {
                let inner = try parseAssignTarget(allowNamespace: false, endName: nil)
                try expectOp(")")
                items.append(inner)
            } else {
                let at = current.offset
                let n = try expectName()
                if ["true", "false", "none", "True", "False", "None"].contains(n) { throw fail("cannot assign to '\(n)'", at) }
                items.append(.name(n))
            }
        }
        return isTuple || items.count > 1 ? .tuple(items) : items[0]
    }

    // MARK: expressions

    /// Jinja's `parse_tuple`: an expression, or several separated by commas (a tuple).
    private mutating func parseTuple(withConditional: Bool = true, endNames: Set<String> = [], explicitParens: Bool = false) throws -> TemplateExpression {
        var items: [TemplateExpression] = []
        var isTuple = false
        let at = current.offset
        while true {
            if !items.isEmpty { try expectOp(",") }
            if current.kind == .variableEnd || current.kind == .blockEnd || isOp(")") { break }
            if case .name(let n) = current.kind, endNames.contains(n) { break }
            items.append(withConditional ? try parseExpression() : try parseOr())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParens { throw fail("expected an expression, found \(describe(current))", at) }
        }
        return .tuple(items)
    }

    private mutating func parseExpression() throws -> TemplateExpression {
        var e = try parseOr()
        while skipName("if") {
            let condition = try parseOr()
            let otherwise: TemplateExpression? = skipName("else") ? try parseExpression() : nil
            e = .conditional(then: e, condition: condition, otherwise: otherwise)
        }
        return e
    }

    private mutating func parseOr() throws -> TemplateExpression {
        var e = try parseAnd()
        while skipName("or") { e = .or(e, try parseAnd()) }
        return e
    }

    private mutating func parseAnd() throws -> TemplateExpression {
        var e = try parseNot()
        while skipName("and") { e = .and(e, try parseNot()) }
        return e
    }

    private mutating func parseNot() throws -> TemplateExpression {
        try enter()
        defer { depth -= 1 }
        if skipName("not") { return .not(try parseNot()) }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> TemplateExpression {
        let at = current.offset
        let first = try parseMath1()
        var ops: [(op: CompareOperator, rhs: TemplateExpression)] = []
        while true {
            if case .op(let o) = current.kind, let op = CompareOperator(rawValue: o), op != .contains, op != .notContains {
                advance()
                ops.append((op, try parseMath1()))
            } else if skipName("in") {
                ops.append((.contains, try parseMath1()))
            } else if isName("not") && isName("in", next) {
                advance(); advance()
                ops.append((.notContains, try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, at: at)
    }

    private mutating func parseMath1() throws -> TemplateExpression {
        var e = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let at = current.offset
            advance()
            e = .binary(BinaryOperator(rawValue: o)!, e, try parseConcat(), at: at)
        }
        return e
    }

    private mutating func parseConcat() throws -> TemplateExpression {
        var parts = [try parseMath2()]
        while skipOp("~") { parts.append(try parseMath2()) }
        return parts.count == 1 ? parts[0] : .concat(parts)
    }

    private mutating func parseMath2() throws -> TemplateExpression {
        var e = try parsePower()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let at = current.offset
            advance()
            e = .binary(BinaryOperator(rawValue: o)!, e, try parsePower(), at: at)
        }
        return e
    }

    private mutating func parsePower() throws -> TemplateExpression {
        var e = try parseUnary()
        while isOp("**") {
            let at = current.offset
            advance()
            e = .binary(.power, e, try parseUnary(), at: at)
        }
        return e
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> TemplateExpression {
        try enter()
        defer { depth -= 1 }
        let at = current.offset
        var e: TemplateExpression
        if skipOp("-") {
            e = .negate(try parseUnary(withFilter: false), at: at)
        } else if skipOp("+") {
            e = try parseUnary(withFilter: false)
        } else {
            e = try parsePrimary()
        }
        e = try parsePostfix(e)
        if withFilter { e = try parseFilterAndTest(e) }
        return e
    }

    private mutating func parsePrimary() throws -> TemplateExpression {
        let at = current.offset
        switch current.kind {
        case .name(let n):
            advance()
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, at: at)
            }
        case .string(var s):
            advance()
            while case .string(let more) = current.kind { s += more; advance() }
            return .literal(.string(s))
        case .integer(let v):
            advance()
            return .literal(.int(v))
        case .float(let v):
            advance()
            return .literal(.double(v))
        case .op("("):
            advance()
            let e = try parseTuple(explicitParens: true)
            try expectOp(")")
            return e
        case .op("["):
            advance()
            var items: [TemplateExpression] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            advance()
            var items: [(key: TemplateExpression, value: TemplateExpression)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let k = try parseExpression()
                try expectOp(":")
                items.append((k, try parseExpression()))
            }
            try expectOp("}")
            return .dict(items, at: at)
        default:
            throw fail("unexpected \(describe(current))")
        }
    }

    private mutating func parsePostfix(_ base: TemplateExpression) throws -> TemplateExpression {
        var e = base
        while true {
            if isOp(".") || isOp("[") {
                e = try parseSubscript(e)
            } else if isOp("(") {
                e = try parseCall(e)
            } else {
                return e
            }
        }
    }

    private mutating func parseFilterAndTest(_ base: TemplateExpression) throws -> TemplateExpression {
        var e = base
        while true {
            if isOp("|") {
                let at = current.offset
                advance()
                let name = try expectName()
                let args = isOp("(") ? try parseArguments() : TemplateArguments()
                e = .filter(e, name, args, at: at)
            } else if isName("is") {
                let at = current.offset
                advance()
                let negated = skipName("not")
                let name = try expectName()
                var args = TemplateArguments()
                if isOp("(") {
                    args = try parseArguments()
                } else if startsBareTestArgument() {
                    if isName("is") { throw fail("you cannot chain multiple tests with 'is'") }
                    args.positional = [try parsePostfix(try parsePrimary())]
                }
                e = .test(e, name, args, negated: negated, at: at)
            } else if isOp("(") {
                e = try parseCall(e)
            } else {
                return e
            }
        }
    }

    /// Jinja lets a test take one argument without parentheses: `x is sameas false`, `x is divisibleby 3`.
    private func startsBareTestArgument() -> Bool {
        switch current.kind {
        case .name(let n): return !["else", "or", "and"].contains(n)
        case .string, .integer, .float: return true
        case .op("["), .op("{"): return true
        default: return false
        }
    }

    private mutating func parseSubscript(_ base: TemplateExpression) throws -> TemplateExpression {
        let at = current.offset
        if skipOp(".") {
            switch current.kind {
            case .name(let n):
                advance()
                return .attribute(base, n, at: at)
            case .integer(let v):
                advance()
                return .item(base, .literal(.int(v)), at: at)
            default:
                throw fail("expected a name or number after '.', found \(describe(current))")
            }
        }
        try expectOp("[")
        var args: [TemplateExpression] = []
        while !isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            if isOp("]") { break }
            args.append(try parseSubscribed())
        }
        try expectOp("]")
        guard args.count == 1 else {
            if args.isEmpty { throw fail("expected a subscript", at) }
            throw ChatTemplateError.unsupported("tuple subscripts", map.location(at))
        }
        return .item(base, args[0], at: at)
    }

    private mutating func parseSubscribed() throws -> TemplateExpression {
        var start: TemplateExpression?
        if !isOp(":") {
            let e = try parseExpression()
            guard isOp(":") else { return e }
            start = e
        }
        try expectOp(":")
        var stop: TemplateExpression?
        var step: TemplateExpression?
        if !isOp("]") && !isOp(",") && !isOp(":") { stop = try parseExpression() }
        if skipOp(":") && !isOp("]") && !isOp(",") { step = try parseExpression() }
        return .slice(start: start, stop: stop, step: step)
    }

    private mutating func parseCall(_ callee: TemplateExpression) throws -> TemplateExpression {
        let at = current.offset
        return .call(callee, try parseArguments(), at: at)
    }

    private mutating func parseArguments() throws -> TemplateArguments {
        try expectOp("(")
        var args = TemplateArguments()
        var first = true
        while !isOp(")") {
            if !first { try expectOp(",") }
            first = false
            if isOp(")") { break }
            if isOp("*") || isOp("**") { throw ChatTemplateError.unsupported("'*args' and '**kwargs' in calls", map.location(current.offset)) }
            if case .name(let n) = current.kind, isOp("=", next) {
                advance(); advance()
                args.keyword.append((n, try parseExpression()))
            } else {
                if !args.keyword.isEmpty { throw fail("positional argument after keyword argument") }
                args.positional.append(try parseExpression())
            }
        }
        try expectOp(")")
        return args
    }
}
