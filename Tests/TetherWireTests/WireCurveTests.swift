import Foundation
import TetherWire
import XCTest

final class WireCurveTests: XCTestCase {
    func testOnlyAllowListedKeysGetThrough() throws {
        let serverKeys = try CurveKeyPair.generate()
        let allowed = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let allowList = try CurveAllowList(parsing: "# actors\n\(allowed.publicKey) actor-1\n")
        let learnerContext = try WireContext(allowList: allowList)
        let actorContext = try WireContext()
        defer { actorContext.close(); learnerContext.close() }

        var rx = WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"], name: "learner")
        rx.security = .curveServer(serverKeys)
        let learner = try WireSocket(context: learnerContext, options: rx)
        let endpoint = learner.boundEndpoints

        func client(_ security: WireSecurity, _ name: String) throws -> WireSocket {
            var o = WireSocketOptions(kind: .push, connect: endpoint, name: name)
            o.security = security
            o.lingerMilliseconds = 0
            return try WireSocket(context: actorContext, options: o)
        }
        let strangerSocket = try client(.curveClient(stranger, serverPublicKey: serverKeys.publicKey), "stranger")
        let plainSocket = try client(.none, "plain")
        for (s, id) in [(strangerSocket, "stranger"), (plainSocket, "plain")] {
            for i in 0..<5 { try s.send(.heartbeat(Heartbeat(senderId: id, role: .learner, sequence: UInt64(i), sentUnixMs: 0, policyVersion: 0))) }
        }
        XCTAssertTrue(WireFixtures.eventually(5) { learnerContext.deniedConnections >= 1 }, "the ZAP handler never refused the unknown key")
        XCTAssertNil(learner.receive(timeout: 1.0), "a stranger's or a keyless message got through")

        let allowedSocket = try client(.curveClient(allowed, serverPublicKey: serverKeys.publicKey), "allowed")
        try allowedSocket.send(.heartbeat(Heartbeat(senderId: "actor-1", role: .learner, sequence: 1, sentUnixMs: 0, policyVersion: 0)))
        guard let got = learner.receive(timeout: 5) else { return XCTFail("the allowed actor got nothing through") }
        XCTAssertEqual(got.peerUserId, "actor-1", "the ZAP user id names the allowed key")
        if case .heartbeat(let h) = got.message { XCTAssertEqual(h.senderId, "actor-1") } else { XCTFail("\(got.message)") }
        XCTAssertNil(learner.receive(timeout: 0.5), "only the allowed actor's message may arrive")
        XCTAssertGreaterThanOrEqual(learnerContext.acceptedConnections, 1)
    }

    func testCurveServerWithoutAllowListIsRefused() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        var o = WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"])
        o.security = .curveServer(try CurveKeyPair.generate())
        XCTAssertThrowsError(try WireSocket(context: ctx, options: o)) { XCTAssertEqual($0 as? WireSocketError, .missingAllowList) }
    }

    func testKeysRoundTripThroughFilesAndBadKeysAreNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try CurveKeyPair.generate()
        try keys.write(directory: dir, name: "actor-1")
        XCTAssertEqual(try CurveKeyPair.load(directory: dir, name: "actor-1"), keys)
        let mode = try FileManager.default.attributesOfItem(atPath: "\(dir)/actor-1.key")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600, "the secret key must not be world-readable")
        XCTAssertThrowsError(try CurveAllowList(parsing: "\(keys.publicKey) ok\nnot-a-key bad\n", source: "allow.txt")) { e in
            XCTAssertTrue("\(e)".contains("allow.txt line 2"), "\(e)")
        }
        // '#' is a Z85 digit: a key containing it is a key, not a comment.
        let hashKey = "0#" + keys.publicKey.dropFirst(2)
        if CurveKeyPair.isValidPublicKey(hashKey) {
            let list = try CurveAllowList(parsing: "# comment line\n\(hashKey) hash-actor # trailing comment\n\(keys.publicKey)\n")
            XCTAssertEqual(list.count, 2)
            XCTAssertEqual(list.name(forPublicKey: hashKey), "hash-actor")
            XCTAssertEqual(list.name(forPublicKey: keys.publicKey), keys.publicKey)
        } else { XCTFail("test key with '#' should be valid Z85") }
        let other = try CurveKeyPair.generate()
        XCTAssertThrowsError(try CurveKeyPair(publicKey: other.publicKey, secretKey: keys.secretKey))
    }
}
