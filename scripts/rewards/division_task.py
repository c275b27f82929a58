#!/usr/bin/env python3
"""Writes the division task of cluster/smollm2-sympy.yaml: "What is 18 divided by 4?", answered with
a fraction, where every answer is a non-integer rational. A reward only a reward service can give:
the reference is the reduced fraction (9/2), and the policy is right with any equal form — 18/4,
4.5, 4 1/2, \\frac{9}{2} — which SymPy's equivalence check (scripts/rewards/worker.py --reward math)
accepts and Tether's built-in integer verifiers cannot read.

Each prompt is a chat conversation with one worked example ("What is 7 divided by 2?" -> "7/2"),
which is what makes SmolLM2-135M-Instruct answer in a few tokens at all (without it, it explains
and is cut off: ~1-5 % of sampled completions right; with it 38.6 % at T = 1 and 84.4 % greedy on
the held-out problems, docs/reward-service.md). The held-out problems are those Tether's split puts
there (by hash of the question; 77 of 358), so this file holds both.

    python3 scripts/rewards/division_task.py > cluster/data/division.jsonl
"""
import argparse
import json
from fractions import Fraction

EXAMPLE = [{"role": "user", "content": "What is 7 divided by 2?"}, {"role": "assistant", "content": "7/2"}]


def problems(max_dividend, max_divisor):
    for b in range(2, max_divisor + 1):
        for a in range(1, max_dividend + 1):
            if a % b == 0 or (a, b) == (7, 2):
                continue
            question = f"What is {a} divided by {b}?"
            yield {"task": "division", "prompt": question, "answer": str(Fraction(a, b)),
                   "messages": EXAMPLE + [{"role": "user", "content": question}]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-dividend", type=int, default=40)
    p.add_argument("--max-divisor", type=int, default=12)
    args = p.parse_args()
    for i, record in enumerate(problems(args.max_dividend, args.max_divisor)):
        print(json.dumps({"id": f"division/{i}", **record}))


if __name__ == "__main__":
    main()
