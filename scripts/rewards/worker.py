#!/usr/bin/env python3
"""Tether reward worker: the reference implementation of the reward-service protocol
(proto/README.md, "Reward workers"). Standard library only, plus SymPy for `--reward math`.

An actor starts it (task.reward: service, task.reward_service.command) and speaks JSON lines:

    worker -> actor, once:  {"tether_reward_worker": 1, "version": "<reward version>"}
    actor -> worker:        {"id": 7, "samples": [{"prompt", "completion", "answer", "metadata"}, ...]}
    worker -> actor:        {"id": 7, "version": "...", "results": [{"reward": 1.0, "components": {...}}, ...]}

Rewards (--reward, a comma-separated list; the reward is the weighted sum, each term a component):
  math           1 if the completion's final answer equals the reference as SymPy sees it
                 (1/2 = 0.5 = \\frac{1}{2} = 2/4), else 0                                 component "correct"
  format_length  format: 1 if the answer is given exactly once as \\boxed{...}; length: DAPO's
                 soft overlong penalty in [-1, 0] over characters                  components "format", "length"
  exact          1 if the completion's last integer equals the reference (what Tether's built-in
                 verifier does; the trivial worker of the throughput comparison)     component "correct"

The reward version is --version when given, else a hash of this file and the arguments: a change
of code or configuration is a new version, which every sample carries to the learner.
"""
import argparse
import hashlib
import json
import math
import re
import sys

PROTOCOL = 1


# ---------------------------------------------------------------- answer extraction

def boxed_answers(text):
    """Contents of every \\boxed{...} (braces balanced)."""
    out, i = [], 0
    while True:
        i = text.find("\\boxed{", i)
        if i < 0:
            return out
        j, depth = i + len("\\boxed{"), 1
        start = j
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth:
            return out
        out.append(text[start:j - 1])
        i = j


# A number as a completion writes it: \frac{7}{2} (unboxed LaTeX), a mixed number 3 1/2, a fraction
# 7/2 or a decimal 3.5. Alternatives in that order, so the longest reading wins at each position.
NUMBER = re.compile(r"\\[dt]?frac\{[^{}]*\}\{[^{}]*\}"
                    r"|-?\d+\s+\d+\s*/\s*\d+(?!\.?\d)"
                    r"|-?\d+(?:\.\d+)?(?:\s*/\s*-?\d+(?:\.\d+)?)?")


def final_answer(completion):
    """The completion's final answer: the last \\boxed{...}, else what follows the last 'answer is'
    or 'Answer:', else the last number, fraction (7/2, \\frac{7}{2}) or mixed number (3 1/2)."""
    boxed = boxed_answers(completion)
    if boxed:
        return boxed[-1]
    m = list(re.finditer(r"(?:answer is|answer:)\s*([^\n]+)", completion, re.IGNORECASE))
    if m:
        return m[-1].group(1).strip().rstrip(".")
    numbers = NUMBER.findall(completion)
    return numbers[-1] if numbers else None


# ---------------------------------------------------------------- SymPy equivalence

def latex_to_sympy(text):
    """The LaTeX most answers use (\\frac, \\dfrac, \\sqrt, \\cdot, \\times, \\pi, \\left/\\right,
    $...$, a trailing % or degree sign) as SymPy syntax."""
    s = text.strip().strip("$").strip()
    s = re.sub(r"\\(?:left|right|displaystyle|,|!|;)", "", s)
    s = s.replace("\\%", "").replace("%", "").replace("^\\circ", "").replace("°", "")
    s = re.sub(r"\\text\{[^{}]*\}", "", s)
    s = re.sub(r"(?<![\d.])(-?)(\d+)\s*\\[dt]?frac\{(\d+)\}\{(\d+)\}", mixed_number, s)  # 3\frac{1}{2}
    for _ in range(8):  # nested fractions and roots, innermost first
        s2 = re.sub(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s2 = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s2)
        if s2 == s:
            break
        s = s2
    s = re.sub(r"\\[dt]?frac(\d)(\d)", r"((\1)/(\2))", s)
    s = s.replace("\\cdot", "*").replace("\\times", "*").replace("\\pi", "pi").replace("^", "**")
    s = s.replace("{", "(").replace("}", ")")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,000 -> 1000
    s = re.sub(r"(?<![\d.])(-?)(\d+)\s+(\d+)\s*/\s*(\d+)(?!\.?\d)", mixed_number, s)
    return s


def mixed_number(m):
    """3 1/2 is three and a half (the schoolbook reading), not 3 * 1/2 as implicit multiplication
    would parse it; only a proper fraction after a whole number reads so (2 3/2 stays a product)."""
    sign, whole, num, den = m.groups()
    if int(num) >= int(den):
        return m.group(0)
    return f"{sign}({whole}+{num}/{den})"


def sympy_value(text):
    import sympy
    from sympy.parsing.sympy_parser import parse_expr, standard_transformations, implicit_multiplication_application
    expr = latex_to_sympy(text)
    if not expr or len(expr) > 200:
        return None
    try:
        # rational=True keeps 0.5 exact (1/2), so 0.5 = 1/2 holds without a tolerance.
        value = parse_expr(expr, transformations=standard_transformations + (implicit_multiplication_application,),
                           evaluate=True)
        return sympy.nsimplify(value, rational=True) if value.is_number else value
    except Exception:
        return None


def equivalent(answer, reference):
    """Whether two answers are the same mathematical object (SymPy: their difference simplifies to 0)."""
    import sympy
    if answer is None:
        return False
    if answer.strip() == reference.strip():
        return True
    a, b = sympy_value(answer), sympy_value(reference)
    if a is None or b is None:
        return False
    try:
        return bool(sympy.simplify(a - b) == 0)
    except Exception:
        return False


# ---------------------------------------------------------------- the rewards

def reward_math(sample, args):
    return {"correct": 1.0 if equivalent(final_answer(sample["completion"]), sample["answer"]) else 0.0}


def overlong_penalty(length, max_chars, ramp_chars):
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): 0 up to max - ramp, then a ramp to -1."""
    free = max_chars - ramp_chars
    if length <= free:
        return 0.0
    if length <= max_chars:
        return (free - length) / ramp_chars
    return -1.0


def reward_format_length(sample, args):
    completion = sample["completion"]
    return {"format": 1.0 if len(boxed_answers(completion)) == 1 else 0.0,
            "length": overlong_penalty(len(completion), args.max_chars, args.ramp_chars)}


def reward_exact(sample, args):
    numbers = re.findall(r"-?\d+", sample["completion"])
    try:
        right = bool(numbers) and int(numbers[-1]) == int(sample["answer"].strip())
    except ValueError:
        right = False
    return {"correct": 1.0 if right else 0.0}


REWARDS = {"math": reward_math, "format_length": reward_format_length, "exact": reward_exact}


def score(sample, terms, weights, args):
    components = {}
    for term in terms:
        components.update(REWARDS[term](sample, args))
    reward = sum(weights.get(name, 1.0) * value for name, value in components.items())
    return {"reward": reward, "components": components}


def reward_version(argv):
    with open(__file__, "rb") as f:
        code = f.read()
    return "sha256:" + hashlib.sha256(code + b"\0" + json.dumps(argv).encode()).hexdigest()[:16]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward", default="math", help="comma-separated: " + ", ".join(REWARDS))
    p.add_argument("--weights", default="", help="name=weight,... (default 1 each), e.g. correct=1,format=0.1,length=0.5")
    p.add_argument("--max-chars", type=int, default=512)
    p.add_argument("--ramp-chars", type=int, default=256)
    p.add_argument("--version", default="", help="reward version to report (default: hash of code and arguments)")
    args = p.parse_args()
    terms = [t for t in args.reward.split(",") if t]
    for t in terms:
        if t not in REWARDS:
            p.error(f"unknown reward {t!r}; expected one of {', '.join(REWARDS)}")
    if not 1 <= args.ramp_chars <= args.max_chars:
        p.error("need 1 <= --ramp-chars <= --max-chars")
    weights = {}
    for item in filter(None, args.weights.split(",")):
        name, _, w = item.partition("=")
        weights[name] = float(w)
    if "math" in terms:
        import sympy  # noqa: F401  (fail at start, not at the first request)
    version = args.version or reward_version(sys.argv[1:])

    out = sys.stdout
    out.write(json.dumps({"tether_reward_worker": PROTOCOL, "version": version}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            results = [score(s, terms, weights, args) for s in request["samples"]]
            reply = {"id": request["id"], "version": version, "results": results}
        except Exception as e:  # a reported error is retried by the actor, never a zero reward
            reply = {"id": request.get("id"), "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
