/// The `pre_tokenizer` of a `tokenizer.json`: how text is cut into words before BPE, as the
/// `tokenizers` library does it (each step splits every piece the previous steps produced).
struct PreTokenizer: Sendable, Equatable {
    enum Step: Sendable, Equatable {
        /// `Split` with behavior `Isolated` (every match is its own piece) and `invert` false.
        case split(SplitPattern)
        /// `ByteLevel`: optionally a space before every piece that lacks one, then the GPT-2
        /// regex when `useRegex`; the byte-to-character mapping itself happens in `BytePairModel`.
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        /// `Digits`: runs of `\p{N}` scalars become pieces (each digit alone when `individual`).
        case digits(individual: Bool)
    }

    var steps: [Step]

    /// Whether a `ByteLevel` step maps the pieces to bytes (then BPE works on byte symbols).
    var isByteLevel: Bool { steps.contains { if case .byteLevel = $0 { return true }; return false } }

    /// A segment of text as scalars with their classes, and the pieces cut so far (ranges into it).
    struct Work {
        var scalars: [UInt32] = []
        var classes: [ScalarClass] = []
        var pieces: [Range<Int>] = []
        var scratch: [Range<Int>] = []

        mutating func load(_ text: Substring.UnicodeScalarView) {
            scalars.removeAll(keepingCapacity: true)
            classes.removeAll(keepingCapacity: true)
            for u in text { scalars.append(u.value); classes.append(ScalarClass.of(u.value)) }
            pieces.removeAll(keepingCapacity: true)
            if !scalars.isEmpty { pieces.append(0..<scalars.count) }
        }
    }

    func run(_ w: inout Work) {
        for step in steps {
            switch step {
            case .split(let pattern): Self.split(&w, pattern)
            case .byteLevel(let addPrefixSpace, let useRegex):
                if addPrefixSpace { Self.prefixSpaces(&w) }
                if useRegex { Self.split(&w, .gpt2) }
            case .digits(let individual): Self.digits(&w, individual: individual)
            }
        }
    }

    static func split(_ w: inout Work, _ pattern: SplitPattern) {
        w.scratch.removeAll(keepingCapacity: true)
        w.scalars.withUnsafeBufferPointer { s in
            w.classes.withUnsafeBufferPointer { c in
                for piece in w.pieces {
                    var i = piece.lowerBound
                    while i < piece.upperBound {
                        let e = pattern.matchEnd(s, c, at: i, end: piece.upperBound)
                        w.scratch.append(i..<e)
                        i = e
                    }
                }
            }
        }
        swap(&w.pieces, &w.scratch)
    }

    static func digits(_ w: inout Work, individual: Bool) {
        w.scratch.removeAll(keepingCapacity: true)
        for piece in w.pieces {
            var i = piece.lowerBound
            while i < piece.upperBound {
                let isNumber = w.classes[i] == .number
                var e = i + 1
                if !(isNumber && individual) {
                    while e < piece.upperBound, (w.classes[e] == .number) == isNumber { e += 1 }
                }
                w.scratch.append(i..<e)
                i = e
            }
        }
        swap(&w.pieces, &w.scratch)
    }

    /// `ByteLevel`'s `add_prefix_space`: every piece not starting with U+0020 gets one (the
    /// segment is rebuilt with the spaces in place, since pieces are ranges of it).
    static func prefixSpaces(_ w: inout Work) {
        guard w.pieces.contains(where: { w.scalars[$0.lowerBound] != 0x20 }) else { return }
        var scalars: [UInt32] = [], classes: [ScalarClass] = [], pieces: [Range<Int>] = []
        for piece in w.pieces {
            let start = scalars.count
            if w.scalars[piece.lowerBound] != 0x20 { scalars.append(0x20); classes.append(.space) }
            scalars.append(contentsOf: w.scalars[piece]); classes.append(contentsOf: w.classes[piece])
            pieces.append(start..<scalars.count)
        }
        w.scalars = scalars; w.classes = classes; w.pieces = pieces
    }
}
