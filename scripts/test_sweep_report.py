"""Unit tests of the statistics in sweep_report.py on data whose answers are known by hand.
Run: python scripts/test_sweep_report.py (SweepReportScriptTests runs it in the Swift suite)."""
import math
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sweep_report as sr  # noqa: E402


class StatisticsTests(unittest.TestCase):
    def test_t_quantiles_match_tables(self):
        # Student-t 0.975 quantiles (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
        for df, t in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (60, 2.000), (120, 1.980)]:
            self.assertAlmostEqual(sr.t975(df), t, places=3)
        self.assertTrue(1.980 < sr.t975(80) < 2.000)  # table: 1.990
        self.assertAlmostEqual(sr.t975(10 ** 9), 1.960, places=3)
        self.assertTrue(math.isnan(sr.t975(0)))

    def test_mean_ci_on_known_data(self):
        # 1, 2, 3, 4, 5: mean 3, s = sqrt(2.5), t(4) = 2.776 → half-width 2.776·1.5811/√5 = 1.963.
        m, h, n = sr.mean_ci([1, 2, 3, 4, 5])
        self.assertEqual((m, n), (3.0, 5))
        self.assertAlmostEqual(h, 2.776 * math.sqrt(2.5) / math.sqrt(5), places=9)
        # Two values: t(1) = 12.706, s = |a − b|/√2 → half-width 12.706·|a − b|/2.
        m, h, n = sr.mean_ci([0.30, 0.40])
        self.assertAlmostEqual(m, 0.35)
        self.assertAlmostEqual(h, 12.706 * 0.05, places=9)
        # One value has no interval; NaNs and Nones are ignored.
        m, h, n = sr.mean_ci([0.5, float("nan"), None])
        self.assertEqual((m, n), (0.5, 1))
        self.assertTrue(math.isnan(h))

    def test_t_interval_covers_the_mean_95_percent_of_the_time(self):
        rng = random.Random(7)
        covered = 0
        for _ in range(2000):
            xs = [rng.gauss(1.0, 2.0) for _ in range(5)]
            m, h, _ = sr.mean_ci(xs)
            covered += abs(m - 1.0) <= h
        self.assertTrue(0.93 <= covered / 2000 <= 0.97, covered / 2000)

    def test_bootstrap_interval(self):
        # A constant sample: every resample has the same mean.
        lo, hi = sr.bootstrap_ci([0.2] * 6)
        self.assertAlmostEqual(lo, 0.2)
        self.assertAlmostEqual(hi, 0.2)
        # Two values a < b: resample means are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4,
        # so the 2.5 % and 97.5 % percentiles are a and b.
        lo, hi = sr.bootstrap_ci([0.1, 0.3])
        self.assertAlmostEqual(lo, 0.1)
        self.assertAlmostEqual(hi, 0.3)
        # Deterministic for a seed, and close to the normal interval for a large normal sample.
        rng = random.Random(3)
        xs = [rng.gauss(0.05, 0.04) for _ in range(200)]
        self.assertEqual(sr.bootstrap_ci(xs, reps=2000, seed=5), sr.bootstrap_ci(xs, reps=2000, seed=5))
        lo, hi = sr.bootstrap_ci(xs, reps=4000)
        m, s = sr.mean_std(xs)
        se = s / math.sqrt(len(xs))
        self.assertAlmostEqual(lo, m - 1.96 * se, delta=0.3 * se)
        self.assertAlmostEqual(hi, m + 1.96 * se, delta=0.3 * se)
        self.assertTrue(all(math.isnan(x) for x in sr.bootstrap_ci([float("nan")])))

    def test_paired_differences_use_common_seeds_only(self):
        a = {0: 0.50, 1: 0.60, 2: 0.70, 5: 0.9}
        b = {0: 0.45, 1: 0.50, 2: 0.72, 3: 0.1}
        d = sr.paired_differences(a, b)
        self.assertEqual(sorted(d), [0, 1, 2])
        for s, v in {0: 0.05, 1: 0.10, 2: -0.02}.items():
            self.assertAlmostEqual(d[s], v)

    def test_pairing_removes_a_shared_seed_effect(self):
        # Each seed shifts both cells alike (a large seed effect) and the correction adds 0.05:
        # the paired interval is tight around 0.05, the unpaired cells' intervals overlap widely.
        rng = random.Random(11)
        runs = []
        for seed in range(8):
            luck = rng.gauss(0, 0.10)
            noise = [rng.gauss(0, 0.005) for _ in range(2)]
            runs.append({"eta": 4, "correction": "none", "seed": seed, "final_accuracy": 0.5 + luck + noise[0]})
            runs.append({"eta": 4, "correction": "decoupled", "seed": seed, "final_accuracy": 0.55 + luck + noise[1]})
        [p] = sr.paired_table(runs)
        self.assertEqual((p["eta"], p["correction"], p["pairs"]), (4, "decoupled", 8))
        self.assertTrue(p["boot_low"] > 0.03 and p["boot_high"] < 0.07, p)
        self.assertAlmostEqual(p["mean_diff"], 0.05, delta=0.01)
        _, h_none, _ = sr.mean_ci([r["final_accuracy"] for r in runs if r["correction"] == "none"])
        self.assertGreater(h_none, 0.05)

    def test_seeds_for_a_five_point_difference(self):
        # n = ((1.96 + 0.8416) · sd / δ)²: sd = 0.05, δ = 0.05 → 7.85 → 8.
        self.assertEqual(sr.seeds_for_difference(0.05), 8)
        self.assertEqual(sr.seeds_for_difference(0.10), 32)
        self.assertTrue(math.isnan(sr.seeds_for_difference(float("nan"))))

    def test_final_accuracy_is_the_mean_of_the_last_k_evaluations(self):
        evals = {0: 0.1, 25: 0.3, 50: 0.5, 75: 0.6, 100: 0.7}
        self.assertAlmostEqual(sr.final_accuracy(evals, 1), 0.7)
        self.assertAlmostEqual(sr.final_accuracy(evals, 2), 0.65)
        self.assertAlmostEqual(sr.final_accuracy(evals, 3), 0.6)
        # More than there are: every evaluation after the base, never the base itself.
        self.assertAlmostEqual(sr.final_accuracy(evals, 10), 0.525)
        self.assertTrue(math.isnan(sr.final_accuracy({0: 0.1}, 2)))

    def test_survivorship_weights_steps_by_groups(self):
        rows = [{"survivorship/generated_groups": 4, "survivorship/generated_length": 2.0, "survivorship/generated_reward": 0.5,
                 "survivorship/trained_groups": 2, "survivorship/trained_length": 1.0, "survivorship/trained_reward": 1.0,
                 "survivorship/stale_groups": 0},
                {"survivorship/generated_groups": 1, "survivorship/generated_length": 7.0, "survivorship/generated_reward": 0.0,
                 "survivorship/trained_groups": 2, "survivorship/trained_length": 3.0, "survivorship/trained_reward": 0.0,
                 "survivorship/stale_groups": 1, "survivorship/stale_length": 9.0, "survivorship/stale_reward": 0.25}]
        s = sr.survivorship(rows)
        self.assertAlmostEqual(s["generated_length"], (4 * 2 + 7) / 5)
        self.assertAlmostEqual(s["generated_reward"], 2 / 5)
        self.assertAlmostEqual(s["trained_length"], 2.0)
        self.assertAlmostEqual(s["stale_length"], 9.0)
        self.assertAlmostEqual(s["stale_fraction"], 1 / 5)

    def test_loss_diagnostics_average_the_steps_that_logged_them(self):
        rows = [{"mismatch_kl": 0.1, "clip_fraction": 0.2, "is/masked_fraction": 0.0, "ess": 1.0},
                {"mismatch_kl": 0.3, "clip_fraction": 0.0, "is/masked_fraction": 0.5, "ess": 0.5},
                {"mismatch_kl": float("nan")}]
        d = sr.loss_diagnostics(rows)
        self.assertAlmostEqual(d["mismatch_kl"], 0.2)
        self.assertAlmostEqual(d["clip_fraction"], 0.1)
        self.assertAlmostEqual(d["masked_fraction"], 0.25)
        self.assertAlmostEqual(d["ess_fraction"], 0.75)
        self.assertTrue(math.isnan(d["approx_kl"]))


if __name__ == "__main__":
    unittest.main(verbosity=1)
