import Foundation

/// A value while a template renders: the JSON-like data of `TemplateValue` plus what only exists
/// inside Jinja (undefined, `namespace()` objects, the `loop` variable, macros, global functions).
/// Its operations follow Python's, because Jinja evaluates templates as Python: `str()` of a
/// value is what `{{ }}` prints, truthiness is Python's, `==` compares 1 == 1.0 == True.
enum RuntimeValue: Sendable {
    /// Jinja's default `Undefined`: prints as "", is false, iterates as empty; most other uses
    /// raise `UndefinedError`. The string says what was missing, for that error.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([RuntimeValue])
    /// A Python tuple: `(a, b)`, `dict.items()` pairs. Prints as `(a, b)`; never equal to a list.
    case tuple([RuntimeValue])
    case dict(OrderedDictionary<RuntimeValue>)
    case namespace(NamespaceObject)
    case loop(LoopObject)
    case macro(MacroObject)
    case function(GlobalFunction)

    init(_ v: TemplateValue) {
        switch v {
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .list(let l): self = .list(l.map(RuntimeValue.init))
        case .dict(let d): self = .dict(d.mapValues(RuntimeValue.init))
        }
    }

    /// The items of a list or tuple.
    var sequence: [RuntimeValue]? {
        switch self {
        case .list(let l), .tuple(let l): return l
        default: return nil
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }

    /// Python's type name, for error messages that match Python's.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .macro: return "Macro"
        case .function: return "function"
        }
    }

    /// Python's `bool(x)`.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l), .tuple(let l): return !l.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace, .loop, .macro, .function: return true
        }
    }

    /// Python's `str(x)`: what `{{ x }}`, `~` and the `string` filter produce.
    var str: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python's `repr(x)`, which `str()` of a list or dict uses for the items.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloatRepr(d)
        case .string(let s): return pythonStringRepr(s)
        case .list(let l): return "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .tuple(let l): return "(" + l.map(\.repr).joined(separator: ", ") + (l.count == 1 ? ",)" : ")")
        case .dict(let d): return "{" + d.entries.map { pythonStringRepr($0.key) + ": " + $0.value.repr }.joined(separator: ", ") + "}"
        case .namespace(let ns): return "<Namespace " + RuntimeValue.dict(ns.attributes).repr + ">"
        case .loop: return "<LoopContext>"
        case .macro(let m): return "<Macro '\(m.definition.name)'>"
        case .function(let f): return "<function \(f.rawValue)>"
        }
    }

    /// A number as Python sees it (bool is an int subclass), or nil.
    var number: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// An exact integer as Python sees it (bool included), or nil.
    var integer: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    /// Python's `==`.
    func equals(_ other: RuntimeValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)):
            return a.count == b.count && a.entries.allSatisfy { e in b[e.key].map { e.value.equals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let x = integer, let y = other.integer { return x == y }
            if let x = number, let y = other.number { return x == y }
            return false
        }
    }

    /// Python's ordering (`<` and friends): numbers, strings by code point, lists lexicographically;
    /// anything else is a `TypeError`, returned as nil.
    func compare(_ other: RuntimeValue) -> ComparisonResult? {
        switch (self, other) {
        case (.string(let a), .string(let b)):
            var x = a.unicodeScalars.makeIterator(), y = b.unicodeScalars.makeIterator()
            while true {
                switch (x.next(), y.next()) {
                case (nil, nil): return .orderedSame
                case (nil, _): return .orderedAscending
                case (_, nil): return .orderedDescending
                case (let p?, let q?): if p != q { return p.value < q.value ? .orderedAscending : .orderedDescending }
                }
            }
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)):
            for (p, q) in zip(a, b) where !p.equals(q) { return p.compare(q) }
            return a.count == b.count ? .orderedSame : (a.count < b.count ? .orderedAscending : .orderedDescending)
        default:
            if let x = integer, let y = other.integer { return x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending) }
            if let x = number, let y = other.number, !x.isNaN, !y.isNaN { return x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending) }
            return nil
        }
    }
}

/// Python's `repr(float)`: the shortest string that reads back to the same double, with Python's
/// spelling (`1.0`, `1e-05`, `1e+16`, `inf`, `nan`).
func pythonFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
    var s = "\(d)"
    // Swift writes 1e-05 and 1.5e+20 as Python does, but switches to exponents at other magnitudes.
    if !s.contains("e"), abs(d) >= 1e16 || (abs(d) < 1e-4 && d != 0) {
        s = String(format: "%.17g", d)
    }
    return s
}

/// Python's `repr(str)`: single quotes unless the text has `'` and no `"`; backslash escapes.
func pythonStringRepr(_ s: String) -> String {
    let quote: Unicode.Scalar = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"") ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for c in s.unicodeScalars {
        switch c {
        case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case quote: out.append("\\"); out.append(c)
        default:
            if c.value < 0x20 || c.value == 0x7F {
                out.append(contentsOf: String(format: "\\x%02x", c.value).unicodeScalars)
            } else {
                out.append(c)
            }
        }
    }
    out.append(quote)
    return String(out)
}

/// `namespace(...)`: the one mutable object a template may create; `{% set ns.x = … %}` writes it,
/// even from inside a loop. Created and used by a single render, never shared across threads.
final class NamespaceObject: @unchecked Sendable {
    var attributes: OrderedDictionary<RuntimeValue>
    init(_ attributes: OrderedDictionary<RuntimeValue>) { self.attributes = attributes }
}

/// The `loop` variable inside `{% for %}`: index, first/last, length, neighbours.
final class LoopObject: @unchecked Sendable {
    let items: [RuntimeValue]
    var index0 = 0
    init(items: [RuntimeValue]) { self.items = items }

    func attribute(_ name: String) -> RuntimeValue? {
        let n = items.count
        switch name {
        case "index0": return .int(index0)
        case "index": return .int(index0 + 1)
        case "revindex": return .int(n - index0)
        case "revindex0": return .int(n - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == n - 1)
        case "length": return .int(n)
        case "depth": return .int(1)
        case "depth0": return .int(0)
        case "previtem": return index0 > 0 ? items[index0 - 1] : .undefined("there is no previous item")
        case "nextitem": return index0 + 1 < n ? items[index0 + 1] : .undefined("there is no next item")
        default: return nil
        }
    }
}

/// A `{% macro %}`, with the scope it was defined in (macros read the variables around them).
final class MacroObject: @unchecked Sendable {
    let definition: MacroDefinition
    let scope: TemplateScope
    init(definition: MacroDefinition, scope: TemplateScope) {
        self.definition = definition
        self.scope = scope
    }
}

/// The globals of transformers' chat-template environment (plus Jinja's `range`).
enum GlobalFunction: String, Sendable {
    case raiseException = "raise_exception"
    case namespace
    case range
    case dict
    case strftimeNow = "strftime_now"
}

/// Variables visible at one point of a render: a `{% for %}` iteration or macro call gets its own
/// scope, reading through to the enclosing ones; `{% set %}` writes to the innermost. This is
/// Jinja's rule that a `set` inside a loop does not outlive the iteration.
final class TemplateScope: @unchecked Sendable {
    var variables: [String: RuntimeValue]
    let parent: TemplateScope?

    init(_ variables: [String: RuntimeValue] = [:], parent: TemplateScope?) {
        self.variables = variables
        self.parent = parent
    }

    func lookup(_ name: String) -> RuntimeValue? {
        var s: TemplateScope? = self
        while let scope = s {
            if let v = scope.variables[name] { return v }
            s = scope.parent
        }
        return nil
    }
}
