#!/usr/bin/python3
"""bench/gates.py — complexity-aware training: accuracy against FLOPs and
parameters kept, and the training speed gained as units leave.

For each model, one ungated run (the baseline, same data, epochs and
seed) and gated runs sweeping the strength S at the default balance and
FLOPs share, then sweeps of the layer/unit balance B and of the FLOPs/parameters
share A at one strength (B = 0 and B = 1 are the unit-only and
layer-only baselines).
Every run is `tunetop train ... --test [--gates S,B,A]`; its JSON line is
kept in bench/out/gates/, the table goes to stdout and bench/out/gates.csv.

Columns: test accuracy and its change against the baseline (points),
FLOPs and parameters kept (of the ungated network; "exp" is what the
probabilities expect at the end, "act" the compacted network that is
left), blocks and units kept (and units kept per gated stage), whether every gate ended exactly 0 or 1 and
the share the end had to round from inside (0, 1), and samples/s in the first and last epoch against the baseline's.

Usage: /usr/bin/python3 bench/gates.py [--quick]
Env: BUILD (build), GATES_MODELS (comma-separated, ';' between models),
GATES_TRAIN (training images), GATES_EPOCHS, GATES_STRENGTHS ("0.5,0.75,1,1.5,2"),
GATES_BALANCES ("0,0.1,0.9,1"), GATES_SHARES ("0,1"), GATES_BALANCE_AT
(strength of the balance and share sweeps, default 1), THREADS (2).
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
strengths = [float(x) for x in os.environ.get(
    "GATES_STRENGTHS", "1,2" if quick else "0.5,0.75,1,1.5,2").split(",") if x]
balances = [float(x) for x in os.environ.get(
    "GATES_BALANCES", "" if quick else "0,0.1,0.9,1").split(",") if x]
shares = [float(x) for x in os.environ.get(
    "GATES_SHARES", "" if quick else "0,1").split(",") if x]
balance_at = float(os.environ.get("GATES_BALANCE_AT", "1"))
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
    r["_sps_first"], r["_sps_last"] = (sps[0], sps[-1]) if sps else (0.0, 0.0)
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
        "rounded": g["rounded"] / g["count"] if g and g["count"] else 0.0,
        "sps_first": r["_sps_first"],
        "sps_last": r["_sps_last"],
        "speedup": r["_sps_last"] / base["_sps_last"] if base["_sps_last"] else float("nan"),
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
    sweep = ([(s, 0.5, 0.5) for s in strengths] +
             [(balance_at, b, 0.5) for b in balances] +
             [(balance_at, 0.5, a) for a in shares])
    for s, b, a in sweep:
        r = run(model, f"{s:g},{b:g},{a:g}")
        rows.append({"model": model, "strength": s, "balance": b, "flops_share": a,
                     **summary(r, base)})

fields = list(rows[0].keys())
with open(os.path.join("bench", "out", "gates.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)

print(f"\n{'model':18} {'S':>5} {'B':>4} {'A':>4} {'test%':>6} {'d pts':>6} "
      f"{'FLOPs exp/act':>14} {'params exp/act':>15} {'blocks':>6} {'units':>9} "
      f"{'0/1':>4} {'rnd':>5} {'samples/s first>last':>21} {'x dense':>7}  units per stage")
for r in rows:
    print(f"{r['model']:18} {r['strength']:>5g} {str(r['balance']):>4} {str(r['flops_share']):>4} "
          f"{r['test_acc']:6.2f} {r['delta']:+6.2f} "
          f"{r['flops_exp']:6.3f}/{r['flops_act']:<7.3f} "
          f"{r['params_exp']:6.3f}/{r['params_act']:<8.3f} {r['blocks']:>6} "
          f"{r['units']:>9} {'yes' if r['all01'] else 'NO':>4} {r['rounded']:5.2f} "
          f"{r['sps_first']:9.0f} > {r['sps_last']:<9.0f} {r['speedup']:7.2f}  {r['per_stage']}")
print(f"\nload {os.getloadavg()[0]:.2f} at the end; CSV: bench/out/gates.csv")
