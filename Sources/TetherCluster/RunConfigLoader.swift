import Foundation
import Yams

/// A configuration problem, always naming the key path (`algorithm.clip_eps_high`) it is about.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case syntax(source: String, message: String)
    case unknownKey(path: String, suggestion: String?)
    case duplicateKey(path: String)
    case typeMismatch(path: String, expected: String, got: String)
    case invalidValue(path: String, reason: String)
    case badOverride(String, reason: String)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .syntax(source, message): return "\(source): invalid YAML: \(message)"
        case let .unknownKey(path, suggestion):
            return "\(path): unknown key" + (suggestion.map { "; did you mean \($0)?" } ?? "")
        case .duplicateKey(let path): return "\(path): key given more than once"
        case let .typeMismatch(path, expected, got): return "\(path): expected \(expected), got \(got)"
        case let .invalidValue(path, reason): return "\(path): \(reason)"
        case let .badOverride(text, reason): return "--set \(text): \(reason)"
        case let .unreadable(path, reason): return "\(path): cannot read config: \(reason)"
        }
    }
}

extension RunConfig {
    /// Reads a YAML file, applies `--set key.path=value` overrides, and validates.
    public static func load(contentsOf url: URL, overrides: [String] = []) throws -> RunConfig {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ConfigError.unreadable(path: url.path, reason: error.localizedDescription)
        }
        return try load(yaml: text, source: url.path, overrides: overrides)
    }

    /// Keys missing from `yaml` keep their defaults; unknown keys, wrong types and out-of-range values
    /// are `ConfigError`s naming the key path.
    public static func load(yaml: String, source: String = "<config>", overrides: [String] = []) throws -> RunConfig {
        let defaults = try defaultsNode()
        var merged = defaults
        let user: Node?
        do { user = try Yams.compose(yaml: yaml) } catch {
            throw ConfigError.syntax(source: source, message: "\(error)")
        }
        var given: Set<String> = []
        if let user, user != Node("", .implicit) {
            merged = try merge(user, over: defaults, path: [])
            given.formUnion(leafPaths(user))
        }
        for text in overrides {
            let patch = try overridePatch(text)
            merged = try merge(patch, over: merged, path: [])
            given.formUnion(leafPaths(patch))
        }
        var config = try decode(merged)
        config.givenKeys = given
        try config.validate()
        return config
    }

    /// The resolved configuration as YAML (written to the run directory).
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }

    /// Every leaf key path, in declaration order (`model.vocab_size`, …).
    public static func keyPaths() throws -> [String] { leafPaths(try defaultsNode()) }

    static func leafPaths(_ node: Node, _ prefix: [String] = []) -> [String] {
        guard let mapping = node.mapping else { return [prefix.joined(separator: ".")] }
        return mapping.flatMap { leafPaths($0.value, prefix + [$0.key.string ?? "?"]) }
    }

    // MARK: Internals

    static func defaultsNode() throws -> Node {
        guard let node = try Yams.compose(yaml: try YAMLEncoder().encode(RunConfig.defaults)) else {
            throw ConfigError.syntax(source: "<defaults>", message: "defaults encode to nothing")
        }
        return node
    }

    private static func merge(_ user: Node, over defaults: Node, path: [String]) throws -> Node {
        let here = path.isEmpty ? "<top level>" : path.joined(separator: ".")
        guard let userMapping = user.mapping, var result = defaults.mapping else {
            throw ConfigError.typeMismatch(path: here, expected: "a mapping of keys", got: describe(user))
        }
        // YAML 1.2 §3.2.1.1 requires mapping keys to be unique, but libyaml (and so Yams) keeps every
        // pair and the decoder silently takes one of them; a repeated key is almost always an edit
        // that was meant to replace the other, so it is an error naming the key.
        var seen: Set<String> = []
        for (keyNode, value) in userMapping {
            guard let key = keyNode.string else {
                throw ConfigError.typeMismatch(path: here, expected: "string keys", got: describe(keyNode))
            }
            let keyPath = path + [key]
            guard seen.insert(key).inserted else { throw ConfigError.duplicateKey(path: keyPath.joined(separator: ".")) }
            guard let defaultValue = result[key] else {
                throw ConfigError.unknownKey(
                    path: keyPath.joined(separator: "."),
                    suggestion: closestKey(to: key, among: result.keys.compactMap(\.string)))
            }
            if defaultValue.mapping != nil {
                // `section:` with nothing under it keeps the section's defaults.
                if value.null == nil { result[key] = try merge(value, over: defaultValue, path: keyPath) }
            } else {
                guard value.scalar != nil, value.null == nil || expectedType(of: defaultValue) == "a string" else {
                    throw ConfigError.typeMismatch(
                        path: keyPath.joined(separator: "."), expected: expectedType(of: defaultValue), got: describe(value))
                }
                result[key] = value
            }
        }
        return .mapping(result)
    }

    /// `--set a.b=value` as the mapping `{a: {b: value}}`, merged like a file so the same checks apply.
    private static func overridePatch(_ text: String) throws -> Node {
        guard let eq = text.firstIndex(of: "=") else {
            throw ConfigError.badOverride(text, reason: "expected key.path=value")
        }
        let keys = text[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let valueText = String(text[text.index(after: eq)...])
        guard !keys.isEmpty, keys.allSatisfy({ !$0.isEmpty }) else {
            throw ConfigError.badOverride(text, reason: "empty key path")
        }
        let value: Node
        do { value = try Yams.compose(yaml: valueText) ?? Node("", .implicit) } catch {
            throw ConfigError.badOverride(text, reason: "value is not valid YAML: \(error)")
        }
        return keys.reversed().reduce(value) { inner, key in Node.mapping(Node.Mapping([(Node(key), inner)])) }
    }

    private static func decode(_ node: Node) throws -> RunConfig {
        let text = try Yams.serialize(node: node)
        do { return try YAMLDecoder().decode(RunConfig.self, from: text) } catch let error as DecodingError {
            throw translate(error, in: node)
        }
    }

    private static func translate(_ error: DecodingError, in node: Node) -> ConfigError {
        func path(_ codingPath: [CodingKey]) -> String { codingPath.map(\.stringValue).joined(separator: ".") }
        func value(at codingPath: [CodingKey]) -> String {
            var current: Node? = node
            for key in codingPath { current = current?[key.stringValue] }
            return current.map(describe) ?? "nothing"
        }
        switch error {
        case let .typeMismatch(type, context), let .valueNotFound(type, context):
            return .typeMismatch(path: path(context.codingPath), expected: typeName(type), got: value(at: context.codingPath))
        case let .dataCorrupted(context):
            return .invalidValue(path: path(context.codingPath), reason: context.debugDescription)
        case let .keyNotFound(key, context):
            return .invalidValue(path: path(context.codingPath + [key]), reason: "missing key")
        @unknown default:
            return .invalidValue(path: "<config>", reason: "\(error)")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "\(type)"
        }
    }

    private static func expectedType(of defaultValue: Node) -> String {
        guard let scalar = defaultValue.scalar else { return "a mapping of keys" }
        if Int(scalar.string) != nil { return "an integer" }
        if Double(scalar.string) != nil { return "a number" }
        if ["true", "false"].contains(scalar.string) { return "true or false" }
        return "a string"
    }

    private static func describe(_ node: Node) -> String {
        if node.null != nil { return "nothing (null)" }
        switch node {
        case .scalar(let s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// The known key nearest in edit distance, if it is plausibly a typo.
    static func closestKey(to key: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, key.count / 3) else { return nil }
        return best
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0 ... b.count)
        for i in 1 ... a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1 ... b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
