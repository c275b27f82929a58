"""TRL's GRPOTrainer and Tether's single-process trainer on the same GRPO run (driven by scripts/compare-trl).

    compare_trl.py run --tether BIN --python PY --peers-dir DIR --checkpoint DIR --out DIR
                       [--steps 3 --prompts 8 --group 8 --max-new-tokens 24 --lr 1e-5 --beta 0.04]
    compare_trl.py table DIR        # the table again from a finished comparison's directory

Both sides train the checkpoint on the prompts trl_grpo.py makes (chat-formatted one-digit
additions, "What is 3 + 4? Answer with just the number.", random.Random(0)): TRL through
../shared/peers/trl_grpo.py, Tether through `tether train` on the same prompts written as JSONL
(task `arithmetic`) with the same P, G, max new tokens, learning rate, β, clip 0.2, token-mean
loss and steps. Seconds per step are each trainer's own per-step timing (TRL's `step_time`,
Tether's rollout + update seconds in metrics.jsonl): model loading and checkpoint writing are out.
A second line compares the whole processes' wall time, start-up and model loading included, and
Tether's final checkpoint (TRL saves none).
"""
import argparse, ast, json, os, random, shutil, statistics, subprocess, sys, time


def trl_prompts(steps, prompts):
    """The rows trl_grpo.py trains on, in its order (same generator, same seed)."""
    rng = random.Random(0)
    rows = []
    for i in range(max(256, steps * prompts)):
        x, y = rng.randint(0, 9), rng.randint(0, 9)
        rows.append({"id": f"add-{i}", "task": "arithmetic",
                     "prompt": f"What is {x} + {y}? Answer with just the number.", "answer": str(x + y)})
    return rows


def decimal(x):
    """A float as plain decimals (YAML 1.1 reads `1e-05` as a string)."""
    return f"{x:.12f}".rstrip("0").rstrip(".")


def tether_config(a, dataset):
    """The run config of `tether train`: every key that the TRL run fixes, stated."""
    return f"""# Written by scripts/compare-trl: the TRL run's settings for `tether train`.
model:
  checkpoint: {os.path.abspath(a.checkpoint)}
task:
  name: jsonl
  dataset_path: {dataset}
  max_prompt_tokens: 64
algorithm:
  name: grpo
  kl_beta: {decimal(a.beta)}
  kl_estimator: k3
  clip_eps_low: 0.2
  clip_eps_high: 0.2
  loss_aggregation: token_mean
  epochs_per_batch: 1
  minibatches: 1
rollout:
  group_size: {a.group}
  prompts_per_batch: {a.prompts}
  max_new_tokens: {a.max_new_tokens}
  temperature: 1.0
learner:
  learning_rate: {decimal(a.lr)}
checkpoint:
  every_steps: {a.steps}
  keep: 1
run:
  steps: {a.steps}
  out_dir: {a.out}
  name: tether
"""


def run_logged(argv, log):
    """Runs argv with stdout and stderr in `log`, unbuffered, so an interrupted run keeps what it
    printed. Returns the exit status, the output and the wall seconds."""
    print("== " + " ".join(argv) + f"   (log: {log})", file=sys.stderr, flush=True)
    start = time.monotonic()
    with open(log, "w") as f:
        p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.monotonic() - start
    with open(log, errors="replace") as f:
        return p.returncode, f.read(), seconds


def parse_trl(stdout, returncode):
    """trl_grpo.py's JSON line, or what an interrupted run logged before it stopped."""
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    if returncode == 0 and lines:
        trl = json.loads(lines[-1])
    else:
        # Interrupted (killed on a busy machine): the Trainer's per-step log lines remain
        # (`{'loss': '0.01', 'reward': '0.14', 'step_time': '151.2', ...}`, floats as strings).
        steps = [ast.literal_eval(l) for l in lines if l.startswith("{'")]
        steps = [{"reward": float(d["reward"]), "step_time": float(d["step_time"])} for d in steps if "reward" in d and "step_time" in d]
        trl = {"steps_log": steps, "unavailable": f"exit {returncode} after {len(steps)} steps, see trl.log"}
    return trl


def run_trl(a, trl_json):
    returncode, output, seconds = run_logged([a.python, os.path.join(a.peers_dir, "trl_grpo.py"), "--checkpoint", a.checkpoint, "--steps", str(a.steps),
                    "--prompts", str(a.prompts), "--group", str(a.group), "--max-new-tokens", str(a.max_new_tokens),
                    "--lr", str(a.lr), "--beta", str(a.beta), "--out", os.path.join(a.out, "trl")],
                   os.path.join(a.out, "trl.log"))
    trl = parse_trl(output, returncode)
    trl["process_seconds"] = round(seconds, 1)
    with open(trl_json, "w") as f:
        json.dump(trl, f)


def run(a):
    os.makedirs(a.out, exist_ok=True)
    dataset = os.path.join(a.out, "prompts.jsonl")
    with open(dataset, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in trl_prompts(a.steps, a.prompts))
    config = os.path.join(a.out, "tether.yaml")
    with open(config, "w") as f:
        f.write(tether_config(a, dataset))

    trl_json = os.path.join(a.out, "trl.json")
    if a.reuse_trl and os.path.exists(trl_json):
        print(f"== reusing TRL's run in {trl_json}", file=sys.stderr)
    else:
        run_trl(a, trl_json)
    run_dir = os.path.join(a.out, "tether")
    shutil.rmtree(run_dir, ignore_errors=True)
    returncode, _, seconds = run_logged([a.tether, "train", "--config", config, "--out", run_dir, "--eval-prompts", "0"],
                                        os.path.join(a.out, "tether.log"))
    with open(os.path.join(a.out, "tether.json"), "w") as f:
        json.dump({"process_seconds": round(seconds, 1), "exit": returncode}, f)
    if returncode != 0:
        print(f"tether train failed (exit {returncode}); see {a.out}/tether.log", file=sys.stderr)
    print(table(a.out))


def tether_steps(run_dir):
    """(step, seconds, reward) per RL step of metrics.jsonl (evaluation records carry no reward)."""
    out = []
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            s = r.get("scalars", r)
            if "reward/mean" in s:
                out.append((r["step"], s["step_seconds"], s["reward/mean"]))
    return out


def fmt(x, spec=".1f"):
    return "—" if x is None else format(x, spec)


def table(out_dir):
    with open(os.path.join(out_dir, "trl.json")) as f:
        trl = json.load(f)
    trl_log = trl.get("steps_log", [])
    tether = tether_steps(os.path.join(out_dir, "tether"))
    rows = [f"{'step':>4}  {'TRL s':>8} {'TRL reward':>11}  {'Tether s':>8} {'Tether reward':>14}", "-" * 52]
    for i in range(max(len(trl_log), len(tether))):
        t = trl_log[i] if i < len(trl_log) else {}
        m = tether[i] if i < len(tether) else (None, None, None)
        rows.append(f"{i + 1:>4}  {fmt(t.get('step_time')):>8} {fmt(t.get('reward'), '.3f'):>11}  {fmt(m[1]):>8} {fmt(m[2], '.3f'):>14}")
    trl_s = [t["step_time"] for t in trl_log if isinstance(t.get("step_time"), (int, float))]
    trl_mean = statistics.mean(trl_s) if trl_s else trl.get("seconds_per_step")
    tether_mean = statistics.mean(m[1] for m in tether) if tether else None
    rows.append("-" * 52)
    rows.append(f"{'mean':>4}  {fmt(trl_mean):>8} {fmt(mean_of([t.get('reward') for t in trl_log]), '.3f'):>11}  "
                f"{fmt(tether_mean):>8} {fmt(mean_of([m[2] for m in tether]), '.3f'):>14}")
    if "unavailable" in trl:
        rows.append(f"TRL: incomplete ({trl['unavailable']})")
    if not tether:
        rows.append("Tether: no steps in metrics.jsonl (see tether.log)")
    if trl_mean and tether_mean:
        rows.append(f"Tether is {trl_mean / tether_mean:.1f}× faster per step than TRL's GRPOTrainer "
                    f"(TRL's trainer.train() wall time per step, its own overhead included: {fmt(trl.get('seconds_per_step'))} s)")
    trl_process, tether_process = trl.get("process_seconds"), tether_process_seconds(out_dir)
    if trl_process and tether_process:
        rows.append(f"Whole processes, start-up, model loading and checkpoint writing included: TRL {trl_process:.0f} s, "
                    f"Tether {tether_process:.0f} s, {trl_process / tether_process:.1f}×")
    return "\n".join(rows)


def tether_process_seconds(out_dir):
    try:
        with open(os.path.join(out_dir, "tether.json")) as f:
            return json.load(f).get("process_seconds")
    except (OSError, ValueError):
        return None


def mean_of(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.mean(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run", help="run TRL, then Tether, and print the table")
    r.add_argument("--tether", required=True, help="the tether binary (release build)")
    r.add_argument("--python", required=True, help="Python with torch, transformers, trl and datasets")
    r.add_argument("--peers-dir", required=True, help="the folder of trl_grpo.py")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--out", required=True, help="directory for prompts, config, logs and both runs")
    r.add_argument("--steps", type=int, default=3)
    r.add_argument("--prompts", type=int, default=8)
    r.add_argument("--group", type=int, default=8)
    r.add_argument("--max-new-tokens", type=int, default=24)
    r.add_argument("--lr", type=float, default=1e-5)
    r.add_argument("--beta", type=float, default=0.04)
    r.add_argument("--reuse-trl", action="store_true", help="keep DIR/trl.json from an earlier run (same settings) instead of running TRL")
    t = sub.add_parser("table", help="print the table of a finished comparison directory")
    t.add_argument("dir")
    a = ap.parse_args()
    if a.mode == "run":
        run(a)
    else:
        print(table(a.dir))


if __name__ == "__main__":
    main()
