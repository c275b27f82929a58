import Foundation
import TetherTestSupport
import TetherWire
import XCTest

/// Tether ↔ Python (pyzmq + protobuf built from proto/tether.desc), through real sockets and a real
/// Python process: the same bytes mean the same values on both sides.
final class WirePythonInteropTests: XCTestCase {
    func testMessagesDecodeWithTheSameValuesInPythonAndBack() throws {
        try PeerPython.require(running: "import zmq, google.protobuf.message_factory as m; m.GetMessageClass", "import pyzmq and protobuf >= 4.21")
        let root = WireFixtures.repositoryRoot
        let ctx = try WireContext()
        defer { ctx.close() }
        let toPython = try WireSocket(context: ctx, options: WireSocketOptions(kind: .push, bind: ["tcp://127.0.0.1:*"], name: "to-python"))
        var rx = WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"], name: "from-python")
        rx.validation = WireValidation(vocabularySize: 70_000, currentPolicyVersion: .max)
        let fromPython = try WireSocket(context: ctx, options: rx)

        let peer = PeerPython.process([root.appendingPathComponent("scripts/wire-peer.py").path, root.appendingPathComponent("proto/tether.desc").path,
                                       toPython.boundEndpoints[0], fromPython.boundEndpoints[0]])
        let stdin = Pipe(), stdout = Pipe()
        peer.standardInput = stdin
        peer.standardOutput = stdout
        try peer.run()
        defer { if peer.isRunning { peer.terminate() } }

        // Tether → Python.
        let sample = TrajectorySample(completionTokens: [0, 63, 65_535], behaviourLogProbs: [-0.5, -1.25, -0.1],
                                      tokenVersions: [7, 8, UInt64.max], reward: -2.5,
                                      rewardComponents: [RewardComponent(name: "correct", value: 1), RewardComponent(name: "länge", value: -3.5)],
                                      finishReason: .length, generationSeconds: 0.75, scoringSeconds: 0.001, rewardVersion: "rm-ä1b2")
        let group = TrajectoryGroup(ticketId: 1 << 40, actorId: "actor-π", promptId: "p-1", promptTokens: [1, 2, 3], samples: [sample])
        try toPython.send(.trajectoryGroup(group))
        let line = stdout.fileHandleForReading.readLine()
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "python printed: \(line)")
        XCTAssertEqual(json["frames"] as? Int, 1)
        let env = try XCTUnwrap(json["envelope"] as? [String: Any])
        XCTAssertEqual(env["protocol_version"] as? Int, Int(WireProtocol.version))
        let g = try XCTUnwrap(env["trajectory_group"] as? [String: Any])
        XCTAssertEqual(g["ticket_id"] as? String, String(1 << 40))  // proto3 JSON writes 64-bit integers as strings
        XCTAssertEqual(g["actor_id"] as? String, "actor-π")
        XCTAssertEqual(g["prompt_tokens"] as? [Int], [1, 2, 3])
        let s = try XCTUnwrap((g["samples"] as? [[String: Any]])?.first)
        XCTAssertEqual(s["completion_tokens"] as? [Int], [0, 63, 65_535])  // proto3 JSON omits zero scalars, not list items
        let logprobs = try XCTUnwrap(s["behaviour_logprobs"] as? [Double])
        for (a, b) in zip(logprobs, sample.behaviourLogProbs) { XCTAssertEqual(Float(a), b) }
        XCTAssertEqual(s["token_versions"] as? [String], ["7", "8", String(UInt64.max)])
        XCTAssertEqual(s["reward"] as? Double, -2.5)
        XCTAssertEqual(s["finish_reason"] as? String, "FINISH_REASON_LENGTH")
        XCTAssertEqual(s["reward_version"] as? String, "rm-ä1b2")
        let components = try XCTUnwrap(s["reward_components"] as? [[String: Any]])
        XCTAssertEqual(components.map { $0["name"] as? String }, ["correct", "länge"])
        XCTAssertEqual(components.map { $0["value"] as? Double }, [1, -3.5])

        // Python → Tether: Python's protobuf encodes these, Tether must decode the same values.
        let ticketJSON = #"{"protocol_version": 1, "rollout_ticket": {"ticket_id": "18446744073709551615", "prompts": [{"prompt_id": "q", "tokens": [4, 5, 69999]}], "group_size": 8, "sampling": {"temperature": 0.5, "top_p": 0.875, "top_k": 3, "max_new_tokens": 64, "seed": "12345678901", "stop_tokens": [2]}, "policy_version": "41", "lease_deadline_unix_ms": "-5", "task": "arithmétique"}}"#
        let controlJSON = #"{"protocol_version": 1, "control": {"kind": "CONTROL_KIND_STOP", "reason": "done"}}"#
        stdin.fileHandleForWriting.write(Data((ticketJSON + "\n" + controlJSON + "\n").utf8))
        try stdin.fileHandleForWriting.close()
        let expectedTicket = RolloutTicket(ticketId: .max, prompts: [TicketPrompt(promptId: "q", tokens: [4, 5, 69_999])], groupSize: 8,
                                           sampling: SamplingSettings(temperature: 0.5, topP: 0.875, topK: 3, maxNewTokens: 64, seed: 12_345_678_901, stopTokens: [2]),
                                           policyVersion: 41, leaseDeadlineUnixMs: -5, task: "arithmétique")
        XCTAssertEqual(fromPython.receive(timeout: 10)?.message, .rolloutTicket(expectedTicket))
        XCTAssertEqual(fromPython.receive(timeout: 10)?.message, .control(Control(kind: .stop, reason: "done", deadlineUnixMs: 0)))
        XCTAssertEqual(fromPython.counters.total, 0)
        peer.waitUntilExit()
        XCTAssertEqual(peer.terminationStatus, 0)
    }
}

private extension FileHandle {
    /// One line (without the newline), reading byte by byte so nothing after it is consumed.
    func readLine() -> String {
        var bytes: [UInt8] = []
        while true {
            let d = readData(ofLength: 1)
            if d.isEmpty || d[d.startIndex] == 0x0a { break }
            bytes.append(d[d.startIndex])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
