import Foundation

/// Jinja's filters and tests, the Python `str`/`dict` methods templates call, and the globals of
/// transformers' chat-template environment (`raise_exception`, `namespace`, `strftime_now`, `dict`,
/// plus Jinja's `range`). Anything else is `ChatTemplateError.unsupported`, naming it.
extension TemplateRenderer {
    // MARK: calls

    func call(_ callee: TemplateExpression, _ args: TemplateArguments, _ scope: TemplateScope, at: Int) throws -> RuntimeValue {
        if case .attribute(let objectExpression, let name, _) = callee {
            let object = try evaluate(objectExpression, scope)
            if let e = undefinedError(object, at: at) { throw e }
            let evaluated = try evaluateArguments(args, scope)
            if let result = try method(object, name, evaluated, at: at) { return result }
            let attr = try attribute(object, name, at: at)
            if case .undefined = attr {
                throw ChatTemplateError.unsupported("the method '\(name)' of \(object.typeName) objects", location(at))
            }
            return try invoke(attr, evaluated, at: at)
        }
        let f = try evaluate(callee, scope)
        if case .name(let n, _) = callee, case .undefined = f, ["lipsum", "cycler", "joiner"].contains(n) {
            throw ChatTemplateError.unsupported("the global function '\(n)'", location(at))
        }
        return try invoke(f, try evaluateArguments(args, scope), at: at)
    }

    private func invoke(_ f: RuntimeValue, _ args: EvaluatedArguments, at: Int) throws -> RuntimeValue {
        switch f {
        case .macro(let m): return try callMacro(m, args, at: at)
        case .function(let g): return try callGlobal(g, args, at: at)
        case .undefined(let why): throw ChatTemplateError.undefined(why, location(at))
        default: throw ChatTemplateError.invalidOperation("'\(f.typeName)' object is not callable", location(at))
        }
    }

    private func callMacro(_ m: MacroObject, _ args: EvaluatedArguments, at: Int) throws -> RuntimeValue {
        let d = m.definition
        budget.macroDepth += 1
        defer { budget.macroDepth -= 1 }
        guard budget.macroDepth <= RenderBudget.maxMacroDepth else {
            throw ChatTemplateError.invalidOperation("macro '\(d.name)' recursed more than \(RenderBudget.maxMacroDepth) calls deep", location(at))
        }
        guard args.positional.count <= d.parameters.count else {
            throw ChatTemplateError.invalidOperation("macro '\(d.name)' takes not more than \(d.parameters.count) argument(s)", location(at))
        }
        let scope = TemplateScope(parent: m.scope)
        for (p, v) in zip(d.parameters, args.positional) { scope.variables[p.name] = v }
        for (name, v) in args.keyword {
            guard let index = d.parameters.firstIndex(where: { $0.name == name }) else {
                throw ChatTemplateError.invalidOperation("macro '\(d.name)' takes no keyword argument '\(name)'", location(at))
            }
            guard index >= args.positional.count else {
                throw ChatTemplateError.invalidOperation("macro '\(d.name)' got multiple values for argument '\(name)'", location(at))
            }
            scope.variables[name] = v
        }
        for p in d.parameters where scope.variables[p.name] == nil {
            scope.variables[p.name] = try p.defaultValue.map { try evaluate($0, scope) }
                ?? .undefined("parameter '\(p.name)' was not provided")
        }
        var out = ""
        _ = try execute(d.body, scope, &out)
        return .string(out)
    }

    private func callGlobal(_ g: GlobalFunction, _ args: EvaluatedArguments, at: Int) throws -> RuntimeValue {
        switch g {
        case .raiseException:
            throw ChatTemplateError.raised(args.positional.first?.str ?? "", location(at))
        case .namespace, .dict:
            var attributes = OrderedDictionary<RuntimeValue>()
            for p in args.positional {
                guard case .dict(let d) = p else {
                    throw ChatTemplateError.invalidOperation("\(g.rawValue)() takes a mapping and keyword arguments, got '\(p.typeName)'", location(at))
                }
                for (k, v) in d.entries { attributes[k] = v }
            }
            for (k, v) in args.keyword { attributes[k] = v }
            if g == .dict { return .dict(attributes) }
            if let bad = attributes.keys.first(where: { $0.hasPrefix("_") }) {
                throw ChatTemplateError.invalidOperation("chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(bad)'", location(at))
            }
            return .namespace(NamespaceObject(attributes))
        case .range:
            let ints = try args.positional.map { v -> Int in
                guard let i = v.integer else { throw ChatTemplateError.invalidOperation("'\(v.typeName)' object cannot be interpreted as an integer", location(at)) }
                return i
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw ChatTemplateError.invalidOperation("range expected 1 to 3 arguments, got \(ints.count)", location(at))
            }
            guard step != 0 else { throw ChatTemplateError.invalidOperation("range() arg 3 must not be zero", location(at)) }
            let count = step > 0 ? (stop > start ? (stop - start - 1) / step + 1 : 0) : (start > stop ? (start - stop - 1) / -step + 1 : 0)
            guard count <= 100_000 else {
                throw ChatTemplateError.invalidOperation("range too big: the sandbox blocks ranges larger than 100000", location(at))
            }
            return .list(stride(from: start, to: stop, by: step).map { .int($0) })
        case .strftimeNow:
            guard case .string(let format)? = args.positional.first else {
                throw ChatTemplateError.invalidOperation("strftime_now() takes a format string", location(at))
            }
            return .string(strftimeNow(format))
        }
    }

    /// `datetime.now().strftime(format)`: the local time through the C library's `strftime`, which
    /// CPython also uses for these directives.
    private func strftimeNow(_ format: String) -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 512)
        let n = strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: methods

    /// Python methods of `str` and `dict`, and `loop.cycle`; nil when the object has no such method.
    func method(_ object: RuntimeValue, _ name: String, _ args: EvaluatedArguments, at: Int) throws -> RuntimeValue? {
        let p = args.positional
        func argString(_ i: Int) throws -> String? {
            guard i < p.count else { return nil }
            if case .none = p[i] { return nil }
            guard case .string(let s) = p[i] else {
                throw ChatTemplateError.invalidOperation("\(name)() argument must be str, not \(p[i].typeName)", location(at))
            }
            return s
        }
        switch object {
        case .string(let s):
            switch name {
            case "strip": return .string(pythonStrip(s, chars: try argString(0), leading: true, trailing: true))
            case "lstrip": return .string(pythonStrip(s, chars: try argString(0), leading: true, trailing: false))
            case "rstrip": return .string(pythonStrip(s, chars: try argString(0), leading: false, trailing: true))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(pythonTitle(s))
            case "capitalize": return .string(pythonCapitalize(s))
            case "startswith", "endswith":
                guard let first = p.first else { throw ChatTemplateError.invalidOperation("\(name)() takes at least 1 argument", location(at)) }
                let candidates: [RuntimeValue]
                if case .tuple(let l) = first { candidates = l } else { candidates = [first] }
                for c in candidates {
                    guard case .string(let affix) = c else {
                        throw ChatTemplateError.invalidOperation("\(name) first arg must be str or a tuple of str, not \(c.typeName)", location(at))
                    }
                    let hit = name == "startswith" ? s.unicodeScalars.starts(with: affix.unicodeScalars)
                        : s.unicodeScalars.reversed().starts(with: affix.unicodeScalars.reversed())
                    if hit { return .bool(true) }
                }
                return .bool(false)
            case "split", "rsplit":
                let maxsplit = p.count > 1 ? (p[1].integer ?? -1) : (args.keyword.first { $0.name == "maxsplit" }?.value.integer ?? -1)
                let sep = try argString(0) ?? (args.keyword.first { $0.name == "sep" }?.value).flatMap { if case .string(let x) = $0 { return x } else { return nil } }
                if sep == "" { throw ChatTemplateError.invalidOperation("empty separator", location(at)) }
                if name == "rsplit" && maxsplit >= 0 {
                    let parts = pythonSplit(String(String.UnicodeScalarView(s.unicodeScalars.reversed())),
                                            sep: sep.map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }, maxsplit: maxsplit)
                    return .list(parts.reversed().map { .string(String(String.UnicodeScalarView($0.unicodeScalars.reversed()))) })
                }
                return .list(pythonSplit(s, sep: sep, maxsplit: maxsplit).map { .string($0) })
            case "splitlines": return .list(pythonSplitLines(s).map { .string($0) })
            case "replace":
                guard let old = try argString(0), let new = try argString(1) else {
                    throw ChatTemplateError.invalidOperation("replace() takes two string arguments", location(at))
                }
                return .string(pythonReplace(s, old, new, count: p.count > 2 ? (p[2].integer ?? -1) : -1))
            case "find", "count", "index":
                guard let sub = try argString(0) else { throw ChatTemplateError.invalidOperation("\(name)() takes a string argument", location(at)) }
                let hay = Array(s.unicodeScalars), needle = Array(sub.unicodeScalars)
                var positions: [Int] = []
                var i = 0
                while i + needle.count <= hay.count {
                    if hay[i..<i + needle.count].elementsEqual(needle) {
                        positions.append(i)
                        if name != "count" { break }
                        i += max(needle.count, 1)
                    } else {
                        i += 1
                    }
                }
                if name == "count" { return .int(positions.count) }
                if name == "index" && positions.isEmpty { throw ChatTemplateError.invalidOperation("substring not found", location(at)) }
                return .int(positions.first ?? -1)
            case "join":
                guard let items = p.first else { throw ChatTemplateError.invalidOperation("join() takes exactly one argument", location(at)) }
                return .string(try iterate(items, at: at).map { v -> String in
                    guard case .string(let x) = v else {
                        throw ChatTemplateError.invalidOperation("sequence item: expected str instance, \(v.typeName) found", location(at))
                    }
                    return x
                }.joined(separator: s))
            case "isdigit": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
            case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPythonWhitespace))
            case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
            case "format", "format_map": throw ChatTemplateError.unsupported("str.\(name)()", location(at))
            default: return nil
            }
        case .dict(let d):
            switch name {
            case "get":
                guard case .string(let k)? = p.first else { return p.count > 1 ? p[1] : .none }
                return d[k] ?? (p.count > 1 ? p[1] : .none)
            case "items": return .list(d.entries.map { .tuple([.string($0.key), $0.value]) })
            case "keys": return .list(d.keys.map { .string($0) })
            case "values": return .list(d.entries.map(\.value))
            default: return nil
            }
        case .loop(let l) where name == "cycle":
            guard !p.isEmpty else { throw ChatTemplateError.invalidOperation("no items for cycling given", location(at)) }
            return p[l.index0 % p.count]
        default:
            return nil
        }
    }

    // MARK: filters

    func applyFilter(_ name: String, _ value: RuntimeValue, _ args: EvaluatedArguments, _ scope: TemplateScope, at: Int) throws -> RuntimeValue {
        func arg(_ index: Int, _ key: String) -> RuntimeValue? {
            if index < args.positional.count { return args.positional[index] }
            return args.keyword.first { $0.name == key }?.value
        }
        func string(_ v: RuntimeValue?) -> String? { if case .string(let s)? = v { return s } else { return nil } }
        func bool(_ v: RuntimeValue?) -> Bool { v?.truthy ?? false }

        switch name {
        case "trim":
            return .string(pythonStrip(value.str, chars: string(arg(0, "chars")), leading: true, trailing: true))
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let l), .tuple(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw ChatTemplateError.invalidOperation("object of type '\(value.typeName)' has no len()", location(at))
            }
        case "tojson":
            var indent: String?
            switch arg(1, "indent") {
            case .int(let n)?: indent = String(repeating: " ", count: max(n, 0))
            case .string(let s)?: indent = s
            default: indent = nil
            }
            var separators: (String, String)?
            if let l = arg(2, "separators")?.sequence, l.count == 2, case .string(let a) = l[0], case .string(let b) = l[1] {
                separators = (a, b)
            }
            let encoder = PythonJSONEncoder(indent: indent, separators: separators, sortKeys: bool(arg(3, "sort_keys")),
                                            ensureASCII: bool(arg(0, "ensure_ascii")))
            switch encoder.encode(value) {
            case .success(let json): return .string(json)
            case .failure(let bad):
                if let e = undefinedError(value, at: at) { throw e }
                throw ChatTemplateError.invalidOperation("Object of type \(bad.typeName) is not JSON serializable", location(at))
            }
        case "upper": return .string(value.str.uppercased())
        case "lower": return .string(value.str.lowercased())
        case "title": return .string(jinjaTitle(value.str))
        case "capitalize": return .string(pythonCapitalize(value.str))
        case "string": return .string(value.str)
        case "safe": return value
        case "e", "escape":
            var out = ""
            for c in value.str.unicodeScalars {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&#34;"
                case "'": out += "&#39;"
                default: out.unicodeScalars.append(c)
                }
            }
            return .string(out)
        case "default", "d":
            if value.isUndefined || (bool(arg(1, "boolean")) && !value.truthy) { return arg(0, "default_value") ?? .string("") }
            return value
        case "join":
            let separator = arg(0, "d")?.str ?? ""
            var items = try iterate(value, at: at)
            if let attr = arg(1, "attribute") { items = try items.map { try attributePath($0, attr, at: at) } }
            return .string(items.map(\.str).joined(separator: separator))
        case "first":
            if case .undefined = value { return value }
            return try iterate(value, at: at).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            if let e = undefinedError(value, at: at) { throw e }
            return try iterate(value, at: at).last ?? .undefined("No last item, sequence was empty.")
        case "list": return .list(try iterate(value, at: at))
        case "items":
            switch value {
            case .dict(let d): return .list(d.entries.map { .tuple([.string($0.key), $0.value]) })
            case .undefined: return .list([])
            default: throw ChatTemplateError.invalidOperation("Can only get item pairs from a mapping.", location(at))
            }
        case "reverse":
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try iterate(value, at: at).reversed())
        case "replace":
            guard let old = string(arg(0, "old")), let new = string(arg(1, "new")) else {
                throw ChatTemplateError.invalidOperation("replace needs two strings", location(at))
            }
            return .string(pythonReplace(value.str, old, new, count: arg(2, "count")?.integer ?? -1))
        case "int":
            let fallback = arg(0, "default") ?? .int(0)
            switch value {
            case .int, .bool: return .int(value.integer!)
            case .double(let d): return d.isFinite && abs(d) < 9.2e18 ? .int(Int(d)) : fallback
            case .string(let s):
                let t = pythonStrip(s, chars: nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                if let i = Int(t) { return .int(i) }
                if let d = Double(t), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "float":
            let fallback = arg(0, "default") ?? .double(0)
            if let n = value.number { return .double(n) }
            if case .string(let s) = value, let d = Double(pythonStrip(s, chars: nil, leading: true, trailing: true)) { return .double(d) }
            return fallback
        case "abs":
            switch value {
            case .int(let i): guard i != .min else { throw overflow(at) }; return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            default: throw try operandError("bad operand type for abs(): '\(value.typeName)'", value, at: at)
            }
        case "round":
            guard let x = value.number else { throw try operandError("round() needs a number", value, at: at) }
            let precision = arg(0, "precision")?.integer ?? 0
            let method = string(arg(1, "method")) ?? "common"
            let scale = Foundation.pow(10, Double(precision))
            switch method {
            case "common": return .double((x * scale).rounded(.toNearestOrEven) / scale)  // Python's round()
            case "ceil": return .double((x * scale).rounded(.up) / scale)
            case "floor": return .double((x * scale).rounded(.down) / scale)
            default: throw ChatTemplateError.invalidOperation("method must be common, ceil or floor", location(at))
            }
        case "sum":
            var items = try iterate(value, at: at)
            if let attr = arg(0, "attribute") { items = try items.map { try attributePath($0, attr, at: at) } }
            return try items.reduce(arg(1, "start") ?? .int(0)) { try arithmetic(.add, $0, $1, at: at) }
        case "min", "max":
            let items = try iterate(value, at: at)
            let caseSensitive = bool(arg(0, "case_sensitive"))
            let key = try arg(1, "attribute").map { a in try items.map { try attributePath($0, a, at: at) } } ?? items
            guard !items.isEmpty else { return .undefined("No aggregated item, sequence was empty.") }
            var best = 0
            for i in 1..<items.count {
                guard let order = sortKey(key[i], caseSensitive).compare(sortKey(key[best], caseSensitive)) else {
                    throw ChatTemplateError.invalidOperation("'<' not supported between instances of '\(key[i].typeName)' and '\(key[best].typeName)'", location(at))
                }
                if (name == "min" && order == .orderedAscending) || (name == "max" && order == .orderedDescending) { best = i }
            }
            return items[best]
        case "sort":
            let items = try iterate(value, at: at)
            let reverse = bool(arg(0, "reverse"))
            let caseSensitive = bool(arg(1, "case_sensitive"))
            let keys = try arg(2, "attribute").map { a in try items.map { sortKey(try attributePath($0, a, at: at), caseSensitive) } }
                ?? items.map { sortKey($0, caseSensitive) }
            var failure: ChatTemplateError?
            let order = Array(items.indices).sorted { i, j in
                guard let c = keys[i].compare(keys[j]) else {
                    failure = .invalidOperation("'<' not supported between instances of '\(keys[i].typeName)' and '\(keys[j].typeName)'", location(at))
                    return false
                }
                if c == .orderedSame { return i < j }
                return reverse ? c == .orderedDescending : c == .orderedAscending
            }
            if let failure { throw failure }
            return .list(order.map { items[$0] })
        case "unique":
            let caseSensitive = bool(arg(0, "case_sensitive"))
            var seen: [RuntimeValue] = []
            var out: [RuntimeValue] = []
            for item in try iterate(value, at: at) {
                let key = try arg(1, "attribute").map { try attributePath(item, $0, at: at) } ?? item
                let k = sortKey(key, caseSensitive)
                if !seen.contains(where: { $0.equals(k) }) { seen.append(k); out.append(item) }
            }
            return .list(out)
        case "map":
            let items = try iterate(value, at: at)
            if let attr = args.keyword.first(where: { $0.name == "attribute" })?.value {
                let fallback = args.keyword.first { $0.name == "default" }?.value
                return .list(try items.map { item in
                    let v = try attributePath(item, attr, at: at)
                    if v.isUndefined, let fallback { return fallback }
                    return v
                })
            }
            guard case .string(let filterName)? = args.positional.first else {
                throw ChatTemplateError.invalidOperation("map requires a filter name or attribute=", location(at))
            }
            let rest = EvaluatedArguments(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            return .list(try items.map { try applyFilter(filterName, $0, rest, scope, at: at) })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            let keep = name.hasPrefix("select")
            var p = args.positional
            var attr: RuntimeValue?
            if byAttribute {
                guard !p.isEmpty else { throw ChatTemplateError.invalidOperation("\(name) needs an attribute name", location(at)) }
                attr = p.removeFirst()
            }
            let testName: String? = p.isEmpty ? nil : string(p.removeFirst())
            return .list(try iterate(value, at: at).filter { item in
                let subject = try attr.map { try attributePath(item, $0, at: at) } ?? item
                let passes = try testName.map { try applyTest($0, subject, p, at: at) } ?? subject.truthy
                return passes == keep
            })
        case "indent":
            var width = "    "
            switch arg(0, "width") {
            case .int(let n)?: width = String(repeating: " ", count: max(n, 0))
            case .string(let s)?: width = s
            default: break
            }
            let lines = pythonSplitLines(value.str + "\n")
            var out: String
            if bool(arg(2, "blank")) {
                out = lines.joined(separator: "\n" + width)
            } else {
                out = lines.first ?? ""
                if lines.count > 1 { out += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : width + $0 }.joined(separator: "\n") }
            }
            return .string(bool(arg(1, "first")) ? width + out : out)
        case "wordcount":
            return .int(value.str.split { !($0.isLetter || $0.isNumber || $0 == "_") }.count)
        default:
            throw ChatTemplateError.unsupported("the filter '\(name)'", location(at))
        }
    }

    /// Jinja's `sort`, `unique`, `min`, `max` ignore case unless told otherwise.
    private func sortKey(_ v: RuntimeValue, _ caseSensitive: Bool) -> RuntimeValue {
        if !caseSensitive, case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    /// `attribute='a.b'` (or an integer index) as Jinja's `make_attrgetter` reads it.
    private func attributePath(_ item: RuntimeValue, _ path: RuntimeValue, at: Int) throws -> RuntimeValue {
        if let i = path.integer { return try self.item(item, .int(i), at: at) }
        var v = item
        for part in path.str.split(separator: ".", omittingEmptySubsequences: false) {
            if let i = Int(part) { v = try self.item(v, .int(i), at: at) } else { v = try self.item(v, .string(String(part)), at: at) }
            if v.isUndefined { return v }
        }
        return v
    }

    // MARK: tests

    func applyTest(_ name: String, _ value: RuntimeValue, _ args: [RuntimeValue], at: Int) throws -> Bool {
        func other() throws -> RuntimeValue {
            guard let a = args.first else { throw ChatTemplateError.invalidOperation("the test '\(name)' needs an argument", location(at)) }
            return a
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "number": return value.number != nil
        case "string": if case .string = value { return true } else { return false }
        case "mapping": if case .dict = value { return true } else { return false }
        case "iterable":
            switch value { case .list, .tuple, .dict, .string, .undefined: return true; default: return false }
        case "sequence":
            switch value { case .list, .tuple, .dict, .string: return true; default: return false }
        case "callable":
            switch value { case .macro, .function: return true; default: return false }
        case "sameas":
            switch (value, try other()) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            default: return false
            }
        case "eq", "equalto", "==": return value.equals(try other())
        case "ne", "!=": return !value.equals(try other())
        case "lt", "lessthan", "<": return try compare(.less, value, try other(), at: at)
        case "le", "<=": return try compare(.lessEqual, value, try other(), at: at)
        case "gt", "greaterthan", ">": return try compare(.greater, value, try other(), at: at)
        case "ge", ">=": return try compare(.greaterEqual, value, try other(), at: at)
        case "in": return try contains(try other(), value, at: at)
        case "odd", "even", "divisibleby":
            guard let i = value.integer else { throw try operandError("the test '\(name)' needs an integer, not '\(value.typeName)'", value, at: at) }
            if name == "divisibleby" {
                guard let n = try other().integer, n != 0 else { throw ChatTemplateError.invalidOperation("divisibleby needs a non-zero integer", location(at)) }
                return i % n == 0
            }
            return (i % 2 != 0) == (name == "odd")
        case "lower", "upper":
            // Python's str.islower()/isupper(): at least one cased character, none of the other case.
            let s = value.str
            guard s.unicodeScalars.contains(where: { $0.properties.isCased }) else { return false }
            return name == "lower" ? s == s.lowercased() : s == s.uppercased()
        case "escaped": return false
        default: throw ChatTemplateError.unsupported("the test '\(name)'", location(at))
        }
    }
}

// MARK: Python string functions

/// `str.strip(chars)`: `chars` nil strips whitespace.
func pythonStrip(_ s: String, chars: String?, leading: Bool, trailing: Bool) -> String {
    let set = chars.map { Set($0.unicodeScalars) }
    let strip = { (c: Unicode.Scalar) in set?.contains(c) ?? isPythonWhitespace(c) }
    let scalars = Array(s.unicodeScalars)
    var a = 0, b = scalars.count
    if leading { while a < b && strip(scalars[a]) { a += 1 } }
    if trailing { while b > a && strip(scalars[b - 1]) { b -= 1 } }
    return String(String.UnicodeScalarView(scalars[a..<b]))
}

/// `str.split(sep, maxsplit)`: with no separator, runs of whitespace split and ends are dropped.
func pythonSplit(_ s: String, sep: String?, maxsplit: Int) -> [String] {
    let scalars = Array(s.unicodeScalars)
    var parts: [String] = []
    func text(_ a: Int, _ b: Int) -> String { String(String.UnicodeScalarView(scalars[a..<b])) }
    guard let sep else {
        var i = 0
        while true {
            while i < scalars.count && isPythonWhitespace(scalars[i]) { i += 1 }
            guard i < scalars.count else { return parts }
            if maxsplit >= 0 && parts.count == maxsplit {
                var end = scalars.count
                while end > i && isPythonWhitespace(scalars[end - 1]) { end -= 1 }
                parts.append(text(i, end))
                return parts
            }
            let start = i
            while i < scalars.count && !isPythonWhitespace(scalars[i]) { i += 1 }
            parts.append(text(start, i))
        }
    }
    let needle = Array(sep.unicodeScalars)
    var start = 0, i = 0
    while i + needle.count <= scalars.count {
        if (maxsplit < 0 || parts.count < maxsplit) && scalars[i..<i + needle.count].elementsEqual(needle) {
            parts.append(text(start, i))
            i += needle.count
            start = i
        } else {
            i += 1
        }
    }
    parts.append(text(start, scalars.count))
    return parts
}

/// `str.splitlines()`: Python's line boundaries, terminators dropped.
func pythonSplitLines(_ s: String) -> [String] {
    let breaks: Set<UInt32> = [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]
    let scalars = Array(s.unicodeScalars)
    var lines: [String] = []
    var start = 0, i = 0
    while i < scalars.count {
        if breaks.contains(scalars[i].value) {
            lines.append(String(String.UnicodeScalarView(scalars[start..<i])))
            if scalars[i] == "\r" && i + 1 < scalars.count && scalars[i + 1] == "\n" { i += 1 }
            start = i + 1
        }
        i += 1
    }
    if start < scalars.count { lines.append(String(String.UnicodeScalarView(scalars[start...]))) }
    return lines
}

/// `str.replace(old, new, count)`; an empty `old` inserts `new` between every character, as Python does.
func pythonReplace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
    let scalars = Array(s.unicodeScalars), needle = Array(old.unicodeScalars)
    var out = String.UnicodeScalarView()
    var done = 0, i = 0
    if needle.isEmpty {
        for c in scalars {
            if count < 0 || done < count { out.append(contentsOf: new.unicodeScalars); done += 1 }
            out.append(c)
        }
        if count < 0 || done < count { out.append(contentsOf: new.unicodeScalars) }
        return String(out)
    }
    while i < scalars.count {
        if (count < 0 || done < count) && i + needle.count <= scalars.count && scalars[i..<i + needle.count].elementsEqual(needle) {
            out.append(contentsOf: new.unicodeScalars)
            i += needle.count
            done += 1
        } else {
            out.append(scalars[i])
            i += 1
        }
    }
    return String(out)
}

/// `str.title()`: the first cased character of each run of cased characters upper, the rest lower.
func pythonTitle(_ s: String) -> String {
    var out = ""
    var previousCased = false
    for c in s.unicodeScalars {
        let cased = c.properties.isCased
        if cased {
            out += previousCased ? String(c).lowercased() : c.properties.titlecaseMapping
        } else {
            out.unicodeScalars.append(c)
        }
        previousCased = cased
    }
    return out
}

/// Jinja's `title` filter (not Python's `str.title`): words start after whitespace, `-`, `(`, `{`,
/// `[` or `<`; each word's first character upper, the rest lower.
func jinjaTitle(_ s: String) -> String {
    let separators: Set<Unicode.Scalar> = ["-", "(", "{", "[", "<"]
    var out = ""
    var atWordStart = true
    for c in s.unicodeScalars {
        if isPythonWhitespace(c) || separators.contains(c) {
            out.unicodeScalars.append(c)
            atWordStart = true
        } else {
            out += atWordStart ? String(c).uppercased() : String(c).lowercased()
            atWordStart = false
        }
    }
    return out
}

/// `str.capitalize()`: the first character in title case, the rest lower.
func pythonCapitalize(_ s: String) -> String {
    guard let first = s.unicodeScalars.first else { return s }
    return first.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
}
