import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Merges the children's output line by line with a `[name]` prefix into the terminal and
/// `launch.log`; progress lines are redrawn in place on a terminal, printed as plain lines otherwise.
///
/// Two properties matter because the children are the learner and actors, whose output can carry
/// peer-supplied text: (1) a child never blocks writing its output — each pipe has its own reader
/// thread that only reads, splits and enqueues, while one writer thread does the terminal and file
/// I/O, and when the writer falls behind by more than `maxQueuedBytes` lines are dropped and counted
/// instead of stalling the readers (a pipe holds 64 KiB; a learner that blocks on a full stderr
/// stops training); (2) the work per byte is constant — each chunk is scanned once for newlines,
/// only the first `maxLineBytes` of a line are kept (the rest counted and marked), so a multi-MiB
/// line costs what its bytes cost, not their square.
final class MergedOutput: @unchecked Sendable {
    // @unchecked Sendable: all mutable state behind `lock` (a condition that also wakes the writer).
    static let maxLineBytes = 16 * 1024
    static let maxQueuedBytes = 8 << 20

    private let lock = NSCondition()
    private var queue: [(name: String, text: String)] = []
    private var queuedBytes = 0
    private var droppedLines = 0
    private var closing = false
    private var writerDone = false
    private var lastErrorLines: [String: String] = [:]
    private var openReaders = 0
    private var log: FileHandle?
    private var progressShown = false
    private let isTerminal = isatty(STDOUT_FILENO) == 1

    init() {
        let writer = Thread { [self] in writeLoop() }
        writer.name = "tether.launch.output"
        writer.start()
    }

    func open(log url: URL) {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        lock.lock(); log = try? FileHandle(forWritingTo: url); _ = try? log?.seekToEnd(); lock.unlock()
    }

    /// Waits (up to `timeout` seconds) for the readers to reach end of file and the queue to drain,
    /// then closes the log.
    func close(timeout: Double = 5) {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        while openReaders > 0 && lock.wait(until: deadline) {}
        closing = true
        lock.broadcast()
        while !writerDone && lock.wait(until: deadline) {}
        try? log?.close()
        log = nil
        lock.unlock()
    }

    /// The last line `name` wrote to stderr, for reporting why it exited.
    func lastErrorLine(of name: String) -> String? { lock.lock(); defer { lock.unlock() }; return lastErrorLines[name] }

    /// Reads `handle` on its own thread until end of file.
    func attach(_ handle: FileHandle, name: String, isErrorStream: Bool) {
        lock.lock(); openReaders += 1; lock.unlock()
        let reader = Thread { [self] in
            var splitter = LineSplitter(maxLineBytes: MergedOutput.maxLineBytes)
            let fd = handle.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                let lines = buffer.withUnsafeBufferPointer { splitter.consume(UnsafeBufferPointer(rebasing: $0[0 ..< n])) }
                enqueue(lines, from: name, isErrorStream: isErrorStream)
            }
            enqueue(splitter.finish().map { [$0] } ?? [], from: name, isErrorStream: isErrorStream)
            try? handle.close()
            lock.lock(); openReaders -= 1; lock.broadcast(); lock.unlock()
        }
        reader.name = "tether.launch.read.\(name)"
        reader.start()
    }

    /// A line from the launcher itself.
    func line(_ name: String, _ text: String) { enqueue([text], from: name, isErrorStream: false, force: true) }

    private func enqueue(_ lines: [String], from name: String, isErrorStream: Bool, force: Bool = false) {
        guard !lines.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        if isErrorStream, let last = lines.last(where: { !$0.hasPrefix(ProgressReporter.prefix) && !$0.isEmpty }) {
            lastErrorLines[name] = String(last.prefix(300))
        }
        for text in lines {
            if !force && queuedBytes + text.utf8.count > MergedOutput.maxQueuedBytes { droppedLines += 1; continue }
            queue.append((name, text))
            queuedBytes += text.utf8.count
        }
        lock.broadcast()
    }

    private func writeLoop() {
        lock.lock()
        while true {
            while queue.isEmpty && droppedLines == 0 && !closing { lock.wait() }
            if queue.isEmpty && droppedLines == 0 && closing { break }
            let batch = queue
            let dropped = droppedLines
            queue.removeAll(keepingCapacity: true)
            queuedBytes = 0
            droppedLines = 0
            lock.unlock()
            var out = ""
            var file = ""
            if dropped > 0 { emit("launch", "\(dropped) line(s) of output dropped: the terminal or log did not keep up", &out, &file) }
            for (name, text) in batch { emit(name, text, &out, &file) }
            FileHandle.standardOutput.write(Data(out.utf8))
            lock.lock()
            let log = self.log
            lock.unlock()
            log?.write(Data(file.utf8))
            lock.lock()
        }
        writerDone = true
        lock.broadcast()
        lock.unlock()
    }

    /// Appends one line to the terminal text and the log text (writer thread only).
    private func emit(_ name: String, _ text: String, _ out: inout String, _ file: inout String) {
        if name == MergedOutput.finishProgressMarker {
            if progressShown && isTerminal { out += "\n" }
            progressShown = false
            return
        }
        let prefixed = "[\(name)] \(text)"
        file += prefixed + "\n"
        if text.hasPrefix(ProgressReporter.prefix) && isTerminal {
            out += "\r\u{1B}[K" + text.dropFirst(ProgressReporter.prefix.count)
            progressShown = true
            return
        }
        if progressShown && isTerminal { out += "\r\u{1B}[K" }
        progressShown = false
        out += prefixed + "\n"
    }

    /// Ends a progress line drawn in place (queued, so it stays in order with the lines before it).
    func finishProgress() { enqueue([""], from: MergedOutput.finishProgressMarker, isErrorStream: false, force: true) }
    private static let finishProgressMarker = ""
}

/// Splits a byte stream into lines in one pass: each byte is looked at once, a line longer than
/// `maxLineBytes` keeps its head and a marker with the length of what was cut, and control
/// characters other than tab become U+FFFD so a child's output cannot move the cursor, clear the
/// screen or forge a line of its own.
struct LineSplitter {
    let maxLineBytes: Int
    private var head: [UInt8] = []
    private var cut = 0

    init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    mutating func consume(_ bytes: UnsafeBufferPointer<UInt8>) -> [String] {
        var lines: [String] = []
        var start = 0
        while start < bytes.count {
            let rest = UnsafeBufferPointer(rebasing: bytes[start...])
            let base = UnsafeRawPointer(rest.baseAddress!)
            let newline = memchr(base, 0x0A, rest.count).map { base.distance(to: UnsafeRawPointer($0)) }
            let end = newline ?? rest.count
            take(UnsafeBufferPointer(rebasing: rest[0 ..< end]))
            guard newline != nil else { break }
            lines.append(emitLine())
            start += end + 1
        }
        return lines
    }

    /// What is left after end of file, if anything.
    mutating func finish() -> String? { head.isEmpty && cut == 0 ? nil : emitLine() }

    private mutating func take(_ part: UnsafeBufferPointer<UInt8>) {
        let room = max(0, maxLineBytes - head.count)
        head.append(contentsOf: part.prefix(room))
        cut += max(0, part.count - room)
    }

    private mutating func emitLine() -> String {
        if head.last == 0x0D { head.removeLast() }
        var text = String(decoding: head, as: UTF8.self)
        if text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) {
            text = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F ? "\u{FFFD}" : $0 }))
        }
        if cut > 0 { text += " … [line truncated: \(cut) more bytes]" }
        head.removeAll(keepingCapacity: true)
        cut = 0
        return text
    }
}
