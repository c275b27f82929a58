import Foundation
import TetherKernels
import TetherModel
import XCTest

/// Forward logits against a from-scratch PyTorch Llama (rotate-half RoPE, RMSNorm, SwiGLU, GQA)
/// fed the same weights as raw float32. Skipped with the reason when no Python with torch is found.
final class TorchParityTests: XCTestCase {
    static let script = #"""
import json, sys
import numpy as np, torch
cfg = json.loads(open(sys.argv[1]).read())
w = np.fromfile(sys.argv[2], dtype=np.float32)
P = {n: torch.from_numpy(w[o:o + int(np.prod(s))].reshape(s).copy()) for n, s, o in cfg["layout"]}
B, T = cfg["batch"], cfg["length"]
tok = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.int32).reshape(B, T).astype(np.int64))
H, KV, D, eps = cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["eps"]
def rms(x, wt): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * wt
inv = 1.0 / (cfg["theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
f = torch.outer(torch.arange(T).float(), inv); emb = torch.cat([f, f], -1); cos, sin = emb.cos(), emb.sin()
def rope(x):
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin
x = P["model.embed_tokens.weight"][tok]
mask = torch.full((T, T), float("-inf")).triu(1)
for l in range(cfg["layers"]):
    p = f"model.layers.{l}."
    h = rms(x, P[p + "input_layernorm.weight"])
    q = (h @ P[p + "self_attn.q_proj.weight"].T).view(B, T, H, D).transpose(1, 2)
    k = (h @ P[p + "self_attn.k_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
    v = (h @ P[p + "self_attn.v_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
    q, k = rope(q), rope(k)
    k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
    a = torch.softmax(q @ k.transpose(-1, -2) / D ** 0.5 + mask, -1) @ v
    x = x + a.transpose(1, 2).reshape(B, T, H * D) @ P[p + "self_attn.o_proj.weight"].T
    h = rms(x, P[p + "post_attention_layernorm.weight"])
    g = torch.nn.functional.silu(h @ P[p + "mlp.gate_proj.weight"].T) * (h @ P[p + "mlp.up_proj.weight"].T)
    x = x + g @ P[p + "mlp.down_proj.weight"].T
head = P["model.embed_tokens.weight"] if cfg["tied"] else P["lm_head.weight"]
logits = rms(x, P["model.norm.weight"]) @ head.T
logits.numpy().astype(np.float32).tofile(sys.argv[4])
"""#

    nonisolated(unsafe) static var detected: String??  // probed once per test process (XCTest runs tests serially)

    func pythonWithTorch() throws -> String {
        if let d = Self.detected {
            if let d { return d }
            throw XCTSkip("no Python with torch and numpy (tried TETHER_PYTHON, /tmp/peers/bin/python, python3)")
        }
        Self.detected = .some(nil)
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["TETHER_PYTHON"] { candidates.append(env) }
        candidates += ["/tmp/peers/bin/python", "/usr/bin/python3"]
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            if (try? run(c, ["-c", "import torch, numpy"])) == 0 { Self.detected = .some(c); return c }
        }
        throw XCTSkip("no Python with torch and numpy (tried TETHER_PYTHON, /tmp/peers/bin/python, python3)")
    }

    @discardableResult
    func run(_ exe: String, _ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        let deadline = DispatchTime.now() + 120
        DispatchQueue.global().asyncAfter(deadline: deadline) { if p.isRunning { p.terminate() } }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0, args.first != "-c" {
            XCTFail("python failed: \(String(decoding: errData, as: UTF8.self))")
        }
        return p.terminationStatus
    }

    func testLogitsMatchPyTorchGQAUntied() throws { try compare(tied: false) }
    func testLogitsMatchPyTorchTied() throws { try compare(tied: true) }

    func compare(tied: Bool) throws {
        let python = try pythonWithTorch()
        let config = LlamaConfig(vocabSize: 50, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                 intermediateSize: 48, ropeTheta: 500, rmsNormEps: 1e-5, tieWordEmbeddings: tied, maxPositionEmbeddings: 32)
        let model = try LlamaModel(config: config, seed: 21, std: 0.2)
        var rng = SeededRandom(seed: 4)
        for e in model.layout.entries where e.shape.count == 1 {
            let t = model.tensor(e.name)!
            for i in 0..<t.count { t[i] = 1 + Float(rng.nextNormal()) * 0.3 }
        }
        let B = 3, T = 9
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % 50) }
        let batch = TokenBatch(tokens: tokens, batch: B, length: T)
        let ours = try model.logits(batch)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tether-parity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = model.layout.entries.map { "[\"\($0.name)\", \($0.shape), \($0.offset)]" }.joined(separator: ", ")
        let cfg = """
        {"layout": [\(layout)], "batch": \(B), "length": \(T), "heads": 4, "kv_heads": 2, "head_dim": 8, "eps": 1e-5,
         "theta": 500.0, "layers": 2, "tied": \(tied)}
        """
        try cfg.write(to: dir.appendingPathComponent("cfg.json"), atomically: true, encoding: .utf8)
        try Data(bytes: model.parameters.pointer, count: model.parameters.count * 4).write(to: dir.appendingPathComponent("w.bin"))
        try tokens.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent("t.bin")) }
        try Self.script.write(to: dir.appendingPathComponent("llama.py"), atomically: true, encoding: .utf8)
        try run(python, [dir.appendingPathComponent("llama.py").path, dir.appendingPathComponent("cfg.json").path,
                         dir.appendingPathComponent("w.bin").path, dir.appendingPathComponent("t.bin").path,
                         dir.appendingPathComponent("out.bin").path])
        let data = try Data(contentsOf: dir.appendingPathComponent("out.bin"))
        let theirs = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(theirs.count, ours.count)
        let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
        let spread = theirs.map(abs).max() ?? 0
        XCTAssertGreaterThan(spread, 0.1, "logits should not be trivially small")
        XCTAssertLessThan(worst, 2e-4, "max |tether − torch| logit difference (tied=\(tied))")
    }
}
