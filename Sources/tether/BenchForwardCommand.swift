import ArgumentParser
import Foundation
import TetherKernels
import TetherModel

/// `tether bench forward`: time and peak memory of one log-prob forward over a batch of random
/// tokens, as the training forward (`sequenceLogProbs`, which keeps every activation for a
/// backward) or as the forward-only pass (`tokenLogProbs`, what a reference or proximal forward
/// needs). Peak RSS is the process's high-water mark, so run one pass per process.
struct BenchForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Time and peak RSS of one log-prob forward (training forward or forward-only) over random tokens.")

    enum Pass: String, ExpressibleByArgument, CaseIterable {
        case training
        case forwardOnly = "forward-only"
    }

    @Option(help: "Model shape with random weights: \(BenchModelCommand.Shape.allCases.map(\.rawValue).joined(separator: " or ")).")
    var shape: BenchModelCommand.Shape = .smollm2_135m
    @Option(help: "Sequences in the batch.") var batch = 64
    @Option(help: "Tokens per sequence.") var length = 256
    @Option(help: "Which forward: \(Pass.allCases.map(\.rawValue).joined(separator: " or ")).") var pass: Pass = .forwardOnly
    @Option(help: "BLAS threads of this process.") var threads = 2
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        guard batch >= 1, length >= 2 else { throw ValidationError("--batch must be ≥ 1 and --length ≥ 2") }
    }

    func run() throws {
        BLASThreads.set(threads)
        let model = try LlamaModel(config: shape.config, seed: 0)
        guard length - 1 <= model.config.maxPositionEmbeddings else {
            throw ValidationError("--length \(length) exceeds the model's \(model.config.maxPositionEmbeddings) positions")
        }
        var rng = SeededRandom(seed: 1)
        let vocab = UInt64(model.config.vocabSize)
        let tokens = TokenBatch(sequences: (0..<batch).map { _ in (0..<length).map { _ in Int(rng.next() % vocab) } })
        let before = BenchModelCommand.peakResidentBytes()
        let t0 = DispatchTime.now().uptimeNanoseconds
        let out = pass == .training ? try model.sequenceLogProbs(tokens) : try model.tokenLogProbs(tokens)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let peak = BenchModelCommand.peakResidentBytes()
        let meanLogProb = out.logProbs.reduce(0, +) / Float(max(1, out.mask.reduce(0, +)))
        func mb(_ b: Int?) -> String { b.map { String((Double($0) / 1_048_576 * 10).rounded() / 10) } ?? "null" }
        let tokensPerSecond = (Double(batch * length) / seconds * 10).rounded() / 10
        if json {
            print("{\"pass\": \"\(pass.rawValue)\", \"batch\": \(batch), \"length\": \(length), \"seconds\": \(seconds), "
                  + "\"tokens_per_s\": \(tokensPerSecond), \"rss_before_mb\": \(mb(before)), \"peak_rss_mb\": \(mb(peak))}")
        } else {
            print("\(shape.rawValue), \(batch) × \(length) tokens, \(pass.rawValue): \(String(format: "%.2f", seconds)) s "
                  + "(\(tokensPerSecond) tokens/s), RSS after loading \(mb(before)) MB, peak RSS \(mb(peak)) MB, mean log-prob \(meanLogProb)")
        }
    }
}
