#!/usr/bin/python3
"""bench/gates.py — complexity-aware training: accuracy against FLOPs and
parameters kept, the smoothness of that front, and the training speed
gained as units leave.

For each model: one ungated run (the baseline, same data, epochs and
seed); gated runs of the combined gates (balance 0.5) on a strength grid
of steps x1.25; units only (balance 0) and layers only (balance 1) on
every other point of that grid (steps x1.5625); and, at one strength, the
FLOPs share A at 0 and 1.  Every run is `tunetop train ... --test
[--gates S,B,A]`; its JSON line is kept in bench/out/gates/, the tables go
to stdout and the rows to bench/out/gates.csv.

Columns: test accuracy and its change against the baseline (points),
FLOPs and parameters kept (of the ungated network; "exp" is what the
probabilities expect at the end, "act" the compacted network that is
left), blocks and units kept, the share of gates settled at 0 or 1
before the end rounded the rest, samples/s of the second epoch (the
first gated one: gates sampled, nothing compacted yet) against the
baseline's second epoch (the gating overhead), and of the last epoch
(the compacted network, gates fixed) against the baseline's last (the
speedup, with the issue's floor 0.5 / FLOPs kept).

Then per model: the largest neighbour step in FLOPs kept along the
combined grid (the front's smoothness, at most 0.25 wanted), the most
FLOPs removed for at most 1 and 2 points, and the combined front against
the units-only and layers-only fronts at matched FLOPs.

Usage: /usr/bin/python3 bench/gates.py [--quick]
Env: BUILD (build), GATES_MODELS (';' between models), GATES_TRAIN
(training images, 20000), GATES_EPOCHS (6), GATES_STRENGTHS (the combined
grid; default 0.25 x1.25^k up to 4.5), GATES_SINGLE ("1": the units-only
and layers-only sweeps, "0": none), GATES_SHARES ("0,1"), GATES_SHARE_AT
(1), THREADS (2).
"""
import csv
import json
import os
import re
import subprocess
import sys
import time

quick = "--quick" in sys.argv or os.environ.get("QUICK") == "1"
build = os.environ.get("BUILD", "build")
tt = os.path.join(build, "tunetop")
out_dir = os.path.join("bench", "out", "gates")
os.makedirs(out_dir, exist_ok=True)

models = os.environ.get("GATES_MODELS", "resnet:2,2,2:w16;mlp:512,512,512").split(";")
train = int(os.environ.get("GATES_TRAIN", "4000" if quick else "20000"))
epochs = int(os.environ.get("GATES_EPOCHS", "4" if quick else "6"))
grid = [round(0.25 * 1.25 ** k, 4) for k in range(14)]  # 0.25 .. 4.55
strengths = [float(x) for x in os.environ.get(
    "GATES_STRENGTHS", "1,2.33" if quick else ",".join(map(str, grid))).split(",") if x]
single = os.environ.get("GATES_SINGLE", "0" if quick else "1") == "1"
shares = [float(x) for x in os.environ.get(
    "GATES_SHARES", "" if quick else "0,1").split(",") if x]
share_at = float(os.environ.get("GATES_SHARE_AT", "1"))
threads = os.environ.get("THREADS", "2")

epoch_re = re.compile(r"^epoch (\d+) .* ([0-9.]+) samples/s")


def run(model, gates):
    tag = model.replace(":", "_").replace(",", "-") + ("_" + gates if gates else "_dense")
    args = [tt, "train", "--model", model, "--train-size", str(train),
            "--epochs", str(epochs), "--test", "--threads", threads, "--seed", "1"]
    if gates:
        args += ["--gates", gates]
    t0 = time.time()
    p = subprocess.run(args, capture_output=True, text=True)
    wall = time.time() - t0
    with open(os.path.join(out_dir, tag + ".log"), "w") as f:
        f.write(" ".join(args) + "\n" + p.stderr)
    if p.returncode not in (0, 1) or not p.stdout.strip():
        sys.exit(f"gates bench: {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    with open(os.path.join(out_dir, tag + ".json"), "w") as f:
        f.write(p.stdout)
    sps = [float(m.group(2)) for m in map(epoch_re.match, p.stderr.splitlines()) if m]
    r["_sps"] = sps
    r["_wall"] = wall
    print(f"  {model} gates={gates or 'off'}: test {100 * r['test_acc']:.2f}%, "
          f"{wall:.0f} s", file=sys.stderr, flush=True)
    return r


def summary(r, base):
    g = r.get("gates") or {}
    stages = g.get("stages", [])
    layers = [s["layer"] for s in stages if "layer" in s]
    units_k = sum(s["kept"] for s in stages)
    units_t = sum(s["units"] for s in stages)
    masks = "".join(s["mask"] for s in stages)
    return {
        "test_acc": 100 * r["test_acc"],
        "delta": 100 * (r["test_acc"] - base["test_acc"]),
        "flops_exp": g["macs_expected"] if g else 1.0,
        "flops_act": g["macs_kept"] if g else 1.0,
        "params_exp": g["params_expected"] if g else 1.0,
        "params_act": g["params_kept"] if g else 1.0,
        "blocks": f"{sum(1 for l in layers if l)}/{len(layers)}" if layers else "-",
        "units": f"{units_k}/{units_t}" if units_t else "-",
        "per_stage": " ".join(str(s["kept"]) for s in stages) if stages else "-",
        # every gate ends exactly 0 or 1; "rounded" is the share the end
        # had to round from inside (0, 1) (methods.md hopes for under 1%)
        "all01": (set(masks) <= set("01")) if g else True,
        "settled": 1 - (g["rounded"] / g["count"] if g and g["count"] else 0.0),
        # the second epoch: the first with gates sampled, nothing compacted
        "overhead": (base["_sps"][1] / r["_sps"][1] - 1) if len(r["_sps"]) > 1 else float("nan"),
        "sps_last": r["_sps"][-1] if r["_sps"] else 0.0,
        "speedup": r["_sps"][-1] / base["_sps"][-1] if base["_sps"] else float("nan"),
        "train_macs": r.get("train_macs", float("nan")),
        "wall_s": r["_wall"],
    }


rows = []
print(f"gates bench: {train} training images, {epochs} epochs, seed 1, "
      f"{threads} threads; load {os.getloadavg()[0]:.2f}", flush=True)
for model in models:
    base = run(model, None)
    rows.append({"model": model, "strength": 0, "balance": "", "flops_share": "",
                 **summary(base, base)})
    sweep = [(s, 0.5, 0.5) for s in strengths]
    if single:
        sweep += [(s, b, 0.5) for b in (0, 1) for s in strengths[::2]]
    sweep += [(share_at, 0.5, a) for a in shares]
    for s, b, a in sweep:
        r = run(model, f"{s:g},{b:g},{a:g}")
        rows.append({"model": model, "strength": s, "balance": b, "flops_share": a,
                     **summary(r, base)})

fields = list(rows[0].keys())
with open(os.path.join("bench", "out", "gates.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)

print(f"\n{'model':18} {'S':>6} {'B':>4} {'A':>4} {'test%':>6} {'d pts':>6} "
      f"{'FLOPs exp/act':>14} {'params exp/act':>15} {'blocks':>6} {'units':>9} "
      f"{'settled':>7} {'gating':>6} {'x dense':>7} {'floor':>5}  units per stage")
for r in rows:
    floor = 0.5 / r["flops_act"] if r["strength"] else 1.0
    print(f"{r['model']:18} {r['strength']:>6g} {str(r['balance']):>4} {str(r['flops_share']):>4} "
          f"{r['test_acc']:6.2f} {r['delta']:+6.2f} "
          f"{r['flops_exp']:6.3f}/{r['flops_act']:<7.3f} "
          f"{r['params_exp']:6.3f}/{r['params_act']:<8.3f} {r['blocks']:>6} "
          f"{r['units']:>9} {100 * r['settled']:6.1f}% {100 * r['overhead']:+5.1f}% "
          f"{r['speedup']:7.2f} {floor:5.2f}{'' if r['speedup'] >= floor else '!'}  {r['per_stage']}")


def front(pts):
    """(FLOPs kept, test%) points not dominated by another."""
    return [p for p in pts if not any(q[0] <= p[0] and q[1] > p[1] or
                                      q[0] < p[0] and q[1] >= p[1] for q in pts)]


print("\nper model (combined gates, balance 0.5, FLOPs share 0.5):")
for model in models:
    mine = [r for r in rows if r["model"] == model]
    base = mine[0]
    comb = sorted((r for r in mine if r["strength"] and r["balance"] == 0.5
                   and r["flops_share"] == 0.5), key=lambda r: r["strength"])
    if not comb:
        continue
    steps = [abs(a["flops_act"] - b["flops_act"]) for a, b in zip(comb, comb[1:])
             if b["strength"] <= a["strength"] * 1.26]
    worst = max(steps) if steps else float("nan")
    print(f"  {model}: dense test {base['test_acc']:.2f}%; largest neighbour step in "
          f"FLOPs kept {worst:.3f} ({'ok' if worst <= 0.25 else 'above 0.25'}) over "
          f"{len(steps)} x1.25 steps; settled {100 * min(r['settled'] for r in comb):.1f}% "
          f"at worst; gating overhead (2nd epoch) median "
          f"{100 * sorted(r['overhead'] for r in comb)[len(comb) // 2]:+.1f}%")
    for pts in (1, 2):
        ok = [r for r in comb if r["delta"] >= -pts]
        if ok:
            b = min(ok, key=lambda r: r["flops_act"])
            print(f"    at most {pts} point{'s' if pts > 1 else ''} lost: "
                  f"{100 * (1 - b['flops_act']):.1f}% of the FLOPs removed "
                  f"(S={b['strength']:g}, {b['test_acc']:.2f}%)")
    # every arm can train ungated: the baseline belongs to each front
    arms = {name: front([(1.0, base["test_acc"])] +
                        [(r["flops_act"], r["test_acc"]) for r in mine
                         if r["strength"] and r["balance"] == bal and r["flops_share"] == 0.5])
            for name, bal in (("combined", 0.5), ("units only", 0), ("layers only", 1))}
    for name, bal in (("units only", 0), ("layers only", 1)):
        ran = [r for r in mine if r["strength"] and r["balance"] == bal]
        if not ran:
            continue
        if all(r["flops_act"] >= 0.999 for r in ran):
            print(f"    {name}: nothing to prune (no such gates in this model)")
            continue
        other = arms[name]
        # at each of the other arm's front points: the combined front's best
        # accuracy at no more FLOPs
        wins = 0
        for f, acc in other:
            best = max((a for ff, a in arms["combined"] if ff <= f + 0.02), default=None)
            wins += best is not None and best >= acc
        print(f"    combined front at or above {name}'s at {wins} of its {len(other)} "
              f"front points (matched FLOPs within 0.02)")
print(f"\nload {os.getloadavg()[0]:.2f} at the end; CSV: bench/out/gates.csv")
