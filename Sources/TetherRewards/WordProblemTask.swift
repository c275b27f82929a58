import TetherKernels

/// Multi-step word problems (`arithmetic:word`): a short story that takes two operations to answer,
/// in the spirit of GSM8K (Cobbe et al. 2021) scaled down to numbers a small model can add:
/// "Mia has 12 apples. She buys 7 more and then gives 5 to Leo. How many apples does Mia have now?" → 14.
///
/// Names, objects, numbers and the story's shape are drawn independently, so the problem space is in
/// the millions and the held-out split has as many distinct problems as any evaluation needs. The
/// canonical prompt is the story itself (what the split hashes and a template-less checkpoint sees).
public struct WordProblemTask: TaskGenerator {
    public let name = "arithmetic"
    public var answerFormat: AnswerFormat
    public var phrasing: TaskPhrasing { .wordProblem }

    public init(answerFormat: AnswerFormat = .lastInteger) { self.answerFormat = answerFormat }

    static let names = ["Mia", "Leo", "Ava", "Noah", "Emma", "Liam", "Zoe", "Omar", "Sara", "Ben", "Nina", "Tom"]
    static let objects = ["apples", "marbles", "stickers", "books", "pencils", "cookies", "cards", "shells", "coins", "stamps"]

    /// One story shape: its text for operands (a, b, c), names (p, q) and object, and its answer.
    struct Story: Sendable {
        let text: @Sendable (Int, Int, Int, String, String, String) -> String
        let answer: @Sendable (Int, Int, Int) -> Int
        let reasoning: @Sendable (Int, Int, Int) -> String
    }

    static let stories: [Story] = [
        Story(text: { a, b, c, p, q, o in "\(p) has \(a) \(o). \(p) buys \(b) more and then gives \(c) to \(q). How many \(o) does \(p) have now?" },
              answer: { a, b, c in a + b - c }, reasoning: { a, b, c in "\(a)+\(b)=\(a + b), \(a + b)-\(c)=\(a + b - c)" }),
        Story(text: { a, b, c, p, _, o in "\(p) has \(a) boxes with \(b) \(o) in each box, and \(c) loose \(o). How many \(o) does \(p) have in total?" },
              answer: { a, b, c in a * b + c }, reasoning: { a, b, c in "\(a)*\(b)=\(a * b), \(a * b)+\(c)=\(a * b + c)" }),
        Story(text: { a, b, c, p, _, o in "\(p) packs \(a) bags of \(b) \(o) each, then eats \(c) of them. How many \(o) are left?" },
              answer: { a, b, c in a * b - c }, reasoning: { a, b, c in "\(a)*\(b)=\(a * b), \(a * b)-\(c)=\(a * b - c)" }),
        Story(text: { a, b, c, p, q, o in "\(p) has \(a) \(o) and \(q) has \(b) \(o). They put them together and share them with \(c) friends so that everyone gets the same number. How many \(o) does each friend get?" },
              answer: { a, b, c in (a + b) / c }, reasoning: { a, b, c in "\(a)+\(b)=\(a + b), \(a + b)/\(c)=\((a + b) / c)" }),
        Story(text: { a, b, c, p, q, o in "\(p) had \(a) \(o), lost \(b) of them, and then got \(c) from \(q). How many \(o) does \(p) have now?" },
              answer: { a, b, c in a - b + c }, reasoning: { a, b, c in "\(a)-\(b)=\(a - b), \(a - b)+\(c)=\(a - b + c)" }),
        Story(text: { a, b, c, p, q, o in "\(p) has \(a) \(o). \(q) has \(b) times as many as \(p), plus \(c) more. How many \(o) does \(q) have?" },
              answer: { a, b, c in a * b + c }, reasoning: { a, b, c in "\(a)*\(b)=\(a * b), \(a * b)+\(c)=\(a * b + c)" }),
    ]

    public func draw(_ rng: inout SplitMix64) -> Problem? {
        let shape = rng.int(in: 0 ... Self.stories.count - 1)
        let story = Self.stories[shape]
        let p = rng.element(of: Self.names)
        var q = rng.element(of: Self.names)
        if q == p { q = Self.names[(Self.names.firstIndex(of: p)! + 1) % Self.names.count] }
        let o = rng.element(of: Self.objects)
        var a = rng.int(in: 2 ... 40), b = rng.int(in: 2 ... 20), c = rng.int(in: 1 ... 20)
        switch shape {
        case 1, 2, 5: a = rng.int(in: 2 ... 12); b = rng.int(in: 2 ... 12)
        case 3:
            // (a + b) must split evenly among c ≥ 2 friends.
            c = rng.int(in: 2 ... 6)
            let total = c * rng.int(in: 2 ... 12)
            a = rng.int(in: 1 ... total - 1); b = total - a
        default: break
        }
        let value = story.answer(a, b, c)
        // Stories never go below zero or lose more than there is.
        if value < 0 || (shape == 4 && b > a) { return nil }
        let text = story.text(a, b, c, p, q, o)
        return Problem(prompt: text, question: text, answer: String(value), reasoning: story.reasoning(a, b, c))
    }
}
