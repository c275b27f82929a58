import CZMQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A CurveZMQ key pair as two Z85 strings of 40 characters (what `zmq_curve_keypair` produces
/// and `ZMQ_CURVE_*KEY` options take). `tether keygen` writes one.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) throws {
        try CurveKeyPair.checkZ85Key(publicKey, what: "public key")
        try CurveKeyPair.checkZ85Key(secretKey, what: "secret key")
        guard CurveKeyPair.derivePublic(secretKey) == publicKey else {
            throw WireSocketError.invalidKey("public key does not belong to the secret key")
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    public static func generate() throws -> CurveKeyPair {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else {
            throw WireSocketError.zmq(operation: "zmq_curve_keypair", message: zmqErrorMessage())
        }
        return try CurveKeyPair(publicKey: cString(pub), secretKey: cString(sec))
    }

    /// Files `DIR/NAME.pub` and `DIR/NAME.key` (mode 0600), one Z85 line each.
    public static func paths(directory: String, name: String) -> (publicKey: String, secretKey: String) {
        ("\(directory)/\(name).pub", "\(directory)/\(name).key")
    }

    public func write(directory: String, name: String = "tether") throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let p = CurveKeyPair.paths(directory: directory, name: name)
        // Created with mode 0600 from the start: the secret is never readable by others, not even briefly.
        try? FileManager.default.removeItem(atPath: p.secretKey)
        let fd = open(p.secretKey, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WireSocketError.invalidKey("cannot create \(p.secretKey): \(String(cString: strerror(errno)))") }
        let line = Array((secretKey + "\n").utf8)
        let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        Glibc.close(fd)
        guard written == line.count else { throw WireSocketError.invalidKey("cannot write \(p.secretKey)") }
        try (publicKey + "\n").write(toFile: p.publicKey, atomically: true, encoding: .utf8)
    }

    /// Loads a pair written by `write`; the public key is re-derived and checked against the file.
    public static func load(directory: String, name: String = "tether") throws -> CurveKeyPair {
        let p = paths(directory: directory, name: name)
        func read(_ path: String) throws -> String {
            guard let s = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw WireSocketError.invalidKey("cannot read \(path); create keys with `tether keygen --out \(directory)`")
            }
            return s.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return try CurveKeyPair(publicKey: try read(p.publicKey), secretKey: try read(p.secretKey))
    }

    /// Only `DIR/NAME.pub`: a peer needs the other side's public key, never its secret (the
    /// Kubernetes manifests mount each pod only the key files it needs).
    public static func loadPublicKey(directory: String, name: String) throws -> String {
        let path = paths(directory: directory, name: name).publicKey
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw WireSocketError.invalidKey("cannot read \(path); create keys with `tether keygen --out \(directory) --name \(name)`")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        try checkZ85Key(key, what: "public key in \(path)")
        return key
    }

    /// True for a 40-character Z85 string (any 32 bytes are a valid Curve25519 public key).
    public static func isValidPublicKey(_ key: String) -> Bool { z85Decode(key) != nil }

    static func checkZ85Key(_ key: String, what: String) throws {
        guard key.utf8.count == 40, z85Decode(key) != nil else {
            throw WireSocketError.invalidKey("\(what) must be 40 Z85 characters (got \(key.utf8.count) characters)")
        }
    }

    static func derivePublic(_ secret: String) -> String? {
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secret) == 0 else { return nil }
        return cString(pub)
    }

    /// The 32 raw bytes of a Z85 key, nil if it is not valid Z85.
    static func z85Decode(_ key: String) -> [UInt8]? {
        guard key.utf8.count == 40 else { return nil }
        var out = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&out, key) != nil else { return nil }
        return out
    }
}

/// The public keys a CURVE server (the learner) accepts, each with a name that becomes the ZAP
/// user id of its messages (`WireReceived.peerUserId`). Text format: one `Z85KEY [name]` per
/// line; a field starting with `#` that is not a key starts a comment; a key without name is
/// named by itself.
public struct CurveAllowList: Sendable, Equatable {
    /// Raw 32-byte key → name.
    private var names: [[UInt8]: String] = [:]

    public init() {}

    public init(keys: [(publicKey: String, name: String)]) throws {
        for k in keys { try add(publicKey: k.publicKey, name: k.name) }
    }

    public init(parsing text: String, source: String = "allow-list") throws {
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = fields.first else { continue }
            let key = String(first)
            // '#' is a Z85 digit, so a key may start with it: a comment is a '#' field that is not a key.
            if CurveKeyPair.z85Decode(key) == nil {
                if key.hasPrefix("#") { continue }
                throw WireSocketError.invalidKey("\(source) line \(i + 1): \"\(key)\" is not a 40-character Z85 public key")
            }
            fields.removeFirst()
            if let comment = fields.firstIndex(where: { $0.hasPrefix("#") }) { fields.removeSubrange(comment...) }
            try add(publicKey: key, name: fields.isEmpty ? key : fields.joined(separator: " "))
        }
    }

    public static func load(path: String) throws -> CurveAllowList {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw WireSocketError.invalidKey("cannot read allow-list \(path)")
        }
        return try CurveAllowList(parsing: text, source: path)
    }

    public mutating func add(publicKey: String, name: String) throws {
        guard let raw = CurveKeyPair.z85Decode(publicKey) else {
            throw WireSocketError.invalidKey("\"\(publicKey)\" is not a 40-character Z85 public key")
        }
        names[raw] = name
    }

    public var count: Int { names.count }

    /// The name an allowed key is admitted under, nil when the key is not allowed.
    public func name(forPublicKey key: String) -> String? { CurveKeyPair.z85Decode(key).flatMap { names[$0] } }

    func name(forRawKey key: [UInt8]) -> String? { names[key] }
}
