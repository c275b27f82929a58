import ArgumentParser

/// `tether bench …`: the speed figures of DESIGN.md's reference workload, printed, never asserted.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure throughput of the model, the tokenizer, the wire and the cluster (prints figures; --json for machines).",
        subcommands: [
            BenchModelCommand.self,
            BenchForwardCommand.self,
            BenchGEMMCommand.self,
            WireBenchCommand.self,
            BenchTokenizerCommand.self,
        ]
    )
}
