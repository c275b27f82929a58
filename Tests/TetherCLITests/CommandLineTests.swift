import Foundation
import TetherTestSupport
import XCTest

/// The command line itself: the help lists the commands, and bad input (an unknown command, an
/// unknown or malformed `--set` key) fails with the typed error's message and a non-zero status
/// before any process starts serving.
final class CommandLineTests: XCTestCase {
    func tether(_ arguments: [String]) throws -> TetherBinary.Result {
        try TetherBinary.run(arguments, in: try makeTemporaryDirectory(self, "tether-cli"), timeout: 60)
    }

    var localConfig: String { TetherBinary.packageRoot.appendingPathComponent("cluster/local.yaml").path }

    func testHelpListsTheCommands() throws {
        let r = try tether(["--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for command in ["init", "generate", "sft", "train", "eval", "learner", "actor", "launch", "import", "checkpoint", "keygen"] {
            XCTAssertNotNil(r.stdout.range(of: "\n  \(command) ", options: []) ?? r.stdout.range(of: "\n  \(command)\n"),
                            "tether --help does not list \(command):\n\(r.stdout)")
        }
        let unknown = try tether(["no-such-command"])
        XCTAssertEqual(unknown.status, 64, "a usage error exits with EX_USAGE")
        XCTAssertTrue(unknown.stderr.contains("no-such-command"), unknown.stderr)
    }

    func testUnknownSetKeyIsATypedErrorNamingTheKeyAndTheNearestOne() throws {
        let r = try tether(["learner", "--config", localConfig, "--set", "staleness.max_stalness=1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("staleness.max_stalness: unknown key; did you mean max_staleness?"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    func testMalformedSetAndOutOfRangeValueAreRefused() throws {
        let noEquals = try tether(["learner", "--config", localConfig, "--set", "staleness.max_staleness"])
        XCTAssertEqual(noEquals.status, 1, noEquals.stderr)
        XCTAssertTrue(noEquals.stderr.contains("staleness.max_staleness"), noEquals.stderr)
        let negative = try tether(["learner", "--config", localConfig, "--set", "staleness.max_staleness=-1"])
        XCTAssertEqual(negative.status, 1, negative.stderr)
        XCTAssertTrue(negative.stderr.contains("staleness.max_staleness"), negative.stderr)
    }
}
