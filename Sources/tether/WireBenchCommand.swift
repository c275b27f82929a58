import ArgumentParser
import Foundation
import TetherWire

/// `tether bench wire`: trajectory throughput into the learner and weight broadcast vs raw ZeroMQ.
struct WireBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Trajectory throughput (PUSH/PULL, 8×64-token groups) and a 40 MB weight broadcast to 4 subscribers vs raw zmq_msg_send, with and without CURVE."
    )

    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Option(help: "Trajectory groups to send.") var groups = 20_000
    @Option(help: "Float32 parameters in the broadcast.") var parameters = 10_000_000
    @Option(help: "Subscribers of the broadcast.") var subscribers = 4
    @Option(help: "Broadcast rounds per repetition.") var rounds = 3
    @Option(help: "Repetitions, alternating raw and Tether (the median over all rounds is reported).") var repetitions = 3

    func run() throws {
        let t = try WireBenchmark.trajectories(groups: groups)
        let plain = try WireBenchmark.broadcast(parameters: parameters, subscribers: subscribers, rounds: rounds, repetitions: repetitions, curve: false)
        let curve = try WireBenchmark.broadcast(parameters: parameters, subscribers: subscribers, rounds: rounds, repetitions: repetitions, curve: true)
        if json {
            let out: [String: Any] = [
                "trajectory_groups_per_s": t.groupsPerSecond, "trajectory_tokens_per_s": t.tokensPerSecond,
                "trajectory_groups": t.groups, "trajectory_tokens_per_group": t.tokensPerGroup,
                "broadcast_bytes": plain.bytes, "broadcast_subscribers": plain.subscribers,
                "broadcast_ms": plain.tetherMilliseconds, "raw_broadcast_ms": plain.rawMilliseconds, "broadcast_vs_raw": plain.ratio,
                "broadcast_curve_ms": curve.tetherMilliseconds, "raw_broadcast_curve_ms": curve.rawMilliseconds,
                "broadcast_vs_raw_curve": curve.ratio,
                "broadcast_curve_vs_raw_plain": plain.rawMilliseconds / curve.tetherMilliseconds,
            ]
            let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            func f(_ x: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", x) }
            print("trajectories  \(t.groups) groups of \(t.tokensPerGroup) tokens: \(f(t.groupsPerSecond, 0)) groups/s, \(f(t.tokensPerSecond / 1e6, 2)) M tokens/s (target ≥ 1 M)")
            for (name, r) in [("plain", plain), ("CURVE", curve)] {
                let mb = Double(r.bytes) / 1e6
                print("broadcast \(name)  \(f(mb, 0)) MB to \(r.subscribers): Tether \(f(r.tetherMilliseconds)) ms, raw zmq \(f(r.rawMilliseconds)) ms, Tether/raw bytes/s \(f(r.ratio * 100, 0)) % (target ≥ 90 %)")
            }
        }
    }
}
