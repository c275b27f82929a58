import Foundation

/// The reward-service protocol (proto/README.md, "Reward workers"): JSON lines over a worker
/// subprocess's stdin and stdout, so a reward can be written in any language.
///
///     worker → actor (once, first line)  {"tether_reward_worker": 1, "version": "<reward version>"}
///     actor → worker                     {"id": 7, "samples": [{"prompt", "completion", "answer", "metadata"}, …]}
///     worker → actor                     {"id": 7, "version": "…", "results": [{"reward": 1.0, "components": {"correct": 1.0}}, …]}
///                                     or {"id": 7, "error": "what went wrong"}
///
/// Every reply is checked before it can become a reward (`RewardServiceReply.parse`): a reply that
/// is not JSON, answers another id, holds a different number of results, or a reward that is not a
/// finite number fails with a named `RewardServiceFailure`, never a zero reward.
public enum RewardServiceProtocol {
    public static let version = 1
    /// The hello line's key that marks a reward worker (and carries the protocol version).
    public static let helloKey = "tether_reward_worker"
}

/// One sample to score, as the worker sees it.
public struct RewardServiceSample: Sendable, Equatable {
    public var prompt: String
    public var completion: String
    public var answer: String
    /// Free-form string fields the worker may use (`task`, `prompt_id`, `finish_reason`).
    public var metadata: [String: String]

    public init(prompt: String, completion: String, answer: String, metadata: [String: String] = [:]) {
        self.prompt = prompt
        self.completion = completion
        self.answer = answer
        self.metadata = metadata
    }

    var json: [String: Any] { ["prompt": prompt, "completion": completion, "answer": answer, "metadata": metadata] }
}

/// Why a request to a reward worker produced no rewards. The raw value is the metric's name
/// (`dropped/reward_<reason>` when a group is given up, `reward/failures/<reason>` per attempt).
public enum RewardServiceFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case startFailed(String)
    case badHello(String)
    case timeout(seconds: Double)
    case crashed(String)
    case badJSON(String)
    case wrongID(expected: Int, got: String)
    case wrongCount(expected: Int, got: Int)
    case nonFiniteReward(String)
    case badReply(String)
    case workerError(String)

    public var reason: String {
        switch self {
        case .startFailed: return "start_failed"
        case .badHello: return "bad_hello"
        case .timeout: return "timeout"
        case .crashed: return "crashed"
        case .badJSON: return "bad_json"
        case .wrongID: return "wrong_id"
        case .wrongCount: return "wrong_count"
        case .nonFiniteReward: return "non_finite_reward"
        case .badReply: return "bad_reply"
        case .workerError: return "worker_error"
        }
    }

    public static let allReasons = ["start_failed", "bad_hello", "timeout", "crashed", "bad_json", "wrong_id", "wrong_count",
                                    "non_finite_reward", "bad_reply", "worker_error"]

    public var description: String {
        switch self {
        case .startFailed(let why): return "reward worker could not start: \(why)"
        case .badHello(let why): return "reward worker's first line is not a hello {\"\(RewardServiceProtocol.helloKey)\": 1, \"version\": …}: \(why)"
        case .timeout(let s): return "reward worker did not answer within \(s) s"
        case .crashed(let why): return "reward worker exited: \(why)"
        case .badJSON(let why): return "reward worker's reply is not a JSON object: \(why)"
        case let .wrongID(expected, got): return "reward worker answered request \(got), expected \(expected)"
        case let .wrongCount(expected, got): return "reward worker returned \(got) results for \(expected) samples"
        case .nonFiniteReward(let what): return "reward worker returned a non-finite reward (\(what)); rewards must be finite numbers"
        case .badReply(let why): return "reward worker's reply is malformed: \(why)"
        case .workerError(let why): return "reward worker reported an error: \(why)"
        }
    }
}

/// A worker's scores for one request.
public struct RewardServiceReply: Sendable, Equatable {
    public var version: String
    public var rewards: [RewardBreakdown]

    /// The request line for `samples` (one line, no newline).
    public static func requestLine(id: Int, samples: [RewardServiceSample]) throws -> Data {
        try JSONSerialization.data(withJSONObject: ["id": id, "samples": samples.map(\.json)], options: [.sortedKeys])
    }

    /// The worker's reward version from its hello line.
    public static func parseHello(_ line: Data) throws -> String {
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw RewardServiceFailure.badHello("not a JSON object: \(preview(line))")
        }
        guard let p = object[RewardServiceProtocol.helloKey] as? NSNumber, p.intValue == RewardServiceProtocol.version else {
            throw RewardServiceFailure.badHello("\"\(RewardServiceProtocol.helloKey)\" must be \(RewardServiceProtocol.version): \(preview(line))")
        }
        guard let v = object["version"] as? String, !v.isEmpty else { throw RewardServiceFailure.badHello("no \"version\" string") }
        return v
    }

    /// Checks and decodes the reply to request `id` of `count` samples. Components keep the worker's
    /// names, sorted; their weight is 1 (the worker's `reward` is what trains).
    public static func parse(_ line: Data, id: Int, count: Int) throws -> RewardServiceReply {
        if containsNonFiniteLiteral(line) { throw RewardServiceFailure.nonFiniteReward("NaN or Infinity in \(preview(line))") }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: line) } catch { throw RewardServiceFailure.badJSON(preview(line)) }
        guard let object = parsed as? [String: Any] else { throw RewardServiceFailure.badJSON("not an object: \(preview(line))") }
        guard let gotID = object["id"] as? NSNumber, !isBool(gotID), gotID.doubleValue == Double(id) else {
            throw RewardServiceFailure.wrongID(expected: id, got: object["id"].map { "\($0)" } ?? "none")
        }
        if let error = object["error"] { throw RewardServiceFailure.workerError("\(error)") }
        guard let version = object["version"] as? String, !version.isEmpty else {
            throw RewardServiceFailure.badReply("no \"version\" string")
        }
        guard let results = object["results"] as? [Any] else { throw RewardServiceFailure.badReply("no \"results\" list") }
        guard results.count == count else { throw RewardServiceFailure.wrongCount(expected: count, got: results.count) }
        var rewards: [RewardBreakdown] = []
        rewards.reserveCapacity(count)
        for (i, r) in results.enumerated() {
            guard let entry = r as? [String: Any] else { throw RewardServiceFailure.badReply("results[\(i)] is not an object") }
            let reward = try finite(entry["reward"], "results[\(i)].reward")
            var components: [RewardComponent] = []
            if let c = entry["components"] {
                guard let named = c as? [String: Any] else { throw RewardServiceFailure.badReply("results[\(i)].components is not an object") }
                for name in named.keys.sorted() {
                    guard !name.isEmpty else { throw RewardServiceFailure.badReply("results[\(i)].components has an empty name") }
                    components.append(RewardComponent(name: name, value: try finite(named[name], "results[\(i)].components.\(name)")))
                }
            }
            rewards.append(RewardBreakdown(reward: reward, components: components))
        }
        return RewardServiceReply(version: version, rewards: rewards)
    }

    /// A JSON number that is finite also as the `Float` the learner trains with.
    static func finite(_ value: Any?, _ field: String) throws -> Float {
        guard let n = value as? NSNumber, !isBool(n) else {
            throw RewardServiceFailure.badReply("\(field) is \(value.map { "\($0)" } ?? "missing"), expected a number")
        }
        let f = Float(n.doubleValue)
        guard f.isFinite else { throw RewardServiceFailure.nonFiniteReward("\(field) = \(n.doubleValue)") }
        return f
    }

    /// JSON's `true`/`false` also decode as `NSNumber` (a boolean subclass of it): not a reward.
    static func isBool(_ n: NSNumber) -> Bool { ObjectIdentifier(type(of: n)) != ObjectIdentifier(NSNumber.self) }

    /// Whether `NaN`, `Infinity` or `-Infinity` appear outside strings: what Python's `json.dumps`
    /// writes for non-finite floats (not JSON), told apart from other bad JSON so the reason says so.
    static func containsNonFiniteLiteral(_ line: Data) -> Bool {
        var inString = false, escaped = false
        let bytes = [UInt8](line)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
            } else if b == UInt8(ascii: "\"") {
                inString = true
            } else if b == UInt8(ascii: "N") || b == UInt8(ascii: "I") {
                let word = b == UInt8(ascii: "N") ? Array("NaN".utf8) : Array("Infinity".utf8)
                if bytes.count - i >= word.count && Array(bytes[i ..< i + word.count]) == word { return true }
            }
            i += 1
        }
        return false
    }

    static func preview(_ line: Data) -> String {
        let text = String(decoding: line.prefix(120), as: UTF8.self)
        return line.count > 120 ? text + "…" : text
    }
}
