import Foundation

/// The status line of `tether train` and `tether sft` on stderr: redrawn in place with `\r` on a
/// terminal, plain lines (at most `linesWhenPiped` of them, plus the ones marked `force`) when
/// stderr is a file or pipe. What the line says is the caller's; `tether launch` formats its
/// learner steps with `ProgressLine`.
struct TerminalStatusLine {
    let isTerminal = isatty(STDERR_FILENO) == 1
    let totalSteps: Int
    var linesWhenPiped = 20
    private var lastWidth = 0

    init(totalSteps: Int) { self.totalSteps = totalSteps }

    mutating func update(step: Int, _ text: String, force: Bool = false) {
        if isTerminal {
            let pad = String(repeating: " ", count: max(0, lastWidth - text.count))
            lastWidth = text.count
            FileHandle.standardError.write(Data(("\r" + text + pad).utf8))
        } else if force || step == totalSteps || step % max(1, totalSteps / linesWhenPiped) == 0 {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    /// Ends the in-place line so later output starts on a fresh line.
    mutating func finish() {
        if isTerminal && lastWidth > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
        lastWidth = 0
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
