import ArgumentParser
import Foundation
import TetherCluster

/// `tether actor`: samples and scores groups for the learner's tickets.
struct ActorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actor",
        abstract: "Run an actor: join the learner, take tickets, sample groups with the KV cache, score them, push them.")

    @OptionGroup var configOptions: ClusterConfigOptions
    @OptionGroup var blas: BLASThreadOption

    @Option(name: .long, help: "This actor's name (unique in the cluster).")
    var id: String = "actor-\(getpid())"

    @Option(name: .long, help: "Sleep this many seconds before pushing each group (simulates a slow actor, for fault tests).")
    var simulateSlowSeconds: Double = 0

    func run() async throws {
        blas.apply()
        StopSignal.install(ignoreInterrupt: ProcessInfo.processInfo.environment["TETHER_IGNORE_SIGINT"] == "1")
        let config = try configOptions.load()
        let actor = try ActorProcess(config: config, actorID: id, logger: clusterLogger("tether.\(id)"))
        actor.simulatedDelaySeconds = simulateSlowSeconds
        nonisolated(unsafe) let unsafeActor = actor  // handed to exactly one thread, which owns it from here on
        try await runOnDedicatedThread(name: "tether.actor") { try unsafeActor.run() }
    }
}
