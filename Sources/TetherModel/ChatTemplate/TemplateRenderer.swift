import Foundation

/// Executes a parsed template: statements write text, expressions evaluate with Python's
/// semantics (`RuntimeValue`). Filters, tests, methods and global functions live in
/// TemplateBuiltins.swift.
struct TemplateRenderer {
    let map: SourceMap
    let budget = RenderBudget()

    /// Bounds what a template can make one render do, so a hostile one fails with an error instead
    /// of overflowing the stack (Python stops runaway recursion with `RecursionError`).
    final class RenderBudget {
        var macroDepth = 0
        static let maxMacroDepth = 100
    }

    enum Flow { case normal, breakLoop, continueLoop }

    func location(_ offset: Int) -> TemplateLocation { map.location(offset) }

    // MARK: statements

    func execute(_ body: [TemplateStatement], _ scope: TemplateScope, _ out: inout String) throws -> Flow {
        for statement in body {
            switch statement {
            case .text(let t):
                out += t
            case .output(let e):
                out += try evaluate(e, scope).str
            case .conditional(let branches, let otherwise):
                var taken: [TemplateStatement] = otherwise
                for branch in branches where try evaluate(branch.condition, scope).truthy {
                    taken = branch.body
                    break
                }
                let flow = try execute(taken, scope, &out)
                if flow != .normal { return flow }
            case .forLoop(let loop):
                let flow = try executeLoop(loop, scope, &out)
                if flow != .normal { return flow }
            case .assign(let target, let e, let at):
                try assign(target, try evaluate(e, scope), scope, at: at)
            case .assignBlock(let name, let inner):
                var captured = ""
                _ = try execute(inner, TemplateScope(parent: scope), &captured)
                scope.variables[name] = .string(captured)
            case .macro(let definition):
                scope.variables[definition.name] = .macro(MacroObject(definition: definition, scope: scope))
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    /// `{% for target in iterable if filter %}`: each iteration gets a fresh scope over the
    /// enclosing one, with `loop`; `loop.length` counts the items that pass the filter.
    private func executeLoop(_ loop: ForLoop, _ scope: TemplateScope, _ out: inout String) throws -> Flow {
        var items = try iterate(try evaluate(loop.iterable, scope), at: loop.at)
        if let filter = loop.filter {
            items = try items.filter { item in
                let s = TemplateScope(parent: scope)
                try assign(loop.target, item, s, at: loop.at)
                return try evaluate(filter, s).truthy
            }
        }
        if items.isEmpty { return try execute(loop.otherwise, TemplateScope(parent: scope), &out) }
        let state = LoopObject(items: items)
        for (i, item) in items.enumerated() {
            state.index0 = i
            let s = TemplateScope(["loop": .loop(state)], parent: scope)
            try assign(loop.target, item, s, at: loop.at)
            if try execute(loop.body, s, &out) == .breakLoop { break }
        }
        return .normal
    }

    private func assign(_ target: AssignTarget, _ value: RuntimeValue, _ scope: TemplateScope, at: Int) throws {
        switch target {
        case .name(let n):
            scope.variables[n] = value
        case .tuple(let targets):
            let items = try iterate(value, at: at)
            guard items.count == targets.count else {
                throw ChatTemplateError.invalidOperation(
                    items.count > targets.count ? "too many values to unpack (expected \(targets.count))"
                        : "not enough values to unpack (expected \(targets.count), got \(items.count))", location(at))
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope, at: at) }
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let ns) = scope.lookup(name) ?? .undefined("") else {
                throw ChatTemplateError.invalidOperation("cannot assign attribute on non-namespace object '\(name)'", location(at))
            }
            guard !attribute.hasPrefix("_") else {
                throw ChatTemplateError.invalidOperation("chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(attribute)'", location(at))
            }
            ns.attributes[attribute] = value
        }
    }

    /// Python's `iter(x)` as a template sees it: lists, dict keys, string characters; an undefined
    /// value iterates as empty (Jinja's default `Undefined`).
    func iterate(_ value: RuntimeValue, at: Int) throws -> [RuntimeValue] {
        switch value {
        case .list(let l), .tuple(let l): return l
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw ChatTemplateError.invalidOperation("'\(value.typeName)' object is not iterable", location(at))
        }
    }

    // MARK: expressions

    func evaluate(_ e: TemplateExpression, _ scope: TemplateScope) throws -> RuntimeValue {
        switch e {
        case .literal(let v):
            return v
        case .name(let n, _):
            if let v = scope.lookup(n) { return v }
            if let f = GlobalFunction(rawValue: n) { return .function(f) }
            return .undefined("'\(n)' is undefined")
        case .list(let items):
            return .list(try items.map { try evaluate($0, scope) })
        case .tuple(let items):
            return .tuple(try items.map { try evaluate($0, scope) })
        case .dict(let items, let at):
            var d = OrderedDictionary<RuntimeValue>()
            for item in items {
                guard case .string(let k) = try evaluate(item.key, scope) else {
                    throw ChatTemplateError.unsupported("a dictionary key that is not a string", location(at))
                }
                d[k] = try evaluate(item.value, scope)
            }
            return .dict(d)
        case .attribute(let base, let name, let at):
            return try attribute(try evaluate(base, scope), name, at: at)
        case .item(let base, let index, let at):
            let b = try evaluate(base, scope)
            if case .slice(let start, let stop, let step) = index {
                return try slice(b, try start.map { try evaluate($0, scope) }, try stop.map { try evaluate($0, scope) },
                                 try step.map { try evaluate($0, scope) }, at: at)
            }
            return try item(b, try evaluate(index, scope), at: at)
        case .slice:
            preconditionFailure("the parser only places slices inside subscripts")
        case .call(let callee, let args, let at):
            return try call(callee, args, scope, at: at)
        case .filter(let base, let name, let args, let at):
            return try applyFilter(name, try evaluate(base, scope), try evaluateArguments(args, scope), scope, at: at)
        case .test(let base, let name, let args, let negated, let at):
            let result = try applyTest(name, try evaluate(base, scope), try evaluateArguments(args, scope).positional, at: at)
            return .bool(result != negated)
        case .not(let inner):
            return .bool(!(try evaluate(inner, scope).truthy))
        case .negate(let inner, let at):
            let v = try evaluate(inner, scope)
            switch v {
            case .int(let i):
                guard i != .min else { throw overflow(at) }
                return .int(-i)
            case .bool(let b): return .int(b ? -1 : 0)
            case .double(let d): return .double(-d)
            default: throw try operandError("bad operand type for unary -: '\(v.typeName)'", v, at: at)
            }
        case .and(let a, let b):
            let l = try evaluate(a, scope)
            return l.truthy ? try evaluate(b, scope) : l
        case .or(let a, let b):
            let l = try evaluate(a, scope)
            return l.truthy ? l : try evaluate(b, scope)
        case .binary(let op, let a, let b, let at):
            return try arithmetic(op, try evaluate(a, scope), try evaluate(b, scope), at: at)
        case .concat(let parts):
            return .string(try parts.map { try evaluate($0, scope).str }.joined())
        case .compare(let first, let ops, let at):
            var left = try evaluate(first, scope)
            for (op, rhs) in ops {
                let right = try evaluate(rhs, scope)
                guard try compare(op, left, right, at: at) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let then, let condition, let otherwise):
            if try evaluate(condition, scope).truthy { return try evaluate(then, scope) }
            return try otherwise.map { try evaluate($0, scope) }
                ?? .undefined("the inline if-expression evaluated to false and no else section was defined")
        }
    }

    struct EvaluatedArguments {
        var positional: [RuntimeValue] = []
        var keyword: [(name: String, value: RuntimeValue)] = []
    }

    func evaluateArguments(_ args: TemplateArguments, _ scope: TemplateScope) throws -> EvaluatedArguments {
        EvaluatedArguments(positional: try args.positional.map { try evaluate($0, scope) },
                           keyword: try args.keyword.map { ($0.name, try evaluate($0.value, scope)) })
    }

    /// Using an undefined value where Jinja raises `UndefinedError`.
    func undefinedError(_ v: RuntimeValue, at: Int) -> ChatTemplateError? {
        if case .undefined(let why) = v { return .undefined(why, location(at)) }
        return nil
    }

    /// The undefined error if `v` is undefined, else a Python `TypeError` with `message`.
    func operandError(_ message: String, _ values: RuntimeValue..., at: Int) throws -> ChatTemplateError {
        for v in values { if let e = undefinedError(v, at: at) { return e } }
        return .invalidOperation(message, location(at))
    }

    func overflow(_ at: Int) -> ChatTemplateError {
        .invalidOperation("integer overflow (Python integers are unbounded; Tether's are 64-bit)", location(at))
    }

    /// `x.name`: Jinja's `getattr`, which falls back to `x['name']` for dictionaries. A missing
    /// attribute is undefined, but any attribute of an undefined value is an error.
    func attribute(_ base: RuntimeValue, _ name: String, at: Int) throws -> RuntimeValue {
        switch base {
        case .undefined(let why): throw ChatTemplateError.undefined(why, location(at))
        case .dict(let d): return d[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        case .namespace(let ns): return ns.attributes[name] ?? .undefined("'Namespace object' has no attribute '\(name)'")
        case .loop(let l): return l.attribute(name) ?? .undefined("'LoopContext object' has no attribute '\(name)'")
        default: return .undefined("'\(base.typeName) object' has no attribute '\(name)'")
        }
    }

    /// `x[key]`: Python's indexing (negative list indices count from the end); a missing key or
    /// index is undefined.
    func item(_ base: RuntimeValue, _ key: RuntimeValue, at: Int) throws -> RuntimeValue {
        switch (base, key) {
        case (.undefined(let why), _): throw ChatTemplateError.undefined(why, location(at))
        case (.list(let l), _) where key.integer != nil, (.tuple(let l), _) where key.integer != nil:
            let i = key.integer!
            let j = i < 0 ? l.count + i : i
            return l.indices.contains(j) ? l[j] : .undefined("list object has no element \(i)")
        case (.string(let s), _) where key.integer != nil:
            let scalars = Array(s.unicodeScalars)
            let i = key.integer!
            let j = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(j) ? .string(String(scalars[j])) : .undefined("str object has no element \(i)")
        case (.dict(let d), .string(let k)):
            return d[k] ?? .undefined("'dict object' has no attribute '\(k)'")
        case (.namespace, .string(let k)), (.loop, .string(let k)):
            return try attribute(base, k, at: at)
        default:
            return .undefined("'\(base.typeName) object' has no element \(key.repr)")
        }
    }

    /// Python's `seq[start:stop:step]` on lists and strings.
    func slice(_ base: RuntimeValue, _ start: RuntimeValue?, _ stop: RuntimeValue?, _ step: RuntimeValue?, at: Int) throws -> RuntimeValue {
        func bound(_ v: RuntimeValue?) throws -> Int? {
            switch v {
            case nil, .none?, .undefined?: return nil
            case let v?:
                guard let i = v.integer else { throw ChatTemplateError.invalidOperation("slice indices must be integers or None", location(at)) }
                return i
            }
        }
        let st = try bound(step) ?? 1
        guard st != 0 else { throw ChatTemplateError.invalidOperation("slice step cannot be zero", location(at)) }
        func indices(_ n: Int) throws -> [Int] {
            func clamp(_ v: Int?, _ dflt: Int) -> Int {
                guard let v else { return dflt }
                let x = v < 0 ? v + n : v
                return st > 0 ? min(max(x, 0), n) : min(max(x, -1), n - 1)
            }
            let a = clamp(try bound(start), st > 0 ? 0 : n - 1)
            let b = clamp(try bound(stop), st > 0 ? n : -1)
            return Array(stride(from: a, to: b, by: st))
        }
        switch base {
        case .list(let l): return .list(try indices(l.count).map { l[$0] })
        case .tuple(let l): return .tuple(try indices(l.count).map { l[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try indices(scalars.count) { out.append(scalars[i]) }
            return .string(String(out))
        case .undefined(let why): throw ChatTemplateError.undefined(why, location(at))
        default: throw ChatTemplateError.invalidOperation("'\(base.typeName)' object is not subscriptable", location(at))
        }
    }

    /// Python's `in`: substring, list membership, dictionary key.
    func contains(_ container: RuntimeValue, _ element: RuntimeValue, at: Int) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = element else {
                throw try operandError("'in <string>' requires string as left operand, not \(element.typeName)", element, at: at)
            }
            return sub.isEmpty || s.unicodeScalars.firstRange(of: sub.unicodeScalars) != nil
        case .list(let l), .tuple(let l): return l.contains { $0.equals(element) }
        case .dict(let d):
            if case .string(let k) = element { return d[k] != nil }
            return false
        case .undefined: return false
        default: throw ChatTemplateError.invalidOperation("argument of type '\(container.typeName)' is not iterable", location(at))
        }
    }

    func compare(_ op: CompareOperator, _ a: RuntimeValue, _ b: RuntimeValue, at: Int) throws -> Bool {
        switch op {
        case .equal: return a.equals(b)
        case .notEqual: return !a.equals(b)
        case .contains: return try contains(b, a, at: at)
        case .notContains: return !(try contains(b, a, at: at))
        case .less, .lessEqual, .greater, .greaterEqual:
            guard let order = a.compare(b) else {
                throw try operandError("'\(op.rawValue)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'", a, b, at: at)
            }
            switch op {
            case .less: return order == .orderedAscending
            case .lessEqual: return order != .orderedDescending
            case .greater: return order == .orderedDescending
            default: return order != .orderedAscending
            }
        }
    }

    /// Python's arithmetic: int (bool counts as int) stays int, mixing in a float gives float,
    /// `str + str` and `list + list` concatenate, `str * int` repeats.
    func arithmetic(_ op: BinaryOperator, _ a: RuntimeValue, _ b: RuntimeValue, at: Int) throws -> RuntimeValue {
        let unsupported = { try self.operandError("unsupported operand type(s) for \(op.rawValue): '\(a.typeName)' and '\(b.typeName)'", a, b, at: at) }
        if let x = a.integer, let y = b.integer {
            switch op {
            case .add: let (r, o) = x.addingReportingOverflow(y); if o { throw overflow(at) }; return .int(r)
            case .subtract: let (r, o) = x.subtractingReportingOverflow(y); if o { throw overflow(at) }; return .int(r)
            case .multiply: let (r, o) = x.multipliedReportingOverflow(by: y); if o { throw overflow(at) }; return .int(r)
            case .divide:
                guard y != 0 else { throw ChatTemplateError.invalidOperation("division by zero", location(at)) }
                return .double(Double(x) / Double(y))
            case .floorDivide, .modulo:
                guard y != 0 else { throw ChatTemplateError.invalidOperation("integer division or modulo by zero", location(at)) }
                guard !(x == .min && y == -1) else { throw overflow(at) }
                var q = x / y, r = x % y
                if r != 0 && ((r < 0) != (y < 0)) { q -= 1; r += y }
                return .int(op == .floorDivide ? q : r)
            case .power:
                if y < 0 { return .double(Foundation.pow(Double(x), Double(y))) }
                var result = 1, base = x, e = y
                while e > 0 {
                    if e & 1 == 1 { let (r, o) = result.multipliedReportingOverflow(by: base); if o { throw overflow(at) }; result = r }
                    e >>= 1
                    if e > 0 { let (r, o) = base.multipliedReportingOverflow(by: base); if o { throw overflow(at) }; base = r }
                }
                return .int(result)
            }
        }
        if let x = a.number, let y = b.number {
            switch op {
            case .add: return .double(x + y)
            case .subtract: return .double(x - y)
            case .multiply: return .double(x * y)
            case .divide, .floorDivide, .modulo:
                guard y != 0 else { throw ChatTemplateError.invalidOperation("float division by zero", location(at)) }
                if op == .divide { return .double(x / y) }
                let q = (x / y).rounded(.down)
                return .double(op == .floorDivide ? q : x - y * q)
            case .power: return .double(Foundation.pow(x, y))
            }
        }
        switch (op, a, b) {
        case (.add, .string(let x), .string(let y)): return .string(x + y)
        case (.add, .list(let x), .list(let y)): return .list(x + y)
        case (.add, .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case (.add, .string, _):
            throw try operandError("can only concatenate str (not \"\(b.typeName)\") to str", b, at: at)
        case (.add, .list, _):
            throw try operandError("can only concatenate list (not \"\(b.typeName)\") to list", b, at: at)
        case (.multiply, .string(let s), _) where b.integer != nil: return .string(try repeated(s, b.integer!, at: at))
        case (.multiply, _, .string(let s)) where a.integer != nil: return .string(try repeated(s, a.integer!, at: at))
        case (.multiply, .list(let l), _) where b.integer != nil:
            guard l.count * max(b.integer!, 0) <= 10_000_000 else { throw ChatTemplateError.invalidOperation("list repetition too large", location(at)) }
            return .list(Array([[RuntimeValue]](repeating: l, count: max(b.integer!, 0)).joined()))
        case (.modulo, .string, _):
            throw ChatTemplateError.unsupported("printf-style string formatting ('%')", location(at))
        default:
            throw try unsupported()
        }
    }

    private func repeated(_ s: String, _ n: Int, at: Int) throws -> String {
        guard n > 0 else { return "" }
        guard s.utf8.count.multipliedReportingOverflow(by: n).partialValue <= 100_000_000, s.utf8.count <= 100_000_000 / n else {
            throw ChatTemplateError.invalidOperation("string repetition larger than 100 MB", location(at))
        }
        return String(repeating: s, count: n)
    }
}
