"""Tables, intervals and plots for a staleness-sweep results directory (see scripts/staleness-sweep).

Reads OUT/runs/eta-E_corr-C_seed-S/{metrics.jsonl, evals.csv, config.yaml, started} and writes
  steps.csv          every run's per-step metrics (scalars; lists as JSON), with eta, correction, seed
  evals.csv          held-out accuracy at each evaluated checkpoint, with the step and wall seconds
  runs.csv           one row per run: final accuracy (mean of the last K evaluations), samples/s, lags,
                     drops, survivorship (length and reward of generated / trained / stale groups)
  summary.md         per (correction, η): mean and 95 % confidence interval over seeds; per η the paired
                     difference of each correction against `none` (same seeds) with a bootstrap
                     interval; survivorship; the seeds a 5-point difference needs
  accuracy_vs_steps.png, accuracy_vs_wall.png   one panel per correction, one line per η, 95 % bands
  final_vs_eta.png, paired_difference.png, survivorship.png
Usage: python scripts/sweep_report.py OUT [--last-k K] [--export DOCS_DIR]
  --last-k K   final accuracy = mean of the last K held-out evaluations of a run (default 2)
  --export     copies the small files (md, csv, png, a thinned steps-compact.csv) to DOCS_DIR for committing.

Statistics (functions below, tested by scripts/test_sweep_report.py):
  cell interval   Student t: mean ± t(0.975, n−1)·s/√n over the seeds of a cell
  paired diff     d_s = acc(c, η, s) − acc(none, η, s) over seeds run in both cells (a seed gives the same
                  base weights, prompt order and sampling streams in every cell, so d_s removes the seed's
                  own luck); its interval is the percentile bootstrap of the mean of d (10 000 resamples,
                  fixed seed), beside the paired t interval
  power           seeds for a paired difference δ at two-sided α = 0.05 with 80 % power:
                  n = ((z₀.₉₇₅ + z₀.₈) · sd(d) / δ)², rounded up, from the observed sd(d)
"""
import csv
import json
import math
import os
import random
import re
import sys
from collections import defaultdict

KNOWN_CORRECTIONS = ["none", "decoupled", "truncated_is", "masked_is", "sequence_truncated_is"]
RUN_NAME = re.compile(r"^eta-(\d+)_corr-([a-z0-9_]+)_seed-(\d+)$")

# t(0.975, df) for df = 1…30, then a few anchors; between anchors interpolated linearly in 1/df.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
T975_TAIL = [(30, 2.042), (40, 2.021), (60, 2.000), (120, 1.980), (math.inf, 1.960)]
Z975, Z80 = 1.959964, 0.841621


# MARK: statistics

def t975(df):
    """The 0.975 quantile of Student's t with df degrees of freedom (a 95 % two-sided interval)."""
    if df < 1:
        return float("nan")
    if df <= 30:
        return T975[int(df) - 1]
    for (d0, t0), (d1, t1) in zip(T975_TAIL, T975_TAIL[1:]):
        if d0 <= df <= d1:
            x0, x1, x = 1 / d0, (0 if d1 == math.inf else 1 / d1), 1 / df
            return t0 + (t1 - t0) * (x0 - x) / (x0 - x1)
    return 1.960


def clean(xs):
    return [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]


def mean_std(xs):
    xs = clean(xs)
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, s


def mean_ci(xs):
    """(mean, half-width of the 95 % t interval, n); the half-width is nan for fewer than 2 values."""
    xs = clean(xs)
    m, s = mean_std(xs)
    n = len(xs)
    return m, (t975(n - 1) * s / math.sqrt(n) if n > 1 else float("nan")), n


def bootstrap_ci(xs, reps=10_000, seed=0, level=0.95):
    """Percentile bootstrap interval of the mean of xs: (low, high). Deterministic for a seed."""
    xs = clean(xs)
    if not xs:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    n = len(xs)
    means = sorted(sum(xs[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps))
    lo_i = int(math.floor((1 - level) / 2 * reps))
    hi_i = min(reps - 1, int(math.ceil((1 + level) / 2 * reps)) - 1)
    return means[lo_i], means[hi_i]


def paired_differences(values_a, values_b):
    """a − b per seed over the seeds both have: {seed: difference}."""
    return {s: values_a[s] - values_b[s] for s in sorted(set(values_a) & set(values_b))}


def seeds_for_difference(sd, delta=0.05, power_z=Z80):
    """Seeds (paired runs per cell) that resolve a mean paired difference delta at two-sided 95 %
    with the power that power_z gives (80 % by default), for paired differences of std sd."""
    if sd is None or math.isnan(sd) or sd <= 0:
        return float("nan")
    return math.ceil(((Z975 + power_z) * sd / delta) ** 2)


def final_accuracy(accuracies_by_step, k):
    """Mean of the last k evaluations (step > 0: the base at step 0 is not a result of the run)."""
    steps = sorted(s for s in accuracies_by_step if s > 0)
    if not steps:
        return float("nan")
    last = steps[-k:]
    return sum(accuracies_by_step[s] for s in last) / len(last)


# MARK: reading runs

def read_config_value(path, key, pattern=r"(\d+)"):
    """`key: value` from a resolved config.yaml (flat regex: the keys we need are unique)."""
    with open(path) as f:
        m = re.search(rf"^\s*{re.escape(key)}:\s*{pattern}", f.read(), re.M)
    return m.group(1) if m else None


def correction_order(corrs):
    return [c for c in KNOWN_CORRECTIONS if c in corrs] + sorted(c for c in corrs if c not in KNOWN_CORRECTIONS)


def survivorship(rows):
    """Group-weighted means over a run's steps of the per-step survivorship metrics."""
    out = {}
    for kind in ["generated", "trained", "stale"]:
        groups = sum(r.get(f"survivorship/{kind}_groups", 0) for r in rows)
        out[f"{kind}_groups"] = groups
        for q in ["length", "reward"]:
            num = sum(r[f"survivorship/{kind}_{q}"] * r.get(f"survivorship/{kind}_groups", 0)
                      for r in rows if f"survivorship/{kind}_{q}" in r)
            out[f"{kind}_{q}"] = num / groups if groups > 0 else float("nan")
    out["stale_fraction"] = out["stale_groups"] / out["generated_groups"] if out["generated_groups"] > 0 else float("nan")
    return out


# Per-step metrics of the policy loss that say what a correction did to the stale tokens
# (PolicyLossDiagnostics): key in metrics.jsonl -> column of runs.csv.
LOSS_DIAGNOSTICS = [("mismatch_kl", "mismatch_kl"), ("approx_kl", "approx_kl"), ("clip_fraction", "clip_fraction"),
                    ("is/masked_fraction", "masked_fraction"), ("ess", "ess_fraction")]


def loss_diagnostics(rows):
    """Unweighted means over a run's steps of the loss diagnostics (nan where a run never logged one)."""
    out = {}
    for key, column in LOSS_DIAGNOSTICS:
        vals = clean([r.get(key) for r in rows])
        out[column] = sum(vals) / len(vals) if vals else float("nan")
    return out


def load_run(run_dir, eta, corr, seed, last_k):
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl")) if line.strip()]
    train_rows = [r for r in rows if "wall_time" in r and "reward/mean" in r]
    if not train_rows:
        raise SystemExit(f"error: {run_dir}/metrics.jsonl has no training steps")
    config = os.path.join(run_dir, "config.yaml")
    batch = int(read_config_value(config, "prompts_per_batch") or 0)
    group = int(read_config_value(config, "group_size") or 0)
    mode = read_config_value(config, "mode", r"([a-z]+)") or "bound"
    started_path = os.path.join(run_dir, "started")
    first = train_rows[0]
    started = float(open(started_path).read()) if os.path.exists(started_path) else first["wall_time"] - first.get("step_seconds", 0)
    wall_at = {r["step"]: r["wall_time"] - started for r in train_rows}
    evals = []
    with open(os.path.join(run_dir, "evals.csv")) as f:
        for e in csv.DictReader(f):
            step = int(e["step"])
            evals.append({"eta": eta, "correction": corr, "seed": seed, "step": step,
                          "wall_s": 0.0 if step == 0 else wall_at.get(step, float("nan")), "accuracy": float(e["accuracy"])})
    by_step = {e["step"]: e["accuracy"] for e in evals}
    lags = [lag for r in train_rows for lag in r.get("sample_lags", [])]
    last = train_rows[-1]
    trained_groups = last["step"] * batch
    dropped = last.get("dropped/total", 0)
    wall = last["wall_time"] - started
    run = {
        "eta": eta, "correction": corr, "seed": seed, "mode": mode, "steps": last["step"],
        "final_accuracy": final_accuracy(by_step, last_k), "last_accuracy": evals[-1]["accuracy"],
        "best_accuracy": max(e["accuracy"] for e in evals), "base_accuracy": by_step.get(0, float("nan")),
        "samples_per_s": trained_groups * group / wall if wall > 0 else float("nan"),
        "wall_s": wall,
        "lag_mean": sum(lags) / len(lags) if lags else float("nan"),
        "lag_max": max((r.get("lag/max", 0) for r in train_rows), default=0),
        "dropped_fraction": dropped / (dropped + trained_groups) if trained_groups + dropped > 0 else 0.0,
        "idle_fraction": mean_std([r.get("learner/idle_fraction") for r in train_rows])[0],
        "reward_last10": mean_std([r.get("reward/mean") for r in train_rows[-10:]])[0],
    }
    run.update(survivorship(train_rows))
    run.update(loss_diagnostics(train_rows))
    # Scalars only (6 significant digits): the per-sample lists (sample_lags, trained_prompts, …)
    # stay in each run's metrics.jsonl, which keeps steps.csv small enough to commit.
    steps = [dict({"eta": eta, "correction": corr, "seed": seed},
                  **{k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in r.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)}) for r in train_rows]
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


# MARK: report

def fmt_ci(m, h, n, digits=3):
    if math.isnan(m):
        return "n/a"
    if n < 2 or math.isnan(h):
        return f"{m:.{digits}f} (n = {n})"
    return f"{m:.{digits}f} ± {h:.{digits}f}"


def fmt(x, digits=3):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def cells(runs):
    by = defaultdict(list)
    for r in runs:
        by[(r["correction"], r["eta"])].append(r)
    return by


def filled_cells(by, corrs, etas):
    """(correction, η, runs) of every cell that has runs, corrections outermost: the row order of
    every per-cell table."""
    for c in corrs:
        for eta in etas:
            if by.get((c, eta)):
                yield c, eta, by[(c, eta)]


def paired_table(runs, baseline="none"):
    """Per η and correction ≠ baseline: the paired differences and their intervals."""
    by = cells(runs)
    out = []
    for corr in correction_order({r["correction"] for r in runs}):
        if corr == baseline:
            continue
        for eta in sorted({r["eta"] for r in runs}):
            a = {r["seed"]: r["final_accuracy"] for r in by.get((corr, eta), [])}
            b = {r["seed"]: r["final_accuracy"] for r in by.get((baseline, eta), [])}
            d = paired_differences(a, b)
            if not d:
                continue
            values = list(d.values())
            m, h, n = mean_ci(values)
            lo, hi = bootstrap_ci(values)
            out.append({"eta": eta, "correction": corr, "baseline": baseline, "pairs": n, "mean_diff": m,
                        "boot_low": lo, "boot_high": hi, "t_half_width": h, "sd_diff": mean_std(values)[1],
                        "seeds_for_5pt": seeds_for_difference(mean_std(values)[1])})
    return out


def summary_markdown(out, runs, pairs, last_k, heldout_n):
    by = cells(runs)
    corrs = correction_order({k[0] for k in by})
    etas = sorted({k[1] for k in by})
    base = runs[0]["base_accuracy"]
    seeds = sorted({r["seed"] for r in runs})
    modes = sorted({r["mode"] for r in runs})
    eval_se = math.sqrt(base * (1 - base) / heldout_n) if heldout_n and not math.isnan(base) else float("nan")
    lines = [f"# Staleness sweep: {out}", "",
             f"{len(runs)} runs, {runs[0]['steps']} learner steps each, staleness mode {', '.join(modes)}, seeds {seeds}; "
             f"held-out greedy accuracy of the SFT base: {fmt(base)} on {heldout_n or '?'} distinct held-out problems "
             f"(binomial standard error of one evaluation ≈ {fmt(100 * eval_se, 1)} points at the base's accuracy).", "",
             f"Final accuracy = mean of the last {last_k} held-out evaluations of a run. Cells: mean ± half-width of the "
             "95 % Student-t interval over seeds (n = 1: no interval).", "",
             "## Final held-out accuracy", "",
             "| η | " + " | ".join(corrs) + " |", "|---|" + "---|" * len(corrs)]
    for eta in etas:
        lines.append(f"| {eta} | " + " | ".join(fmt_ci(*mean_ci([r["final_accuracy"] for r in by.get((c, eta), [])])) for c in corrs) + " |")
    if pairs:
        lines += ["", "## Paired differences against `none` (same seeds)", "",
                  "d = accuracy(correction) − accuracy(none) per seed. Bootstrap: 95 % percentile interval of the mean "
                  "(10 000 resamples of the seeds); t: mean ± t·sd/√n. \"seeds for 5 pt\": paired runs per cell that would "
                  "resolve a 5-point difference (95 %, power 80 %) at this sd.", "",
                  "| η | correction | pairs | mean d | bootstrap 95 % | t 95 % | sd(d) | seeds for 5 pt |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in pairs:
            t_iv = "n/a" if math.isnan(p["t_half_width"]) else f"[{p['mean_diff'] - p['t_half_width']:+.3f}, {p['mean_diff'] + p['t_half_width']:+.3f}]"
            lines.append(f"| {p['eta']} | {p['correction']} | {p['pairs']} | {p['mean_diff']:+.3f} | "
                         f"[{p['boot_low']:+.3f}, {p['boot_high']:+.3f}] | {t_iv} | {fmt(p['sd_diff'])} | "
                         f"{'n/a' if math.isnan(p['seeds_for_5pt']) else p['seeds_for_5pt']} |")
    lines += ["", "## Per (correction, η)", "",
              "| correction | η | runs | final acc | best acc | samples/s | wall s | mean lag | max lag | dropped |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c, eta, rs in filled_cells(by, corrs, etas):
        g = lambda k: mean_std([r[k] for r in rs])[0]
        lines.append(f"| {c} | {eta} | {len(rs)} | {fmt_ci(*mean_ci([r['final_accuracy'] for r in rs]))} | "
                     f"{fmt_ci(*mean_ci([r['best_accuracy'] for r in rs]))} | "
                     f"{g('samples_per_s'):.0f} | {g('wall_s'):.0f} | {g('lag_mean'):.2f} | "
                     f"{max(r['lag_max'] for r in rs):.0f} | {g('dropped_fraction'):.3f} |")
    lines += ["", "## Survivorship: generated vs trained vs dropped as stale", "",
              "Per sample, averaged over every step of the cell's runs (weighted by groups): completion length in tokens and "
              "reward of the groups the actors generated, the groups the learner trained on, and the groups dropped as too "
              "stale. A bound that silently prefers short, easy samples shows as trained length/reward above generated, "
              "stale length above trained.", "",
              "| correction | η | generated len | trained len | stale len | generated reward | trained reward | stale reward | stale groups | stale / generated |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c, eta, rs in filled_cells(by, corrs, etas):
        g = lambda k: mean_std([r.get(k, float("nan")) for r in rs])[0]
        lines.append(f"| {c} | {eta} | {fmt(g('generated_length'), 2)} | {fmt(g('trained_length'), 2)} | {fmt(g('stale_length'), 2)} | "
                     f"{fmt(g('generated_reward'))} | {fmt(g('trained_reward'))} | {fmt(g('stale_reward'))} | "
                     f"{sum(r.get('stale_groups', 0) for r in rs):.0f} | {fmt(g('stale_fraction'), 4)} |")
    lines += ["", "## What the loss did with the stale tokens", "",
              "Means over every step of the cell's runs: `mismatch_kl` = KL(π_behav ‖ π_θ) (k3) of the trained tokens; "
              "`approx_kl` the same against the policy the clip is centred on (π_behav for `none`, π_prox for the decoupled "
              "corrections); `clip` = fraction of tokens whose gradient PPO's clip removed; `masked` = fraction a behaviour-weight "
              "rule dropped; `ess` = effective sample size of the importance weights as a fraction of the tokens.", "",
              "| correction | η | mismatch_kl | approx_kl | clip | masked | ess |", "|---|---|---|---|---|---|---|"]
    for c, eta, rs in filled_cells(by, corrs, etas):
        g = lambda k: mean_std([r.get(k, float("nan")) for r in rs])[0]
        lines.append(f"| {c} | {eta} | {fmt(g('mismatch_kl'), 4)} | {fmt(g('approx_kl'), 4)} | {fmt(g('clip_fraction'), 4)} | "
                     f"{fmt(g('masked_fraction'), 4)} | {fmt(g('ess_fraction'), 3)} |")
    lines += ["", "samples/s: trained samples / wall time from launch to the last step (start-up included). "
              "Lags: learner version at training − version that sampled each trained sample. "
              "dropped: groups dropped (too stale) / (dropped + trained).", "",
              "![accuracy vs steps](accuracy_vs_steps.png)", "", "![final accuracy vs η](final_vs_eta.png)", "",
              "![paired differences](paired_difference.png)", "", "![accuracy vs wall-clock](accuracy_vs_wall.png)", "",
              "![survivorship](survivorship.png)", ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines))


def plot(out, runs, evals, pairs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    corrs = correction_order({e["correction"] for e in evals})
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
                ms = [mean_ci([e["accuracy"] for e in pts[s]]) for s in steps]
                ys = [m for m, _, _ in ms]
                ax.plot(xs, ys, marker="o", color=color, label=f"η = {eta}")
                hs = [0 if math.isnan(h) else h for _, h, _ in ms]
                ax.fill_between(xs, [m - h for m, h in zip(ys, hs)], [m + h for m, h in zip(ys, hs)], color=color, alpha=0.15)
            ax.legend(fontsize=8)
            ax.set_title(f"correction: {corr}")
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("held-out greedy accuracy")
        fig.suptitle("held-out accuracy, mean over seeds with 95 % t interval", fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        print(f"wrote {os.path.join(out, name)}")

    by = cells(runs)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, corr in enumerate(corrs):
        xs, ys, hs = [], [], []
        for eta in etas:
            m, h, _ = mean_ci([r["final_accuracy"] for r in by.get((corr, eta), [])])
            if not math.isnan(m):
                xs.append(eta + (i - (len(corrs) - 1) / 2) * 0.08)
                ys.append(m)
                hs.append(0 if math.isnan(h) else h)
        ax.errorbar(xs, ys, yerr=hs, marker="o", capsize=3, label=corr)
    ax.set_xlabel("η (max staleness)")
    ax.set_ylabel("final held-out accuracy")
    ax.set_title("final accuracy, mean ± 95 % t interval over seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "final_vs_eta.png"), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, corr in enumerate(sorted({p["correction"] for p in pairs}, key=lambda c: correction_order({c, *KNOWN_CORRECTIONS}).index(c))):
        ps = [p for p in pairs if p["correction"] == corr]
        xs = [p["eta"] + i * 0.08 for p in ps]
        ms = [p["mean_diff"] for p in ps]
        ax.errorbar(xs, ms, yerr=[[m - p["boot_low"] for m, p in zip(ms, ps)], [p["boot_high"] - m for m, p in zip(ms, ps)]],
                    marker="o", capsize=3, label=f"{corr} − none")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("η (max staleness)")
    ax.set_ylabel("paired accuracy difference")
    ax.set_title("paired difference, 95 % bootstrap interval", fontsize=10)
    ax.grid(alpha=0.3)
    if pairs:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "paired_difference.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, q, label in [(axes[0], "length", "completion tokens per sample"), (axes[1], "reward", "reward per sample")]:
        width = 0.8 / 3
        for j, kind in enumerate(["generated", "trained", "stale"]):
            xs, ys = [], []
            for i, eta in enumerate(etas):
                vals = clean([r.get(f"{kind}_{q}") for r in runs if r["eta"] == eta])
                if vals:
                    xs.append(i + (j - 1) * width)
                    ys.append(sum(vals) / len(vals))
            bars = ax.bar(xs, ys, width=width, label=kind)
            if kind == "stale":  # a mean over a handful of dropped groups: say how many
                for bar, eta in zip(bars, [e for e in etas if clean([r.get(f"stale_{q}") for r in runs if r["eta"] == e])]):
                    n = sum(r.get("stale_groups", 0) for r in runs if r["eta"] == eta)
                    ax.annotate(f"{n:.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                                va="bottom", fontsize=7)
        ax.set_xticks(range(len(etas)))
        ax.set_xticklabels([f"η={e}" for e in etas])
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.suptitle("survivorship: groups generated, trained, dropped as stale (all corrections; "
                 "number over a stale bar: groups dropped)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "survivorship.png"), dpi=110)
    plt.close(fig)
    print(f"wrote final_vs_eta.png, paired_difference.png, survivorship.png in {out}")


DOC_COLUMNS = ["eta", "correction", "seed", "step", "wall_time", "reward/mean", "kl", "entropy", "lag/max", "lag/p50",
               "samples_per_s", "learner/idle_fraction", "dropped/total", "weights/broadcast_latency_s",
               "survivorship/generated_length", "survivorship/trained_length", "survivorship/stale_length",
               "survivorship/generated_reward", "survivorship/trained_reward", "survivorship/stale_reward",
               "survivorship/generated_groups", "survivorship/stale_groups",
               "mismatch_kl", "approx_kl", "clip_fraction", "is/masked_fraction", "ess"]
PLOTS = ["accuracy_vs_steps.png", "accuracy_vs_wall.png", "final_vs_eta.png", "paired_difference.png", "survivorship.png"]


def export_for_docs(out, dest, steps, every=5):
    """The small files of a results dir (md, csv, png) for committing, with steps.csv thinned to
    every `every`-th step and the main columns (steps-compact.csv)."""
    import shutil
    os.makedirs(dest, exist_ok=True)
    for name in ["summary.md", "runs.csv", "evals.csv", "paired.csv", "config.yaml", "sweep.env"] + PLOTS:
        if os.path.exists(os.path.join(out, name)):
            shutil.copy(os.path.join(out, name), os.path.join(dest, name))
    rows = [{k: r.get(k, "") for k in DOC_COLUMNS} for r in steps if r["step"] % every == 0 or r["step"] == 1]
    write_csv(os.path.join(dest, "steps-compact.csv"), rows)
    print(f"exported to {dest} (steps-compact.csv: every {every}th step, {len(DOC_COLUMNS)} columns)")


def sweep_env(out):
    env = {}
    path = os.path.join(out, "sweep.env")
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def main():
    args = sys.argv[1:]
    export, last_k, rest = None, None, []
    i = 0
    while i < len(args):
        if args[i] == "--export" and i + 1 < len(args):
            export = args[i + 1]
            i += 2
        elif args[i] == "--last-k" and i + 1 < len(args):
            last_k = int(args[i + 1])
            i += 2
        else:
            rest.append(args[i])
            i += 1
    if len(rest) != 1:
        raise SystemExit("usage: python scripts/sweep_report.py RESULTS_DIR [--last-k K] [--export DOCS_DIR]")
    out = rest[0]
    env = sweep_env(out)
    if last_k is None:
        last_k = int(env.get("last_k", 2))
    if last_k < 1:
        raise SystemExit("error: --last-k must be ≥ 1")
    n_text = env.get("heldout_n_used") or env.get("heldout_n", "")
    heldout_n = int(n_text) if n_text.isdigit() else None
    runs, evals, steps = [], [], []
    for name in sorted(os.listdir(os.path.join(out, "runs"))):
        m = RUN_NAME.match(name)
        d = os.path.join(out, "runs", name)
        if not m or not os.path.exists(os.path.join(d, "evals.csv")):
            print(f"skipping {d}: not a finished run")
            continue
        r, e, s = load_run(d, int(m.group(1)), m.group(2), int(m.group(3)), last_k)
        runs.append(r); evals += e; steps += s
    if not runs:
        raise SystemExit(f"error: no finished runs under {out}/runs")
    order_list = correction_order({r["correction"] for r in runs})
    order = lambda r: (order_list.index(r["correction"]), r["eta"], r["seed"])
    runs.sort(key=order)
    pairs = paired_table(runs)
    write_csv(os.path.join(out, "runs.csv"), runs)
    write_csv(os.path.join(out, "paired.csv"), pairs)
    write_csv(os.path.join(out, "evals.csv"), sorted(evals, key=lambda e: order(e) + (e["step"],)))
    write_csv(os.path.join(out, "steps.csv"), sorted(steps, key=lambda s: order(s) + (s["step"],)), first=("eta", "correction", "seed", "step"))
    summary_markdown(out, runs, pairs, last_k, heldout_n)
    print(open(os.path.join(out, "summary.md")).read())
    plot(out, runs, evals, pairs)
    if export:
        export_for_docs(out, export, steps)


if __name__ == "__main__":
    main()
