import Foundation

/// The `BPE` model of a `tokenizer.json` (Sennrich et al. 2016, "Neural Machine Translation of
/// Rare Words with Subword Units"; byte-level as in GPT-2, Radford et al. 2019): a word starts as
/// one symbol per character — per byte, through GPT-2's byte-to-character table, when the
/// pre-tokenizer is `ByteLevel` — and the adjacent pair with the lowest merge rank is merged
/// until no listed pair is left.
///
/// Merges are one hash lookup per pair (`pairKey` → rank and merged id) and whole words are
/// cached, which is what makes BPE fast on real text: most words repeat.
final class BytePairModel: @unchecked Sendable {
    let idOfToken: [String: Int]
    /// `(left id << 32 | right id)` → `(rank << 32 | merged id)`.
    let merges: [UInt64: UInt64]
    let ignoreMerges: Bool
    let byteFallback: Bool
    /// Symbol id of each byte under the byte-level mapping (-1 when the vocabulary lacks it).
    let byteSymbol: [Int32]

    /// Cached words (their UTF-8 text) → ids; the lock makes one tokenizer safe to share.
    private var cache: [String: [Int32]] = [:]
    private let lock = NSLock()
    static let cacheCapacity = 200_000
    /// Longer words are not cached (`tokenizers` uses the same bound): they rarely repeat.
    static let maxCachedWordBytes = 256

    init(idOfToken: [String: Int], merges: [UInt64: UInt64], ignoreMerges: Bool, byteFallback: Bool) {
        self.idOfToken = idOfToken
        self.merges = merges
        self.ignoreMerges = ignoreMerges
        self.byteFallback = byteFallback
        byteSymbol = ByteLevelAlphabet.characters.map { c in idOfToken[String(c)].map { Int32($0) } ?? -1 }
    }

    @inline(__always) static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }

    /// Ids of one byte-level word given as its UTF-8 bytes.
    func encodeByteLevel(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [Int]) throws {
        let cacheable = bytes.count <= Self.maxCachedWordBytes
        let key = String(decoding: bytes, as: UTF8.self)
        if cacheable, let hit = lookup(key) { for id in hit { out.append(Int(id)) }; return }
        if ignoreMerges {
            let mapped = String(String.UnicodeScalarView(bytes.lazy.map { ByteLevelAlphabet.scalars[Int($0)] }))
            if let id = idOfToken[mapped] { out.append(id); if cacheable { store(key, [Int32(id)]) }; return }
        }
        var symbols = [Int32]()
        symbols.reserveCapacity(bytes.count)
        for b in bytes {
            let s = byteSymbol[Int(b)]
            guard s >= 0 else { throw ModelError.unknownToken(String(ByteLevelAlphabet.characters[Int(b)])) }
            symbols.append(s)
        }
        merge(&symbols)
        if cacheable { store(key, symbols) }
        for id in symbols { out.append(Int(id)) }
    }

    /// Ids of one word of a character-level BPE (no `ByteLevel`): each scalar is a symbol; one
    /// missing from the vocabulary becomes its `<0xXX>` byte tokens under `byte_fallback`, else an
    /// error (where `tokenizers` would silently drop it, losing text).
    func encodeScalars(_ scalars: ArraySlice<UInt32>, into out: inout [Int]) throws {
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars.lazy.map { Unicode.Scalar($0)! })
        let cacheable = text.utf8.count <= Self.maxCachedWordBytes
        if cacheable, let hit = lookup(text) { for id in hit { out.append(Int(id)) }; return }
        if ignoreMerges, let id = idOfToken[text] { out.append(id); return }
        var symbols = [Int32]()
        for v in scalars {
            let u = Unicode.Scalar(v)!
            if let id = idOfToken[String(u)] { symbols.append(Int32(id)); continue }
            guard byteFallback else { throw ModelError.unknownToken(String(u)) }
            for b in String(u).utf8 {
                guard let id = idOfToken[String(format: "<0x%02X>", b)] else { throw ModelError.unknownToken(String(u)) }
                symbols.append(Int32(id))
            }
        }
        merge(&symbols)
        if cacheable { store(text, symbols) }
        for id in symbols { out.append(Int(id)) }
    }

    /// Repeatedly merges the lowest-ranked adjacent pair, leftmost first among equal ranks (the
    /// order of `tokenizers`' priority queue).
    func merge(_ symbols: inout [Int32]) {
        guard symbols.count > 1, !merges.isEmpty else { return }
        let n = symbols.withUnsafeMutableBufferPointer { s -> Int in
            var n = s.count
            while n > 1 {
                var best = UInt64.max, at = -1
                for i in 0..<(n - 1) {
                    if let m = merges[Self.pairKey(s[i], s[i + 1])], m < best { best = m; at = i }
                }
                if at < 0 { break }
                s[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
                var i = at + 1
                while i < n - 1 { s[i] = s[i + 1]; i += 1 }
                n -= 1
            }
            return n
        }
        symbols.removeLast(symbols.count - n)
    }

    private func lookup(_ key: String) -> [Int32]? {
        lock.lock(); defer { lock.unlock() }
        return cache[key]
    }

    private func store(_ key: String, _ ids: [Int32]) {
        lock.lock(); defer { lock.unlock() }
        if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
        cache[key] = ids
    }
}

/// GPT-2's reversible byte ↔ character table (`bytes_to_unicode` in openai/gpt-2's encoder.py):
/// printable Latin-1 bytes stand for themselves, the other 68 bytes map to U+0100… in byte order,
/// so every byte string is a string of visible characters a BPE vocabulary can hold.
enum ByteLevelAlphabet {
    static let scalars: [Unicode.Scalar] = {
        var next: UInt32 = 256
        return (0..<256).map { b -> Unicode.Scalar in
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) { return Unicode.Scalar(UInt8(b)) }
            defer { next += 1 }
            return Unicode.Scalar(next)!
        }
    }()
    static let characters: [Character] = scalars.map(Character.init)
    /// Byte of each table character, indexed by scalar value (< 0x144); -1 elsewhere.
    static let byteOfScalar: [Int16] = {
        var t = [Int16](repeating: -1, count: 0x144)
        for (b, u) in scalars.enumerated() { t[Int(u.value)] = Int16(b) }
        return t
    }()
}
