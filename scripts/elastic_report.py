"""Throughput vs actor count for an elastic-actors run (see scripts/elastic-actors).

Reads OUT/{metrics.jsonl, events.csv, started, run/config.yaml}; writes
  throughput.csv  per time bin: trained samples/s and the actor count at the bin's middle
  phases.csv      per schedule phase: actor count, seconds, learner steps, samples/s
  elastic.png     samples/s over wall time with the actor count (joins/leaves marked)
Usage: python scripts/elastic_report.py OUT [--bin-seconds 5] [--title TEXT]
"""
import argparse
import bisect
import csv
import json
import os


from sweep_report import read_config_int as config_int  # scripts/ is this file's directory


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--bin-seconds", type=float, default=5.0)
    ap.add_argument("--title", default="Elastic actors: learner throughput and actor count")
    a = ap.parse_args()
    out = a.out
    t0 = float(open(os.path.join(out, "started")).read())
    per_step = config_int(os.path.join(out, "run", "config.yaml"), "prompts_per_batch") * \
        config_int(os.path.join(out, "run", "config.yaml"), "group_size")
    steps = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
    if not steps:
        raise SystemExit(f"error: {out}/metrics.jsonl has no steps")
    times = [s["wall_time"] - t0 for s in steps]
    events = list(csv.DictReader(open(os.path.join(out, "events.csv"))))
    changes = [(float(e["time_s"]), int(e["actors"])) for e in events if e["event"] in ("join", "leave", "learner_start")]
    end = max(float(e["time_s"]) for e in events)

    def actors_at(t):
        i = bisect.bisect_right([c[0] for c in changes], t) - 1
        return changes[i][1] if i >= 0 else 0

    bins = []
    b = a.bin_seconds
    t = 0.0
    while t < end:
        n = sum(1 for x in times if t <= x < t + b)
        bins.append({"time_s": round(t + b / 2, 2), "steps": n, "samples_per_s": n * per_step / b, "actors": actors_at(t + b / 2)})
        t += b
    with open(os.path.join(out, "throughput.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(bins[0]))
        w.writeheader(); w.writerows(bins)

    # Phases: from one join/leave batch to the next; the first few seconds after a change are
    # included (actors load the model and fetch weights), so these are conservative averages.
    marks = []
    for tm, n in changes:
        if marks and abs(marks[-1][0] - tm) < 1.0:
            marks[-1] = (marks[-1][0], n)
        else:
            marks.append((tm, n))
    phases = []
    for i, (start, n) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else end
        inside = [s for s, x in zip(steps, times) if start <= x < stop]
        k = len(inside)
        idle = [s["learner/idle_fraction"] for s in inside if "learner/idle_fraction" in s]
        if n == 0 or stop <= start:
            continue
        phases.append({"actors": n, "start_s": round(start, 1), "seconds": round(stop - start, 1), "steps": k,
                       "samples_per_s": round(k * per_step / (stop - start), 1),
                       "learner_idle_fraction": round(sum(idle) / len(idle), 3) if idle else ""})
    with open(os.path.join(out, "phases.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(phases[0]))
        w.writeheader(); w.writerows(phases)
    for p in phases:
        print(f"  {p['actors']} actor(s) from {p['start_s']:6.1f} s for {p['seconds']:5.1f} s: {p['steps']:4d} steps, {p['samples_per_s']:7.1f} samples/s, learner idle {p['learner_idle_fraction']}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot([x["time_s"] for x in bins], [x["samples_per_s"] for x in bins], marker=".", color="tab:blue",
            label=f"trained samples/s ({b:g} s bins)")
    ax.set_xlabel("wall-clock seconds since the learner started")
    ax.set_ylabel("samples/s", color="tab:blue")
    ax.set_ylim(0, max(x["samples_per_s"] for x in bins) * 1.15)
    ax2 = ax.twinx()
    xs = [0.0] + [c[0] for c in changes] + [end]
    ys = [0] + [c[1] for c in changes] + [changes[-1][1]]
    ax2.step(xs, ys, where="post", color="tab:orange", label="actors")
    ax2.set_ylabel("actors running", color="tab:orange")
    ax2.set_ylim(0, max(ys) + 1)
    for e in events:
        if e["event"] in ("join", "leave"):
            ax.axvline(float(e["time_s"]), color="gray", alpha=0.25, lw=0.8)
    ax.grid(alpha=0.3)
    fig.legend(loc="upper left", fontsize=8, bbox_to_anchor=(0.08, 0.95))
    fig.suptitle(a.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "elastic.png"), dpi=110)
    print(f"wrote {out}/elastic.png, throughput.csv, phases.csv")


if __name__ == "__main__":
    main()
