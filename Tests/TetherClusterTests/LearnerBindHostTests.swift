import Foundation
import TetherCluster
import TetherWire
import XCTest

/// `learner.bind_host`: actors connect to `tcp://<learner-node>:PORT` while the learner binds the
/// same port on all interfaces (the multi-node layout of cluster/slurm/tether.sbatch).
final class LearnerBindHostTests: XCTestCase {
    func testBindHostKeepsEachEndpointsPortAndLeavesTheConnectSideAlone() throws {
        let config = try RunConfig.load(yaml: "", overrides: [
            "learner.control_endpoint=tcp://node-a.cluster:6100", "learner.trajectory_endpoint=tcp://node-a.cluster:6101",
            "learner.weights_endpoint=ipc:///tmp/tether-weights", "learner.bind_host=\"*\""])
        XCTAssertEqual(config.learnerBindEndpoint(.control), "tcp://*:6100")
        XCTAssertEqual(config.learnerBindEndpoint(.trajectories), "tcp://*:6101")
        XCTAssertEqual(config.learnerBindEndpoint(.weights), "ipc:///tmp/tether-weights", "non-tcp endpoints are bound as written")
        XCTAssertEqual(config.learner.controlEndpoint, "tcp://node-a.cluster:6100")

        let unset = try RunConfig.load(yaml: "")
        XCTAssertEqual(unset.learnerBindEndpoint(.control), unset.learner.controlEndpoint)
    }

    func testBadBindHostsAreErrorsNamingTheKey() {
        for (overrides, key) in [(["learner.bind_host=tcp://0.0.0.0"], "learner.bind_host"),
                                 (["learner.bind_host=0.0.0.0", "learner.control_endpoint=tcp://node-a"], "learner.control_endpoint")] {
            XCTAssertThrowsError(try RunConfig.load(yaml: "", overrides: overrides)) { error in
                guard case let ConfigError.invalidValue(path, _) = error else { return XCTFail("\(overrides): \(error)") }
                XCTAssertEqual(path, key)
            }
        }
    }

    /// A real ROUTER bound where the learner would bind, reached by a DEALER through this machine's
    /// host name, the way an actor on another node connects.
    func testADealerConnectingByHostNameReachesTheBoundPort() throws {
        let host = ProcessInfo.processInfo.hostName
        let port = try FreePort.pick()[0]
        let config = try RunConfig.load(yaml: "", overrides: [
            "learner.control_endpoint=tcp://\(host):\(port)", "learner.bind_host=0.0.0.0"])
        let context = try WireContext()
        defer { context.close() }
        var bound = WireSocketOptions(kind: .router, bind: [config.learnerBindEndpoint(.control)], name: "learner.control")
        bound.allowInsecureBind = true
        let router = try WireSocket(context: context, options: bound)
        let dealer = try WireSocket(context: context, options: WireSocketOptions(kind: .dealer, connect: [config.learner.controlEndpoint], name: "actor"))
        defer { dealer.close(); router.close() }
        try dealer.send(.heartbeat(Heartbeat(senderId: "actor-x", role: .actor, sequence: 1, sentUnixMs: 0, policyVersion: 0)), timeout: 5)
        let received = try XCTUnwrap(router.receive(timeout: 10), "nothing arrived on \(config.learnerBindEndpoint(.control)) from \(config.learner.controlEndpoint)")
        guard case let .heartbeat(h) = received.message else { return XCTFail("unexpected \(received.message)") }
        XCTAssertEqual(h.senderId, "actor-x")
        XCTAssertNotNil(router.boundEndpoints.first { $0.hasPrefix("tcp://0.0.0.0:") }, "bound \(router.boundEndpoints), not all interfaces")
    }
}
