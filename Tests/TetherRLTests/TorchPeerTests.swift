import Foundation
import TetherRL
import TetherTestSupport
import XCTest

/// Checks GRPO advantages, the clipped/decoupled policy losses (with AReaL's, IcePop/MIS's and
/// verl's sequence-level bounds on the behaviour weight) with KL and entropy terms, and
/// every aggregation mode against PyTorch autograd (the peer of `shared/peers/torch_reference.py`,
/// whose GRPO step is reproduced here in float64 with a padded batch and a mask, verl's layout).
/// Skipped with the reason when no Python with torch is found.
final class TorchPeerTests: XCTestCase {
    static let script = #"""
import json, sys, torch
torch.set_default_dtype(torch.float64)
d = json.load(sys.stdin)
lengths = d["lengths"]; B = len(lengths); T = max(lengths)
def pad(flat):
    out = torch.zeros(B, T); i = 0
    for s, n in enumerate(lengths):
        out[s, :n] = torch.tensor(flat[i:i + n]); i += n
    return out
mask = torch.zeros(B, T)
for s, n in enumerate(lengths): mask[s, :n] = 1
r = torch.tensor(d["rewards"]).view(d["prompts"], d["group"])
# The peer's line, verbatim: unbiased std, eps 1e-4.
adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1, 1)
old, ref, prox = pad(d["old"]), pad(d["ref"]), pad(d["prox"])
el, eh, beta, c = d["eps_low"], d["eps_high"], d["beta"], d["entropy_coef"]
results = {"advantages": adv.view(-1).tolist()}
for objective in ["ppo", "decoupled", "masked_is", "sequence_truncated_is"]:
    for mode in ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]:
        lp = pad(d["logp"]).requires_grad_(True)
        ent = pad(d["entropy"]).requires_grad_(True)
        if objective == "ppo":
            ratio = (lp - old).exp()
            pg = -torch.min(ratio * adv, ratio.clamp(1 - el, 1 + eh) * adv)
        else:  # AReaL: behaviour weight detached, trust region around the proximal policy
            w = (prox - old).exp()
            if objective == "masked_is":  # IcePop/MIS: weight 0 outside [1/c, c]
                c_mis = d["mis_bound"]
                w = torch.where((w >= 1 / c_mis) & (w <= c_mis), w, torch.zeros_like(w))
            elif objective == "sequence_truncated_is":  # verl's sequence-level rollout IS, truncated
                w = ((prox - old) * mask).sum(-1, keepdim=True).exp().clamp(max=d["seq_cap"]).expand(B, T)
            ratio = (lp - prox).exp()
            pg = -w * torch.min(ratio * adv, ratio.clamp(1 - el, 1 + eh) * adv)
        kl = (ref - lp).exp() - (ref - lp) - 1
        lm = pg + beta * kl - c * ent
        if mode == "token-mean": loss = (lm * mask).sum() / mask.sum()
        elif mode == "seq-mean-token-sum": loss = (lm * mask).sum(-1).mean()
        elif mode == "seq-mean-token-mean": loss = ((lm * mask).sum(-1) / mask.sum(-1)).mean()
        else: loss = (lm * mask).sum() / d["max_tokens"] / B  # verl's form, times Dr. GRPO's 1/G
        loss.backward()
        flat = lambda g: [g[s, t].item() for s, n in enumerate(lengths) for t in range(n)]
        results[objective + "/" + mode] = {"loss": loss.item(), "dlogp": flat(lp.grad), "dent": flat(ent.grad)}
print(json.dumps(results))
"""#

    func testMatchesPyTorchAutograd() throws {
        try PeerPython.require(["torch"])
        var seed: UInt64 = 12345
        func u(_ lo: Double, _ hi: Double) -> Double {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return lo + (hi - lo) * Double(seed >> 11) / Double(1 << 53)
        }
        let prompts = 3, group = 4
        let lengths = (0 ..< prompts * group).map { _ in 1 + Int(u(0, 6)) }
        let n = lengths.reduce(0, +)
        // Group 2 has all-equal rewards (no signal); the others mix.
        let rewards: [Float] = [1, 0, 0, 1, 0.5, 1, 0, 0, 1, 1, 1, 1]
        let old = (0 ..< n).map { _ in Float(u(-3, -0.1)) }
        let prox = old.map { $0 + Float(u(-0.3, 0.3)) }
        let logp = prox.map { $0 + Float(u(-0.5, 0.5)) }
        let ref = logp.map { $0 + Float(u(-0.6, 0.6)) }
        let entropy = (0 ..< n).map { _ in Float(u(0.1, 3)) }
        let maxTokens = 8
        let payload: [String: Any] = [
            "lengths": lengths, "prompts": prompts, "group": group, "rewards": rewards.map(Double.init),
            "old": old.map(Double.init), "prox": prox.map(Double.init), "logp": logp.map(Double.init), "ref": ref.map(Double.init),
            "entropy": entropy.map(Double.init), "eps_low": Double(Float(0.2)), "eps_high": Double(Float(0.28)),
            "beta": Double(Float(0.04)), "entropy_coef": Double(Float(0.01)), "max_tokens": maxTokens,
            "mis_bound": Double(Float(1.2)), "seq_cap": Double(Float(1.5)),
        ]
        let stdout = try PeerPython.run(Self.script, input: try JSONSerialization.data(withJSONObject: payload))
        let peer = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])

        let groupIDs = (0 ..< prompts * group).map { $0 / group }
        let grpo = try GRPOAdvantage.compute(rewards: rewards, groupIDs: groupIDs)
        let peerAdv = try XCTUnwrap(peer["advantages"] as? [Double])
        for (a, b) in zip(grpo.advantages, peerAdv) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        XCTAssertEqual(grpo.zeroStdGroupCount, 1)

        let layout = try SequenceLayout(lengths: lengths)
        let input = PolicyLossInput(
            layout: layout, logProbs: logp, behaviourLogProbs: old, advantages: try layout.broadcast(grpo.advantages),
            proximalLogProbs: prox, refLogProbs: ref, entropy: entropy)
        let modes: [(String, LossAggregation)] = [
            ("token-mean", .tokenMean), ("seq-mean-token-sum", .seqMeanTokenSum),
            ("seq-mean-token-mean", .seqMeanTokenMean), ("seq-mean-token-sum-norm", .seqMeanTokenSumNorm(maxTokens: maxTokens)),
        ]
        let objectives: [(String, PolicyObjective)] = [
            ("ppo", .ppoClip(epsilonLow: 0.2, epsilonHigh: 0.28)),
            ("decoupled", .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.28, behaviourWeightCap: nil, capMode: .mask)),
            ("masked_is", .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.28, behaviourWeightCap: 1.2, capMode: .maskOutside)),
            ("sequence_truncated_is", .decoupledPPO(epsilonLow: 0.2, epsilonHigh: 0.28, behaviourWeightCap: 1.5, capMode: .truncateSequence)),
        ]
        for (oname, objective) in objectives {
            for (mname, mode) in modes {
                let r = try PolicyLoss.compute(input, config: .init(objective: objective, aggregation: mode, kl: KLPenalty(beta: 0.04), entropyCoefficient: 0.01))
                let bounded = r.diagnostics.maskedFraction + r.diagnostics.truncatedFraction
                XCTAssertEqual(bounded > 0 && bounded < 1, oname == "masked_is" || oname == "sequence_truncated_is", "\(oname): the sample must exercise the rule")
                let p = try XCTUnwrap(peer[oname + "/" + mname] as? [String: Any])
                let loss = try XCTUnwrap(p["loss"] as? Double)
                XCTAssertEqual(Double(r.loss), loss, accuracy: 1e-6 + 1e-5 * abs(loss), "\(oname) \(mname)")
                let dl = try XCTUnwrap(p["dlogp"] as? [Double]), de = try XCTUnwrap(p["dent"] as? [Double])
                for t in 0 ..< n {
                    XCTAssertEqual(Double(r.dLogProbs[t]), dl[t], accuracy: 1e-7 + 1e-5 * abs(dl[t]), "\(oname) \(mname) dlogp[\(t)]")
                    XCTAssertEqual(Double(r.dEntropy![t]), de[t], accuracy: 1e-9 + 1e-5 * abs(de[t]), "\(oname) \(mname) dH[\(t)]")
                }
            }
        }
    }
}
