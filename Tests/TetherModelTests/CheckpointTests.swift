import Foundation
import TetherKernels
import TetherModel
import TetherTestSupport
import XCTest

final class CheckpointTests: XCTestCase {
    static func randomCheckpoint(_ config: LlamaConfig = .tiny, seed: UInt64 = 7) -> LlamaCheckpoint {
        var rng = SplitMix64(seed: seed)
        return LlamaCheckpoint(config: config, parameters: rng.floats(ParameterLayout(config: config).totalCount),
                               tokenizer: .standard)
    }

    /// Rewrites model.safetensors of `dir` from the checkpoint's tensors after `edit`.
    func rewriteWeights(_ dir: String, _ ckpt: LlamaCheckpoint,
                        edit: (inout [(name: String, shape: [Int], values: [Float])]) -> Void) throws {
        var tensors = ckpt.layout.entries.map { e in
            (name: e.name, shape: e.shape, values: Array(ckpt.parameters[e.offset..<(e.offset + e.count)]))
        }
        edit(&tensors)
        let flat = tensors.flatMap(\.values)
        let data = flat.withUnsafeBufferPointer { all -> Data in
            var offset = 0
            let views = tensors.map { t -> SafeTensorsWriter.Tensor in
                defer { offset += t.values.count }
                return .init(name: t.name, shape: t.shape, values: UnsafeBufferPointer(rebasing: all[offset..<(offset + t.values.count)]))
            }
            return SafeTensorsWriter.encode(views)
        }
        try data.write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
    }

    func expectLoadError(_ dir: String, file: StaticString = #filePath, line: UInt = #line, _ check: (ModelError) -> Bool) {
        XCTAssertThrowsError(try LlamaCheckpoint.read(from: dir), file: file, line: line) { e in
            guard let m = e as? ModelError, check(m) else { return XCTFail("unexpected error \(e)", file: file, line: line) }
            print("rejected as expected: \(m)")
        }
    }

    func testSaveLoadRoundTripIsBitExact() throws {
        let root = try makeTemporaryDirectory(self)
        for config in [LlamaConfig.tiny, { var c = LlamaConfig.tiny; c.tieWordEmbeddings = true; c.rmsNormEps = 1e-5; return c }()] {
            var ckpt = Self.randomCheckpoint(config)
            let n = ckpt.parameters.count
            ckpt.trainerState = TrainerState(
                trainer: "sft", step: 17, totalSteps: 100, seed: 3, examplesSeen: 544,
                optimizer: .init(learningRate: 1e-3, weightDecay: 0.01),
                schedule: .init(peak: 1e-3, minimum: 1e-4, warmupSteps: 10, totalSteps: 100), metrics: ["loss": 1.25])
            var rng = SplitMix64(seed: 99)
            ckpt.optimizerState = OptimizerState(step: 17, firstMoment: rng.floats(n), secondMoment: rng.floats(n).map { $0 * $0 })
            let dir = root + "/ckpt-\(config.tieWordEmbeddings)"
            try ckpt.write(to: dir)
            let back = try LlamaCheckpoint.read(from: dir)
            XCTAssertEqual(back.config, config)
            XCTAssertEqual(back.tokenizer, .standard)
            XCTAssertEqual(back.parameters.map(\.bitPattern), ckpt.parameters.map(\.bitPattern))
            XCTAssertEqual(back.trainerState, ckpt.trainerState)
            XCTAssertEqual(back.optimizerState, ckpt.optimizerState)
            let names = try SafeTensorsFile.open(path: dir + "/model.safetensors").tensorNames
            XCTAssertEqual(names.contains("lm_head.weight"), !config.tieWordEmbeddings)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any]
            XCTAssertEqual(json?["architectures"] as? [String], ["LlamaForCausalLM"])
            XCTAssertEqual(json?["model_type"] as? String, "llama")
        }
        // The optional training files are absent when not given, and the result reads back without them.
        let plain = Self.randomCheckpoint()
        try plain.write(to: root + "/plain")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/plain/trainer_state.json"))
        XCTAssertNil(try LlamaCheckpoint.read(from: root + "/plain").optimizerState)
    }

    func testRewritingReplacesTheDirectoryAndLeavesNoTemporaries() throws {
        let root = try makeTemporaryDirectory(self)
        try Self.randomCheckpoint(seed: 1).write(to: root + "/c")
        try "stale".write(toFile: root + "/c/stale.txt", atomically: false, encoding: .utf8)
        let second = Self.randomCheckpoint(seed: 2)
        try second.write(to: root + "/c")
        XCTAssertEqual(try LlamaCheckpoint.read(from: root + "/c").parameters, second.parameters)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/c/stale.txt"), "old directory content must be gone")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root), ["c"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: root + "/c")),
                       ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
    }

    /// While a checkpoint is rewritten over and over, a concurrent reader always finds a complete
    /// one (the directory swap is atomic) and never a mix (weights always match one version).
    func testConcurrentReaderNeverSeesAMissingOrMixedCheckpoint() throws {
        let dir = try makeTemporaryDirectory(self) + "/c"
        let versions = [Self.randomCheckpoint(seed: 1), Self.randomCheckpoint(seed: 2)]
        try versions[0].write(to: dir)
        final class Flag: @unchecked Sendable {  // guarded by `lock`
            let lock = NSLock()
            var stop = false, reads = 0, bad: [String] = []
        }
        let flag = Flag()
        let known = Set(versions.map { $0.parameters[0].bitPattern })
        let reader = Thread {
            while flag.lock.withLock({ !flag.stop }) {
                do {
                    let c = try LlamaCheckpoint.read(from: dir)
                    let ok = known.contains(c.parameters[0].bitPattern)
                        && versions.contains { $0.parameters.last == c.parameters.last && $0.parameters[0] == c.parameters[0] }
                    flag.lock.withLock { flag.reads += 1; if !ok { flag.bad.append("mixed weights") } }
                } catch { flag.lock.withLock { flag.bad.append("\(error)") } }
            }
        }
        reader.start()
        for i in 1...30 { try versions[i % 2].write(to: dir) }
        flag.lock.withLock { flag.stop = true }
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.005) }
        print("concurrent reads during 30 rewrites: \(flag.reads)")
        XCTAssertGreaterThan(flag.reads, 0)
        XCTAssertEqual(flag.bad, [])
    }

    func testMissingTensor() throws {
        let dir = try makeTemporaryDirectory(self), ckpt = Self.randomCheckpoint()
        try ckpt.write(to: dir)
        try rewriteWeights(dir, ckpt) { $0.removeAll { $0.name == "model.layers.1.mlp.up_proj.weight" } }
        expectLoadError(dir) { $0 == .missingTensor(name: "model.layers.1.mlp.up_proj.weight", file: dir + "/model.safetensors") }
    }

    func testWrongShape() throws {
        let dir = try makeTemporaryDirectory(self), ckpt = Self.randomCheckpoint()
        try ckpt.write(to: dir)
        try rewriteWeights(dir, ckpt) { ts in
            let i = ts.firstIndex { $0.name == "model.layers.0.self_attn.k_proj.weight" }!
            ts[i].shape = [ts[i].shape[1], ts[i].shape[0]]  // transposed: same size, wrong layout
        }
        let k = ckpt.layout["model.layers.0.self_attn.k_proj.weight"]!
        expectLoadError(dir) { $0 == .shapeMismatch(name: k.name, expected: k.shape, found: [k.shape[1], k.shape[0]]) }
    }

    func testUnexpectedTensor() throws {
        let dir = try makeTemporaryDirectory(self), ckpt = Self.randomCheckpoint()
        try ckpt.write(to: dir)
        try rewriteWeights(dir, ckpt) { $0.append((name: "model.layers.2.input_layernorm.weight", shape: [64], values: .init(repeating: 1, count: 64))) }
        expectLoadError(dir) { $0 == .unexpectedTensor(name: "model.layers.2.input_layernorm.weight", file: dir + "/model.safetensors") }
    }

    func testTruncatedFile() throws {
        let dir = try makeTemporaryDirectory(self)
        try Self.randomCheckpoint().write(to: dir)
        let path = dir + "/model.safetensors"
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        try full.prefix(full.count - 100).write(to: URL(fileURLWithPath: path))
        expectLoadError(dir) { if case .truncatedFile(let p, let d) = $0 { return p == path && d.contains("lm_head.weight") } else { return false } }
        try full.prefix(20).write(to: URL(fileURLWithPath: path))
        expectLoadError(dir) { if case .truncatedFile(let p, _) = $0 { return p == path } else { return false } }
    }

    func testGarbageHeader() throws {
        let dir = try makeTemporaryDirectory(self)
        try Self.randomCheckpoint().write(to: dir)
        var bytes = Data([16, 0, 0, 0, 0, 0, 0, 0]); bytes.append(contentsOf: Array("<html>oops</html".utf8))
        try bytes.write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        expectLoadError(dir) { if case .corruptFile(let p, _) = $0 { return p == dir + "/model.safetensors" } else { return false } }
    }

    /// A checkpoint stored in BF16 (as many published ones are) loads, widened exactly to Float32;
    /// one stored in an integer dtype is refused with the tensor named.
    func testBF16CheckpointLoadsAndIntegerDTypeIsUnsupported() throws {
        let dir = try makeTemporaryDirectory(self), ckpt = Self.randomCheckpoint()
        try ckpt.write(to: dir)
        let layout = ckpt.layout
        // Round each weight to BF16 by truncation and write the file by hand: header, then 2 bytes per value.
        func writeFile(dtype: String) throws {
            var header = "{"
            var data = Data(), offset = 0
            for (i, e) in layout.entries.enumerated() {
                header += (i == 0 ? "" : ",") + "\"\(e.name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(e.shape),\"data_offsets\":[\(offset),\(offset + 2 * e.count)]}"
                offset += 2 * e.count
                for v in ckpt.parameters[e.offset..<(e.offset + e.count)] {
                    let top = UInt16(v.bitPattern >> 16)
                    data.append(UInt8(top & 0xFF)); data.append(UInt8(top >> 8))
                }
            }
            header += "}"
            try SafeTensorsTests.image(header: header, data: Array(data)).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        }
        try writeFile(dtype: "BF16")
        let back = try LlamaCheckpoint.read(from: dir)
        XCTAssertEqual(back.parameters.map(\.bitPattern), ckpt.parameters.map { $0.bitPattern & 0xFFFF_0000 })
        XCTAssertEqual(back.parameters[5], ckpt.parameters[5], accuracy: abs(ckpt.parameters[5]) / 128)
        try writeFile(dtype: "I16")
        expectLoadError(dir) { $0 == .unsupportedDType(name: "model.embed_tokens.weight", dtype: "I16") }
    }

    func testMissingFilesAndBadConfigAreNamed() throws {
        let dir = try makeTemporaryDirectory(self)
        expectLoadError(dir + "/nope") { $0 == .missingFile(path: dir + "/nope") }
        try Self.randomCheckpoint().write(to: dir)
        try FileManager.default.removeItem(atPath: dir + "/tokenizer.json")
        expectLoadError(dir) { $0 == .missingFile(path: dir + "/tokenizer.json") }
        try Self.randomCheckpoint().write(to: dir)
        try #"{"model_type": "llama", "hidden_size": 64}"#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        expectLoadError(dir) { if case .invalidConfig(let w) = $0 { return w.contains("vocab_size") } else { return false } }
        try #"{"model_type": "llama", "vocab_size": 64, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 8, "hidden_act": "gelu"}"#
            .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        expectLoadError(dir) { if case .invalidConfig(let w) = $0 { return w.contains("gelu") } else { return false } }
    }

    func testOptimizerStateErrorsAreNamed() throws {
        let dir = try makeTemporaryDirectory(self)
        var ckpt = Self.randomCheckpoint()
        let n = ckpt.parameters.count
        ckpt.optimizerState = OptimizerState(step: 3, firstMoment: .init(repeating: 0.5, count: n), secondMoment: .init(repeating: 0.25, count: n))
        try ckpt.write(to: dir)
        let path = dir + "/optimizer.safetensors"
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: path))
        expectLoadError(dir) { if case .truncatedFile(let p, _) = $0 { return p == path } else { return false } }
    }
}
