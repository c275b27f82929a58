import ArgumentParser
import TetherKernels

/// `--threads`: this process's share of the machine's cores for OpenBLAS (DESIGN.md: the BLAS
/// thread counts of all processes on a machine should sum to at most its cores).
struct BLASThreadOption: ParsableArguments {
    @Option(name: .long, help: "OpenBLAS threads for this process (the sum over processes on a machine should not exceed its cores).")
    var threads: Int = 2

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func apply() { BLASThreads.set(threads) }
}
