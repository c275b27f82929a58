import Foundation
import TetherKernels

/// Deterministic test text for tokenizer parity: lines that mix what tokenizers get wrong most
/// easily — contractions in any case, accents (composed and combining), CJK, emoji with ZWJ and
/// skin tones, code, long digit runs, runs of spaces, tabs, CR/LF and trailing whitespace, other
/// scripts' marks, and the tokenizer's own special tokens inside ordinary text.
enum TokenizerCorpus {
    static let words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "WORLD", "tokenizer",
                        "internationalization", "a", "I", "x", "running", "Model", "GPU", "sub-word", "e-mail"]
    static let contractions = ["don't", "it's", "we're", "they've", "I'm", "you'll", "he'd", "DON'T", "IT'S", "We'Re",
                               "THEY'VE", "'s", "'tis", "rock'n'roll", "o'clock", "y'all", "'LL", "'D"]
    static let foreign = ["café", "naïve", "Zürich", "e\u{301}te\u{301}", "A\u{30A}ngstro\u{308}m", "façade", "Ærø",
                          "你好世界", "中文分词测试", "こんにちは世界", "カタカナ", "안녕하세요", "Привет мир", "Ελληνικά",
                          "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีครับ", "ﬁne ﬂow", "Ⅻ ⅷ ½ ² ③", "١٢٣ ٤٥٦", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
    static let emoji = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "🤖🦾", "✨🔥", "🧑🏿‍💻"]
    static let code = ["func f(x: Int) -> Int { return x * 2 }", "if (a && b) { c += 1; }", "let s = \"a\\tb\";",
                       "#include <stdio.h>", "def foo(bar=None):", "    return [i**2 for i in range(10)]",
                       "x<=y>=z!=w==v", "arr[i][j] = arr[j][i];", "// TODO: fix", "/* comment */", "$HOME/.config",
                       "https://example.com/path?q=1&r=2#frag", "user@example.org", "{\"key\": [1, 2.5, null]}"]
    static let spaces = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", " \n ", "\u{A0}", "\u{3000}", " \t \n", "\u{2003}", "\r"]
    static let punctuation = ["...", "!?", "—", "–", "«»", "“quoted”", "‘single’", "(", ")", ",", ".", ";", ":", "#", "%", "&", "@", "~"]

    static func digits(_ r: inout SplitMix64) -> String {
        let n = 1 + Int(r.next() % 40)
        return String((0..<n).map { _ in Character(String(r.next() % 10)) })
    }

    static func pick(_ list: [String], _ r: inout SplitMix64) -> String { list[Int(r.next() % UInt64(list.count))] }

    /// `count` lines from `seed`; `specials` are sprinkled in (inside words too).
    static func lines(count: Int, seed: UInt64, specials: [String]) -> [String] {
        var r = SplitMix64(seed: seed)
        var out: [String] = []
        for _ in 0..<count {
            var line = ""
            if r.next() % 6 == 0 { line += pick(spaces, &r) }  // leading whitespace
            let parts = 1 + Int(r.next() % 12)
            for _ in 0..<parts {
                switch r.next() % 20 {
                case 0...5: line += pick(words, &r)
                case 6, 7: line += pick(contractions, &r)
                case 8, 9: line += pick(foreign, &r)
                case 10: line += pick(emoji, &r)
                case 11: line += pick(code, &r)
                case 12, 13: line += digits(&r)
                case 14: line += pick(punctuation, &r)
                case 15: line += specials.isEmpty ? "<|fake|>" : pick(specials, &r)
                case 16: line += pick(words, &r) + digits(&r) + pick(words, &r)
                case 17: line += String(repeating: " ", count: 2 + Int(r.next() % 8))
                default: line += pick(spaces, &r)
                }
                if r.next() % 3 != 0 { line += r.next() % 5 == 0 ? pick(spaces, &r) : " " }
            }
            if r.next() % 5 == 0 { line += pick(spaces, &r) }  // trailing whitespace
            out.append(line)
        }
        return out
    }

    /// Lines made only of the built-in character vocabulary (and its special tokens).
    static func charLines(count: Int, seed: UInt64, alphabet: [Character], specials: [String]) -> [String] {
        var r = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            var line = ""
            for _ in 0..<Int(r.next() % 60) {
                if r.next() % 25 == 0 { line += pick(specials, &r); continue }
                line.append(alphabet[Int(r.next() % UInt64(alphabet.count))])
            }
            return line
        }
    }
}
