#!/usr/bin/env python3
"""Unit tests of the reference reward worker (scripts/rewards/worker.py): SymPy answer equivalence,
answer extraction, the format and length terms, and the protocol through a real subprocess.
Run by scripts/test; by hand: python3 scripts/rewards/test_worker.py"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


class Equivalence(unittest.TestCase):
    def test_same_number_in_different_forms(self):
        for a, b in [("1/2", "0.5"), ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "1/2"), ("2/4", "1/2"),
                     ("\\dfrac{3}{4}", "0.75"), ("-\\frac{1}{3}", "-1/3"), ("1,000", "1000"), ("50\\%", "50"),
                     ("2\\sqrt{2}", "\\sqrt{8}"), ("\\frac{\\pi}{2}", "pi/2"), ("3.0", "3"), ("x^2 - 1", "(x-1)(x+1)")]:
            with self.subTest(a=a, b=b):
                self.assertTrue(worker.equivalent(a, b))

    def test_different_numbers(self):
        for a, b in [("1/2", "0.55"), ("\\frac{1}{3}", "0.33"), ("2", "-2"), ("\\sqrt{2}", "1.414"), ("x+1", "x-1")]:
            with self.subTest(a=a, b=b):
                self.assertFalse(worker.equivalent(a, b))

    def test_unparsable_is_wrong_not_an_error(self):
        self.assertFalse(worker.equivalent("the answer", "1/2"))
        self.assertFalse(worker.equivalent(None, "1/2"))
        self.assertFalse(worker.equivalent("((((", "1/2"))


class Extraction(unittest.TestCase):
    def test_final_answer(self):
        self.assertEqual(worker.final_answer("so x = 3 and \\boxed{\\frac{1}{2}}"), "\\frac{1}{2}")
        self.assertEqual(worker.final_answer("first \\boxed{1} then \\boxed{2}"), "2")
        self.assertEqual(worker.final_answer("The answer is 0.5."), "0.5")
        self.assertEqual(worker.final_answer("3 apples and 1/4 of a pie"), "1/4")
        self.assertIsNone(worker.final_answer("no numbers here"))

    def test_unboxed_latex_fractions_and_mixed_numbers(self):
        self.assertEqual(worker.final_answer("It is \\frac{7}{2}"), "\\frac{7}{2}")
        self.assertEqual(worker.final_answer("7 divided by 2 is 3 1/2."), "3 1/2")
        self.assertEqual(worker.final_answer("7/2 = 3.5."), "3.5")
        for written in ["3 1/2", "3\\frac{1}{2}", "3 \\dfrac{1}{2}", "\\frac{7}{2}", "14/4", "3.5"]:
            with self.subTest(written=written):
                self.assertTrue(worker.equivalent(written, "7/2"))
        # A mixed number is a sum only with a proper fraction and keeps its sign; 2 3/2 stays a product.
        self.assertFalse(worker.equivalent("-3 1/2", "7/2"))
        self.assertTrue(worker.equivalent("-3 1/2", "-7/2"))
        self.assertTrue(worker.equivalent("2 3/2", "3"))

    def test_math_reward(self):
        s = {"prompt": "p", "completion": "Half is \\boxed{0.5}", "answer": "\\frac{1}{2}", "metadata": {}}
        self.assertEqual(worker.reward_math(s, None), {"correct": 1.0})
        s["completion"] = "\\boxed{0.6}"
        self.assertEqual(worker.reward_math(s, None), {"correct": 0.0})


class FormatLength(unittest.TestCase):
    def test_terms(self):
        class A: max_chars, ramp_chars = 20, 10
        f = lambda c: worker.reward_format_length({"completion": c}, A)
        self.assertEqual(f("\\boxed{1}"), {"format": 1.0, "length": 0.0})
        self.assertEqual(f("\\boxed{1} \\boxed{2}"), {"format": 0.0, "length": -0.9})  # 19 characters: (10 - 19)/10
        self.assertEqual(f("x" * 25)["length"], -1.0)
        self.assertEqual(worker.overlong_penalty(15, 20, 10), -0.5)


class Protocol(unittest.TestCase):
    def run_worker(self, args, requests):
        p = subprocess.run([sys.executable, WORKER] + args, input="".join(json.dumps(r) + "\n" for r in requests),
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [json.loads(l) for l in p.stdout.splitlines()]

    def test_hello_then_one_reply_per_request(self):
        samples = [{"prompt": "1/2 as a decimal?", "completion": c, "answer": "1/2", "metadata": {"task": "jsonl"}}
                   for c in ["\\boxed{0.5}", "\\boxed{0.4}", "it is 1/2"]]
        lines = self.run_worker(["--reward", "math,format_length", "--weights", "format=0.5"],
                                [{"id": 1, "samples": samples}, {"id": 2, "samples": samples[:1]}])
        self.assertEqual(lines[0]["tether_reward_worker"], 1)
        version = lines[0]["version"]
        self.assertEqual([l["id"] for l in lines[1:]], [1, 2])
        self.assertTrue(all(l["version"] == version for l in lines[1:]))
        self.assertEqual([r["reward"] for r in lines[1]["results"]], [1.5, 0.5, 1.0])
        self.assertEqual(lines[1]["results"][2]["components"], {"correct": 1.0, "format": 0.0, "length": 0.0})

    def test_version_follows_configuration(self):
        v1 = self.run_worker(["--reward", "exact"], [])[0]["version"]
        v2 = self.run_worker(["--reward", "exact", "--max-chars", "600"], [])[0]["version"]
        v3 = self.run_worker(["--reward", "exact", "--version", "mine-3"], [])[0]["version"]
        self.assertNotEqual(v1, v2)
        self.assertEqual(v3, "mine-3")
        self.assertEqual(v1, self.run_worker(["--reward", "exact"], [])[0]["version"])

    def test_a_failing_request_is_an_error_reply(self):
        lines = self.run_worker(["--reward", "exact"], [{"id": 5, "samples": [{"completion": "1"}]}])
        self.assertEqual(lines[1]["id"], 5)
        self.assertIn("KeyError", lines[1]["error"])
        self.assertNotIn("results", lines[1])


if __name__ == "__main__":
    unittest.main()
