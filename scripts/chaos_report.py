#!/usr/bin/env python3
"""Checks a chaos soak's metrics.jsonl line by line and prints its figures (scripts/test-chaos).

On every line: lag/max <= eta; the ticket accounting identities
    issued = trained + buffered + in flight + sum(lost by reason)
    sum(lost) = re-issued + pending re-issue
and trained = B x step. Across lines: steps 1..last with none missing or repeated, and no gap
between consecutive steps' wall times longer than --max-gap seconds. Exit status 1 names the
first violation.
"""
import argparse
import json
import sys

LOST = ("too_stale", "future_version", "malformed", "lease_expired", "actor_left", "learner_restart")


def fail(msg):
    print(f"test-chaos: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("metrics")
    ap.add_argument("--eta", type=int, required=True)
    ap.add_argument("--groups-per-step", type=int, required=True)
    ap.add_argument("--max-gap", type=float, required=True)
    a = ap.parse_args()

    lines = []
    with open(a.metrics) as f:
        for n, raw in enumerate(f, 1):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                fail(f"metrics.jsonl line {n} does not parse: {raw[:120]!r}")
    if len(lines) < 2:
        fail(f"only {len(lines)} metrics line(s): the run did not train")
    need = ("groups/issued", "groups/trained", "groups/buffered", "groups/in_flight", "groups/reissued",
            "groups/pending_reissue", "wall_time")
    for m in lines:
        step = m["step"]
        missing = [k for k in need if k not in m]
        if missing:
            fail(f"step {step}: metrics line lacks {missing}")
        if m.get("lag/max", 0) > a.eta:
            fail(f"step {step}: lag/max {m['lag/max']} > eta {a.eta}")
        lost = sum(m.get(f"groups/lost/{r}", 0) for r in LOST)
        if m["groups/issued"] != m["groups/trained"] + m["groups/buffered"] + m["groups/in_flight"] + lost:
            fail(f"step {step}: issued {m['groups/issued']} != trained {m['groups/trained']} + buffered "
                 f"{m['groups/buffered']} + in flight {m['groups/in_flight']} + lost {lost}")
        if lost != m["groups/reissued"] + m["groups/pending_reissue"]:
            fail(f"step {step}: lost {lost} != re-issued {m['groups/reissued']} + pending {m['groups/pending_reissue']}")
        if m["groups/trained"] != a.groups_per_step * step:
            fail(f"step {step}: {m['groups/trained']} groups trained, expected {a.groups_per_step * step}")
    steps = [m["step"] for m in lines]
    if steps != list(range(1, len(lines) + 1)):
        fail(f"steps are not 1..{len(lines)} in order (first differences at {[s for i, s in enumerate(steps, 1) if s != i][:5]})")
    times = [m["wall_time"] for m in lines]
    gaps = [(t1 - t0, s) for t0, t1, s in zip(times, times[1:], steps[1:])]
    longest, at = max(gaps)
    if longest > a.max_gap:
        fail(f"{longest:.2f} s between steps {at - 1} and {at}, longer than the bound {a.max_gap:.1f} s")
    last = lines[-1]
    lost_by = {r: int(last.get(f"groups/lost/{r}", 0)) for r in LOST if last.get(f"groups/lost/{r}", 0)}
    rejected = {k.split("/", 1)[1]: int(v) for k, v in last.items()
                if k.startswith("dropped/") and k.split("/", 1)[1] not in LOST and k != "dropped/total" and v}
    lost = sum(lost_by.values())
    span = times[-1] - times[0]
    print(f"steps: {len(lines)} in {span:.0f} s ({(len(lines) - 1) / max(span, 1e-9):.1f} steps/s); "
          f"longest gap between steps {longest:.2f} s (before step {at}; bound {a.max_gap:.1f} s)")
    print(f"tickets: issued {int(last['groups/issued'])} = trained {int(last['groups/trained'])} + buffered "
          f"{int(last['groups/buffered'])} + in flight {int(last['groups/in_flight'])} + lost {lost} {lost_by}; "
          f"lost {lost} = re-issued {int(last['groups/reissued'])} + pending {int(last['groups/pending_reissue'])}; "
          f"rejected arrivals {rejected}")
    print(f"balanced on all {len(lines)} lines, lag/max <= {a.eta} on all (max seen {max(m.get('lag/max', 0) for m in lines):g})")


if __name__ == "__main__":
    main()
