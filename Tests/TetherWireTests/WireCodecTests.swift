import CTetherWire
import Foundation
import TetherWire
import XCTest

final class WireCodecTests: XCTestCase {
    func testEveryMessageTypeRoundTripsTypicalEmptyAndMaximal() throws {
        for (label, set) in [("typical", WireFixtures.typical), ("empty", WireFixtures.empty), ("maximal", WireFixtures.maximal)] {
            var kinds = Set<String>()
            for message in set {
                let bytes = WireCodec.encode(message)
                let back = try bytes.withUnsafeBytes { try WireCodec.decodeEnvelope($0) }
                XCTAssertEqual(back, message, "\(label) \(message.kindName) changed in a round trip")
                kinds.insert(message.kindName)
            }
            XCTAssertEqual(kinds.count, 8, "\(label) fixtures must cover all 8 message types")
        }
    }

    func testTypicalMessagesPassFullValidationWithTheirFrames() throws {
        for message in WireFixtures.typical {
            var frames = [WireCodec.encode(message)]
            var expected = message
            if case .weightsHeader(var h) = message {
                let raw = [UInt8](repeating: 3, count: 32)
                h.frameChecksums = [WireChecksum.xxh64(raw)]
                expected = .weightsHeader(h)
                frames = [WireCodec.encode(expected), raw]
            }
            let validation = WireValidation(vocabularySize: 64, currentPolicyVersion: 5, knownActors: ["actor-1"])
            XCTAssertEqual(try WireCodec.decode(frames, validation: validation), expected)
        }
    }

    func testDecodeErrorsNameTheProblem() throws {
        let valid = WireCodec.encode(.trajectoryGroup(WireFixtures.group()))
        func reason(_ frames: [[UInt8]], _ v: WireValidation = .structural) -> WireErrorReason? {
            do { _ = try WireCodec.decode(frames, validation: v); return nil } catch let e as WireError { return e.reason } catch { return nil }
        }
        XCTAssertEqual(reason([Array(valid.prefix(valid.count / 2))]), .malformedProtobuf)
        XCTAssertEqual(reason([[0xff, 0xff, 0xff, 0xff]]), .malformedProtobuf)
        XCTAssertEqual(reason([[0x08, 0x01]]), .missingMessageType)
        XCTAssertEqual(reason([[0x08, 0x01, 0xf2, 0x01, 0x00]]), .unknownMessageType)
        XCTAssertEqual(reason([[0x08, 0x02] + valid.dropFirst(2)]), .unsupportedProtocolVersion)
        XCTAssertEqual(reason([]), .frameCountMismatch)
        XCTAssertEqual(reason([valid, [1, 2]]), .frameCountMismatch)
        XCTAssertEqual(reason([valid], WireValidation(knownActors: ["someone-else"])), .unknownActor)
        XCTAssertEqual(reason([valid], WireValidation(vocabularySize: 8)), .tokenOutOfVocabulary)
        XCTAssertEqual(reason([valid], WireValidation(currentPolicyVersion: 3)), .versionFromFuture)
        XCTAssertThrowsError(try WireCodec.decode([valid], validation: WireValidation(knownActors: []))) { e in
            XCTAssertEqual(e as? WireError, .unknownActor("actor-1"))
        }
    }

    func testErrorDescriptionsSayWhatWentWrong() {
        let e = WireError.lengthMismatch(field: "trajectory_group.samples[0].behaviour_logprobs", expected: 3, got: 2)
        XCTAssertTrue(e.description.contains("behaviour_logprobs"))
        XCTAssertTrue(e.description.contains("2 entries, expected 3"))
        XCTAssertEqual(e.reason.rawValue, "length_mismatch")
    }

    func testXXH64MatchesReferenceVectors() {
        // Reference values from the xxHash project (XXH64, seed 0).
        XCTAssertEqual(WireChecksum.xxh64([]), 0xEF46DB3751D8E999)
        XCTAssertEqual(WireChecksum.xxh64(Array("a".utf8)), 0xD24EC4F1A98C6E5B)
        XCTAssertEqual(WireChecksum.xxh64(Array("abc".utf8)), 0x44BC2CF5AD770999)
        // Long input exercises the 32-byte stripe loop; the hash must depend on every byte.
        var long = [UInt8](repeating: 0, count: 1000)
        let h0 = WireChecksum.xxh64(long)
        long[999] = 1
        XCTAssertNotEqual(WireChecksum.xxh64(long), h0)
    }

    func testCommittedProtocCOutputIsNotStale() throws {
        guard let protoc = which("protoc-c") else { throw XCTSkip("protoc-c not installed (apt-get install protobuf-c-compiler): cannot check the committed C code") }
        _ = protoc
        let root = WireFixtures.repositoryRoot
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tether-gen-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = root.appendingPathComponent("scripts/gen-proto")
        p.arguments = ["--out", out.path]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "scripts/gen-proto failed")
        for (generated, committed) in [("tether.pb-c.c", "Sources/CTetherWire/tether.pb-c.c"),
                                       ("include/tether.pb-c.h", "Sources/CTetherWire/include/tether.pb-c.h"),
                                       ("tether.desc", "proto/tether.desc")] {
            let a = try Data(contentsOf: out.appendingPathComponent(generated))
            let b = try Data(contentsOf: root.appendingPathComponent(committed))
            XCTAssertEqual(a, b, "\(committed) is stale against proto/tether.proto: run scripts/gen-proto and commit")
        }
    }

    func testLoopbackEndpointsAndInsecureBindRefusal() throws {
        let ctx = try WireContext()
        defer { ctx.close() }
        XCTAssertThrowsError(try WireSocket(context: ctx, options: WireSocketOptions(kind: .pull, bind: ["tcp://0.0.0.0:0"]))) { e in
            XCTAssertEqual(e as? WireSocketError, .insecureBind("tcp://0.0.0.0:0"))
        }
        XCTAssertThrowsError(try WireSocket(context: ctx, options: WireSocketOptions(kind: .pull, bind: ["tcp://*:0"])))
        let ok = try WireSocket(context: ctx, options: WireSocketOptions(kind: .pull, bind: ["tcp://127.0.0.1:*"]))
        XCTAssertTrue(ok.boundEndpoints.first?.hasPrefix("tcp://127.0.0.1:") ?? false, "\(ok.boundEndpoints)")
        ok.close()
    }

    private func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
