#!/usr/bin/env python3
"""Reference values for nudge's report statistics (REPORT.md §6), computed
once with scipy and statsmodels and kept in stats_reference.json, which the
unit tests of src/report/stats.rs read (so CI needs neither library).

    python3 -m pip install scipy statsmodels
    python3 tests/data/stats_reference.py > tests/data/stats_reference.json

Where a library has the statistic it is used: Wilson intervals and the
Wald interval of a difference (statsmodels), the pooled two-proportion z
test (statsmodels), Pearson's chi-square (scipy). The always-valid
interval and the sample size have no library form; they are computed here
from REPORT.md's formulas with scipy's normal quantiles. Where a library
answers nothing (a pooled variance of 0, a column total of 0) the
contract's rule is written in (p = 1; statistic 0 and p = 1).
"""
import json
import math
import random

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

ALPHA = 0.05
Z = stats.norm.ppf(0.975)
Z_B = stats.norm.ppf(0.8)


def wilson_cases():
    fixed = [(0, 1), (1, 1), (0, 2), (1, 2), (2, 2), (0, 3), (0, 10), (10, 10),
             (1, 10), (5, 10), (9, 10), (0, 1000), (1000, 1000), (1, 1000),
             (146, 1276), (173, 1224), (40, 434), (52, 398), (48, 430),
             (2, 13), (500000, 1000000), (12345, 1000000), (1, 3), (2, 3),
             (999999, 1000000), (50, 100), (7, 500), (493, 500)]
    rng = random.Random(1)
    for _ in range(12):
        n = rng.randint(1, 5000)
        fixed.append((rng.randint(0, n), n))
    out = []
    for x, n in fixed:
        lo, hi = proportion_confint(x, n, alpha=ALPHA, method="wilson")
        out.append({"x": x, "n": n, "interval": [float(lo), float(hi)]})
    return out


def always_valid_half(n, se, plan):
    v = n * se * se
    rho2 = (-2 * math.log(ALPHA) + math.log(-2 * math.log(ALPHA) + 1)) / plan
    nr = n * rho2 + 1
    return math.sqrt(v) * math.sqrt(2 * nr / (n * n * rho2) * math.log(math.sqrt(nr) / ALPHA))


def compare_cases():
    fixed = [
        (0, 3, 2, 13, 1000), (146, 1276, 173, 1224, 1000), (40, 434, 52, 398, 1000),
        (40, 434, 48, 430, 1000), (0, 1, 1, 1, 1000), (1, 1, 0, 1, 1000),
        (0, 1, 0, 1, 1000), (1, 1, 1, 1, 1000), (0, 50, 0, 50, 1000),
        (50, 50, 50, 50, 1000), (0, 100, 100, 100, 1000), (10, 100, 10, 100, 1000),
        (10, 100, 20, 100, 1000), (10, 100, 20, 100, 1), (10, 100, 20, 100, 100),
        (10, 100, 20, 100, 100000), (300, 1000, 361, 1000, 1000),
        (300, 1000, 361, 1000, 5000), (5000, 100000, 5200, 100000, 1000),
        (123456, 1000000, 124000, 1000000, 1000), (1, 2, 2, 3, 1000),
        (3, 7, 0, 5, 1000), (70, 200, 82, 200, 1000), (70, 200, 50, 200, 1000),
    ]
    rng = random.Random(2)
    for _ in range(12):
        n0, ni = rng.randint(1, 4000), rng.randint(1, 4000)
        fixed.append((rng.randint(0, n0), n0, rng.randint(0, ni), ni,
                      rng.choice([100, 1000, 10000])))
    out = []
    for x0, n0, xi, ni, plan in fixed:
        p0, pi = x0 / n0, xi / ni
        d = pi - p0
        se = math.sqrt(p0 * (1 - p0) / n0 + pi * (1 - pi) / ni)
        if se > 0:
            lo, hi = confint_proportions_2indep(xi, ni, x0, n0, method="wald",
                                                compare="diff", alpha=ALPHA)
            interval = [float(lo), float(hi)]
        else:
            # statsmodels answers nan for a variance of 0; the interval is d itself.
            interval = [d, d]
        pooled = (x0 + xi) / (n0 + ni)
        if pooled in (0.0, 1.0):
            p_value = 1.0
        else:
            _, p = proportions_ztest([xi, x0], [ni, n0], alternative="two-sided")
            p_value = float(p)
        half = always_valid_half(n0 + ni, se, plan)
        out.append({"x0": x0, "n0": n0, "xi": xi, "ni": ni, "plan": plan,
                    "difference": d, "interval": interval, "p_value": p_value,
                    "always_valid": [d - half, d + half]})
    return out


def chi_square_cases():
    fixed = [
        [(40, 434), (52, 398), (48, 430)],
        [(0, 10), (0, 10), (0, 10)],
        [(10, 10), (10, 10), (10, 10)],
        [(0, 1), (1, 1), (0, 1)],
        [(1, 1), (0, 1), (1, 1), (0, 1)],
        [(5, 100), (5, 100), (5, 100)],
        [(5, 100), (10, 100), (15, 100)],
        [(0, 100), (0, 100), (1, 100)],
        [(100, 1000), (130, 1000), (90, 1000), (110, 1000)],
        [(30000, 100000), (30500, 100000), (29000, 100000)],
        [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)],
        [(50, 50), (49, 50), (50, 50)],
    ]
    rng = random.Random(3)
    while len(fixed) < 34:
        k = rng.randint(3, 6)
        row = []
        for _ in range(k):
            n = rng.randint(1, 3000)
            row.append((rng.randint(0, n), n))
        fixed.append(row)
    out = []
    for table in fixed:
        df = len(table) - 1
        done = sum(x for x, _ in table)
        total = sum(n for _, n in table)
        if done == 0 or done == total:
            statistic, p = 0.0, 1.0
        else:
            observed = np.array([[x, n - x] for x, n in table])
            statistic, p, dof, _ = stats.chi2_contingency(observed, correction=False)
            assert dof == df
        out.append({"table": [list(r) for r in table], "statistic": float(statistic),
                    "df": df, "p_value": float(p)})
    return out


def sample_needed(b):
    t = b + 0.05
    if t > 1:
        t = b - 0.05
    m = (b + t) / 2
    root = Z * math.sqrt(2 * m * (1 - m)) + Z_B * math.sqrt(b * (1 - b) + t * (1 - t))
    return math.ceil(root * root / 0.05 ** 2)


def sample_cases():
    rates = [0.0, 1.0, 0.5, 0.05, 0.95, 0.96, 0.999, 0.001, 0.1, 0.2, 0.3, 0.4,
             0.6, 0.7, 0.8, 0.9, 146 / 1276, 40 / 434, 2 / 13, 1 / 3, 2 / 3,
             0.125, 0.25, 0.75, 0.94, 0.951, 0.01, 0.02]
    rng = random.Random(4)
    rates += [rng.random() for _ in range(8)]
    return [{"p0": b, "n": sample_needed(b)} for b in rates]


def verdict_cases(compared):
    out = []
    for c in compared:
        needed = sample_needed(c["x0"] / c["n0"])
        lo, hi = c["always_valid"]
        if lo > 0:
            v = "better"
        elif hi < 0:
            v = "worse"
        elif c["n0"] >= needed and c["ni"] >= needed:
            v = "no_difference"
        else:
            v = "not_enough_data"
        out.append({"x0": c["x0"], "n0": c["n0"], "xi": c["xi"], "ni": c["ni"],
                    "plan": c["plan"], "needed": needed, "verdict": v})
    return out


def main():
    compared = compare_cases()
    data = {
        "generator": "tests/data/stats_reference.py",
        "z": Z, "z_b": Z_B,
        "wilson": wilson_cases(),
        "compare": compared,
        "chi_square": chi_square_cases(),
        "sample_needed": sample_cases(),
        "verdict": verdict_cases(compared),
    }
    print(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
