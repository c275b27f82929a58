/// A string-keyed dictionary that remembers insertion order, as Python's `dict` does: the order
/// is visible in a template (`for k, v in d.items()`, `d | tojson`), so it must survive.
public struct OrderedDictionary<Value> {
    public private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    public init() {}

    public init(_ pairs: [(String, Value)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let v = newValue {
                if storage.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Entries in insertion order.
    public var entries: [(key: String, value: Value)] { keys.map { ($0, storage[$0]!) } }

    public func mapValues<T>(_ transform: (Value) throws -> T) rethrows -> OrderedDictionary<T> {
        var out = OrderedDictionary<T>()
        for k in keys { out[k] = try transform(storage[k]!) }
        return out
    }
}

extension OrderedDictionary: Equatable where Value: Equatable {
    /// Python's dict equality: same keys and values, in any order.
    public static func == (a: Self, b: Self) -> Bool { a.storage == b.storage }
}

extension OrderedDictionary: Sendable where Value: Sendable {}

/// A value a chat template can be given: what JSON can hold (and so what `transformers` passes a
/// template: messages, tools, documents, extra keyword arguments). Literals build it directly:
/// `["role": "user", "content": "Hi"]`, and dictionary literals keep their order.
public enum TemplateValue: Equatable, Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([TemplateValue])
    case dict(OrderedDictionary<TemplateValue>)
}

extension TemplateValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .none }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self = .dict(OrderedDictionary(elements)) }
}
