"""Tables and plots for a staleness-sweep results directory (see scripts/staleness-sweep).

Reads OUT/runs/eta-E_corr-C_seed-S/{metrics.jsonl, evals.csv, config.yaml, started} and writes
  steps.csv          every run's per-step metrics (scalars; lists as JSON), with eta, correction, seed
  evals.csv          held-out accuracy at each evaluated checkpoint, with the step and wall seconds
  runs.csv           one row per run: final held-out accuracy, samples/s, wall time, lags, drops
  summary.md         mean ± std over seeds per (correction, η), and an AReaL-style η × correction table
  accuracy_vs_steps.png, accuracy_vs_wall.png   one panel per correction, one line per η
Usage: python scripts/sweep_report.py OUT [--export DOCS_DIR]
  --export copies the small files (md, csv, png, a thinned steps-compact.csv) to DOCS_DIR for committing.
"""
import csv
import json
import math
import os
import re
import sys
from collections import defaultdict

CORRECTION_ORDER = ["none", "decoupled", "truncated_is", "masked_is", "sequence_truncated_is"]
RUN_NAME = re.compile(r"^eta-(\d+)_corr-([a-z_]+)_seed-(\d+)$")


def read_config_int(path, key):
    """`key: N` from a resolved config.yaml (flat regex: the keys we need are unique)."""
    with open(path) as f:
        m = re.search(rf"^\s*{re.escape(key)}:\s*(\d+)", f.read(), re.M)
    if not m:
        raise SystemExit(f"error: {path} has no {key}")
    return int(m.group(1))


def mean_std(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


def load_run(run_dir, eta, corr, seed):
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl")) if line.strip()]
    if not rows:
        raise SystemExit(f"error: {run_dir}/metrics.jsonl is empty")
    config = os.path.join(run_dir, "config.yaml")
    batch = read_config_int(config, "prompts_per_batch")
    group = read_config_int(config, "group_size")
    started_path = os.path.join(run_dir, "started")
    started = float(open(started_path).read()) if os.path.exists(started_path) else rows[0]["wall_time"] - rows[0].get("step_seconds", 0)
    wall_at = {r["step"]: r["wall_time"] - started for r in rows}
    evals = []
    with open(os.path.join(run_dir, "evals.csv")) as f:
        for e in csv.DictReader(f):
            step = int(e["step"])
            evals.append({"eta": eta, "correction": corr, "seed": seed, "step": step,
                          "wall_s": 0.0 if step == 0 else wall_at.get(step, float("nan")), "accuracy": float(e["accuracy"])})
    lags = [lag for r in rows for lag in r.get("sample_lags", [])]
    last = rows[-1]
    trained_groups = last["step"] * batch
    dropped = last.get("dropped/total", 0)
    wall = last["wall_time"] - started
    run = {
        "eta": eta, "correction": corr, "seed": seed, "steps": last["step"],
        "final_accuracy": evals[-1]["accuracy"], "best_accuracy": max(e["accuracy"] for e in evals),
        "base_accuracy": evals[0]["accuracy"],
        "samples_per_s": trained_groups * group / wall if wall > 0 else float("nan"),
        "wall_s": wall,
        "lag_mean": sum(lags) / len(lags) if lags else float("nan"),
        "lag_max": max((r.get("lag/max", 0) for r in rows), default=0),
        "dropped_fraction": dropped / (dropped + trained_groups) if trained_groups + dropped > 0 else 0.0,
        "idle_fraction": mean_std([r.get("learner/idle_fraction") for r in rows])[0],
        "reward_last10": mean_std([r.get("reward/mean") for r in rows[-10:]])[0],
    }
    # Scalars only (6 significant digits): the per-sample lists (sample_lags, trained_prompts, …)
    # stay in each run's metrics.jsonl, which keeps steps.csv small enough to commit.
    steps = [dict({"eta": eta, "correction": corr, "seed": seed},
                  **{k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in r.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)}) for r in rows]
    return run, evals, steps


def write_csv(path, rows, first=()):
    keys = list(first)
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else v for k, v in r.items()})


def fmt(m, s, digits=3, n=2):
    if math.isnan(m):
        return "n/a"
    return f"{m:.{digits}f}" if n < 2 else f"{m:.{digits}f} ± {s:.{digits}f}"


def summary_markdown(out, runs):
    by = defaultdict(list)
    for r in runs:
        by[(r["correction"], r["eta"])].append(r)
    corrs = [c for c in CORRECTION_ORDER if any(k[0] == c for k in by)]
    etas = sorted({k[1] for k in by})
    base = runs[0]["base_accuracy"]
    seeds = sorted({r["seed"] for r in runs})
    lines = [f"# Staleness sweep: {out}", "",
             f"{len(runs)} runs, {runs[0]['steps']} learner steps each, seeds {seeds}; "
             f"held-out greedy accuracy of the SFT base: {base:.3f}.", "",
             "## Final held-out accuracy (mean ± std over seeds)", "",
             "| η | " + " | ".join(corrs) + " |", "|---|" + "---|" * len(corrs)]
    for eta in etas:
        cells = [fmt(*mean_std([r["final_accuracy"] for r in by.get((c, eta), [])]), n=len(by.get((c, eta), []))) for c in corrs]
        lines.append(f"| {eta} | " + " | ".join(cells) + " |")
    lines += ["", "## Per (correction, η)", "",
              "| correction | η | runs | final acc | best acc | samples/s | wall s | mean lag | max lag | dropped |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in corrs:
        for eta in etas:
            rs = by.get((c, eta), [])
            if not rs:
                continue
            g = lambda k: mean_std([r[k] for r in rs])
            lines.append(f"| {c} | {eta} | {len(rs)} | {fmt(*g('final_accuracy'), n=len(rs))} | {fmt(*g('best_accuracy'), n=len(rs))} | "
                         f"{g('samples_per_s')[0]:.0f} | {g('wall_s')[0]:.0f} | {g('lag_mean')[0]:.2f} | "
                         f"{max(r['lag_max'] for r in rs):.0f} | {g('dropped_fraction')[0]:.3f} |")
    lines += ["", "samples/s: trained samples / wall time from launch to the last step (start-up included). "
              "Lags: learner version at training − version that sampled each trained sample; max lag ≤ η. "
              "dropped: groups dropped (too stale) / (dropped + trained).", "",
              "![accuracy vs steps](accuracy_vs_steps.png)", "", "![accuracy vs wall-clock](accuracy_vs_wall.png)", ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines))


def plot(out, evals):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    corrs = [c for c in CORRECTION_ORDER if any(e["correction"] == c for e in evals)]
    etas = sorted({e["eta"] for e in evals})
    colors = plt.cm.viridis([i / max(1, len(etas) - 1) for i in range(len(etas))])
    for xkey, xlabel, name in [("step", "learner step", "accuracy_vs_steps.png"),
                               ("wall_s", "wall-clock seconds since launch", "accuracy_vs_wall.png")]:
        fig, axes = plt.subplots(1, len(corrs), figsize=(4.2 * len(corrs), 3.6), sharey=True, squeeze=False)
        for ax, corr in zip(axes[0], corrs):
            for eta, color in zip(etas, colors):
                pts = defaultdict(list)
                for e in evals:
                    if e["correction"] == corr and e["eta"] == eta:
                        pts[e["step"]].append(e)
                if not pts:
                    continue
                steps = sorted(pts)
                xs = [mean_std([e[xkey] for e in pts[s]])[0] for s in steps]
                ms = [mean_std([e["accuracy"] for e in pts[s]]) for s in steps]
                ys = [m for m, _ in ms]
                ax.plot(xs, ys, marker="o", color=color, label=f"η = {eta}")
                ax.fill_between(xs, [m - s for m, s in ms], [m + s for m, s in ms], color=color, alpha=0.15)
            ax.legend(fontsize=8)
            ax.set_title(f"correction: {corr}")
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("held-out greedy accuracy")
        fig.suptitle("held-out accuracy (mean ± std over seeds)", fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        print(f"wrote {os.path.join(out, name)}")


DOC_COLUMNS = ["eta", "correction", "seed", "step", "wall_time", "reward/mean", "kl", "entropy", "lag/max", "lag/p50",
               "samples_per_s", "learner/idle_fraction", "dropped/total", "weights/broadcast_latency_s"]


def export_for_docs(out, dest, steps, every=5):
    """The small files of a results dir (md, csv, png) for committing, with steps.csv thinned to
    every `every`-th step and the main columns (steps-compact.csv)."""
    import shutil
    os.makedirs(dest, exist_ok=True)
    for name in ["summary.md", "runs.csv", "evals.csv", "config.yaml", "sweep.env", "accuracy_vs_steps.png", "accuracy_vs_wall.png"]:
        shutil.copy(os.path.join(out, name), os.path.join(dest, name))
    rows = [{k: r.get(k, "") for k in DOC_COLUMNS} for r in steps if r["step"] % every == 0 or r["step"] == 1]
    write_csv(os.path.join(dest, "steps-compact.csv"), rows)
    print(f"exported to {dest} (steps-compact.csv: every {every}th step, {len(DOC_COLUMNS)} columns)")


def main():
    args = sys.argv[1:]
    export = None
    if len(args) == 3 and args[1] == "--export":
        export = args[2]
        args = args[:1]
    if len(args) != 1:
        raise SystemExit("usage: python scripts/sweep_report.py RESULTS_DIR [--export DOCS_DIR]")
    out = args[0]
    runs, evals, steps = [], [], []
    for name in sorted(os.listdir(os.path.join(out, "runs"))):
        m = RUN_NAME.match(name)
        d = os.path.join(out, "runs", name)
        if not m or not os.path.exists(os.path.join(d, "evals.csv")):
            print(f"skipping {d}: not a finished run")
            continue
        r, e, s = load_run(d, int(m.group(1)), m.group(2), int(m.group(3)))
        runs.append(r); evals += e; steps += s
    if not runs:
        raise SystemExit(f"error: no finished runs under {out}/runs")
    order = lambda r: (CORRECTION_ORDER.index(r["correction"]), r["eta"], r["seed"])
    runs.sort(key=order)
    write_csv(os.path.join(out, "runs.csv"), runs)
    write_csv(os.path.join(out, "evals.csv"), sorted(evals, key=lambda e: order(e) + (e["step"],)))
    write_csv(os.path.join(out, "steps.csv"), sorted(steps, key=lambda s: order(s) + (s["step"],)), first=("eta", "correction", "seed", "step"))
    summary_markdown(out, runs)
    print(open(os.path.join(out, "summary.md")).read())
    plot(out, evals)
    if export:
        export_for_docs(out, export, steps)


if __name__ == "__main__":
    main()
