import ArgumentParser
import Foundation
import TetherWire

/// `tether keygen --out DIR`: a CurveZMQ key pair for a learner or an actor.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CurveZMQ key pair (Z85): DIR/NAME.pub and DIR/NAME.key (mode 0600).",
        discussion: """
        The learner's public key goes to every actor (wire.server_public_key); each actor's public \
        key goes on a line of the learner's allow-list, optionally followed by the actor's name. \
        Without keys, sockets bind to 127.0.0.1 only.
        """
    )

    @Option(help: "Directory to write the key files into (created if missing).") var out: String
    @Option(help: "File name stem of the pair.") var name = "tether"
    @Flag(help: "Replace existing key files.") var force = false

    func run() throws {
        let paths = CurveKeyPair.paths(directory: out, name: name)
        if !force, FileManager.default.fileExists(atPath: paths.secretKey) {
            throw ValidationError("\(paths.secretKey) exists; pass --force to replace it")
        }
        let keys = try CurveKeyPair.generate()
        try keys.write(directory: out, name: name)
        print("wrote \(paths.publicKey) and \(paths.secretKey)")
        print("public key: \(keys.publicKey)")
    }
}
