#!/usr/bin/python3
"""gen_rank_ref.py — write tests/ref/rank_ref.txt, the reference values that
tests/test_rank.c compares engine/rank.c against (to 1e-12).

Run from anywhere with Debian's python3 (no scipy needed):

    /usr/bin/python3 tests/ref/gen_rank_ref.py

The references are computed by definition, independently of the C code:

  Spearman's rho   average ranks (ties share the mean of their positions),
                   then the Pearson correlation of the ranks.
  Kendall's tau-b  the O(n^2) count over all pairs of pairs:
                   (nc - nd) / sqrt((n0 - n1) (n0 - n2)), n1 and n2 the
                   pairs tied in x and in y.

in exact rational arithmetic (fractions.Fraction), with the one square root
taken in 50-digit decimals and rounded once to float64, so the fixture holds
the correctly rounded value rather than one summation order's.  Pairs with a
NaN are skipped; fewer than 2 pairs or a constant variable give nan.

File format (text, one token list per line, '#' lines are comments):

    case NAME N
    x X1 ... XN        float64 values as Python's repr (round-trip exact,
    y Y1 ... YN        "nan" for a missing value)
    expect USED RHO TAU

The data are seeded, so a rerun leaves the file byte for byte unchanged.
"""
import math
import os
import random
from decimal import Decimal, getcontext
from fractions import Fraction

getcontext().prec = 50


def avg_ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [None] * len(v)
    lo = 0
    while lo < len(v):
        hi = lo + 1
        while hi < len(v) and v[order[hi]] == v[order[lo]]:
            hi += 1
        for k in range(lo, hi):
            r[order[k]] = Fraction(lo + 1 + hi, 2)
        lo = hi
    return r


def ratio_sqrt(num, den2):
    """num / sqrt(den2) for rationals, den2 > 0, rounded once to float."""
    q = Fraction(num) ** 2 / Fraction(den2)
    d = (Decimal(q.numerator) / Decimal(q.denominator)).sqrt()
    return float(d) if num >= 0 else -float(d)


def used_pairs(x, y):
    return [(a, b) for a, b in zip(x, y) if not (math.isnan(a) or math.isnan(b))]


def spearman(x, y):
    p = used_pairs(x, y)
    m = len(p)
    if m < 2:
        return m, math.nan
    rx = avg_ranks([a for a, _ in p])
    ry = avg_ranks([b for _, b in p])
    mx = sum(rx) / m
    my = sum(ry) / m
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return m, math.nan
    return m, ratio_sqrt(sxy, sxx * syy)


def kendall(x, y):
    p = used_pairs(x, y)
    m = len(p)
    if m < 2:
        return m, math.nan
    nc = nd = n1 = n2 = 0
    for i in range(m):
        for j in range(i + 1, m):
            dx = p[i][0] - p[j][0]
            dy = p[i][1] - p[j][1]
            if dx == 0:
                n1 += 1
            if dy == 0:
                n2 += 1
            if dx * dy > 0:
                nc += 1
            elif dx * dy < 0:
                nd += 1
    n0 = m * (m - 1) // 2
    if n0 == n1 or n0 == n2:
        return m, math.nan
    return m, ratio_sqrt(nc - nd, (n0 - n1) * (n0 - n2))


def cases():
    nan = math.nan
    yield "agree", [1.0, 2, 3, 4, 5], [10.0, 20, 30, 40, 50]
    yield "reverse", [1.0, 2, 3, 4, 5], [5.0, 4, 3, 2, 1]
    yield "all_ties", [3.0] * 5, [1.0, 2, 3, 4, 5]
    yield "both_const", [1.0] * 4, [2.0] * 4
    yield "n2_up", [0.1, 0.2], [7.0, 9.0]
    yield "n2_down", [0.1, 0.2], [9.0, 7.0]
    yield "n1", [1.0], [2.0]
    yield "nan_leaves_1", [1.0, nan, 3.0], [1.0, 2.0, nan]
    yield "ties_hand", [1.0, 2, 2, 3, 3, 3, 4], [1.0, 1, 2, 2, 3, 3, 3]
    yield "nan_skip", [0.5, nan, 0.1, 0.9, 0.3, 0.7, nan],\
        [0.2, 0.4, nan, 0.8, 0.1, 0.9, nan]
    # Seeded: heavily tied integers, mildly tied, continuous, with NaNs.
    rnd = random.Random(20240601)
    for n in (2, 3, 5, 10, 37, 100, 200):
        k = max(2, n // 4)
        x = [float(rnd.randint(0, k)) for _ in range(n)]
        y = [float(round(a + rnd.gauss(0, k / 3))) for a in x]
        yield "ties_n%d" % n, x, y
    for n in (4, 50, 200):
        x = [rnd.random() for _ in range(n)]
        y = [a * a - 0.5 * a + rnd.gauss(0, 0.1) for a in x]
        yield "cont_n%d" % n, x, y
    for n in (20, 150):
        x = [float(rnd.randint(0, 9)) if rnd.random() > 0.15 else nan
             for _ in range(n)]
        y = [float(rnd.randint(0, 5)) - a / 3 if rnd.random() > 0.15 else nan
             for a in x]
        yield "nan_ties_n%d" % n, x, y
    # Anti-correlated losses vs accuracies, as two rungs would give.
    x = [round(rnd.uniform(0.2, 2.0), 2) for _ in range(120)]
    y = [round(1 - a / 3 + rnd.gauss(0, 0.05), 2) for a in x]
    yield "loss_vs_acc_n120", x, y


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "rank_ref.txt")
    out = ["# rank_ref.txt - written by tests/ref/gen_rank_ref.py; do not edit.",
           "# case NAME N / x ... / y ... / expect USED RHO TAU"]
    for name, x, y in cases():
        assert len(x) == len(y)
        m, rho = spearman(x, y)
        m2, tau = kendall(x, y)
        assert m == m2
        out.append("case %s %d" % (name, len(x)))
        out.append("x " + " ".join(repr(float(a)) for a in x))
        out.append("y " + " ".join(repr(float(b)) for b in y))
        out.append("expect %d %r %r" % (m, rho, tau))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d cases)" % (path, sum(1 for l in out if l.startswith("case"))))


if __name__ == "__main__":
    main()
