#!/usr/bin/python3
"""bench/ladder.py OUT BUDGET: best full-fidelity validation accuracy against
compute spent for the random, asha and hyperband studies in OUT, as a text
table and OUT/../ladder.csv, and Spearman's rho between the ladder's rungs."""
import csv
import os
import sqlite3
import sys

out, budget = sys.argv[1], float(sys.argv[2])
curves, top_rung = {}, {}
for kind in ("random", "asha", "hyperband"):
    db = sqlite3.connect(os.path.join(out, kind + ".db"))
    rows = db.execute("SELECT rowid, rung, val_acc, train_macs FROM rungs ORDER BY rowid").fetchall()
    top = max((r[1] for r in rows), default=0)
    spent, best, curve = 0.0, float("nan"), []
    for _, rung, acc, macs in rows:
        spent += macs
        if rung == top and acc is not None and not (acc <= best):
            best = acc
        curve.append((spent, best))
    curves[kind], top_rung[kind] = curve, top
    corr = db.execute("SELECT rung_a, rung_b, n, spearman, kendall FROM rank_corr ORDER BY 1, 2").fetchall()
    if kind != "random":
        print(f"\n{kind}: Spearman rho (Kendall tau) between rungs, n trials at both")
        for a, b, n, rho, tau in corr:
            rho_s = "  nan" if rho is None else f"{rho:5.3f}"
            tau_s = "  nan" if tau is None else f"{tau:5.3f}"
            print(f"  rung {a} vs {b}: rho {rho_s} (tau {tau_s}), n = {n}")

total = {k: (c[-1][0] if c else 0.0) for k, c in curves.items()}
unit = total["random"] or 1.0
print("\nbest full-fidelity val_acc found against compute (share of random's total)")
print("share   " + "".join(f"{k:>12}" for k in curves))
def best_at(curve, x):
    b = float("nan")
    for spent, acc in curve:
        if spent <= x:
            b = acc
    return b
for share in (0.125, 0.25, 1 / 3, 0.5, 0.75, 1.0):
    x = share * unit
    print(f"{share:5.3f}  " + "".join(f"{best_at(c, x):12.4f}" for c in curves.values()))
rb = curves["random"][-1][1] if curves["random"] else float("nan")
for k in ("asha", "hyperband"):
    reach = next((s for s, a in curves[k] if a >= rb - 0.003), None)
    msg = "never" if reach is None else f"{reach / unit:.3f} of random's compute"
    print(f"{k}: reaches random's best {rb:.4f} (within 0.3 points) at {msg}")
with open(os.path.join(out, "..", "ladder.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["study", "gmac_spent", "best_val_acc"])
    for k, c in curves.items():
        for spent, acc in c:
            w.writerow([k, f"{spent / 1e9:.3f}", f"{acc:.4f}"])
print(f"\nwrote {os.path.normpath(os.path.join(out, '..', 'ladder.csv'))}")
