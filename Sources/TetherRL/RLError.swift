/// Bad input to an advantage estimator or a loss, naming the array and what was wrong with it.
public enum RLError: Error, Equatable, CustomStringConvertible {
    case countMismatch(name: String, expected: Int, found: Int)
    case nonFinite(name: String, index: Int, value: Float)
    case missingInput(name: String, neededBy: String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .countMismatch(let name, let expected, let found):
            return "\(name) has \(found) entries, expected \(expected)"
        case .nonFinite(let name, let index, let value):
            return "\(name)[\(index)] is \(value); rewards, log-probs and values must be finite"
        case .missingInput(let name, let neededBy):
            return "\(neededBy) needs \(name), which was not given"
        case .invalidArgument(let why):
            return "invalid argument: \(why)"
        }
    }

    static func checkCount<T>(_ name: String, _ array: [T], _ expected: Int) throws {
        guard array.count == expected else { throw RLError.countMismatch(name: name, expected: expected, found: array.count) }
    }

    static func checkFinite(_ name: String, _ array: [Float]) throws {
        for (i, v) in array.enumerated() where !v.isFinite { throw RLError.nonFinite(name: name, index: i, value: v) }
    }
}
