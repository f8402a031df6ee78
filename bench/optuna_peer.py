#!/usr/bin/python3
"""bench/optuna_peer.py: Optuna (TPE + Hyperband pruner on epochs) driving
`tunetop train`, one trial one process, under a compute budget counted in
full-fidelity epochs as a tunetop study counts it.

    optuna_peer.py --tunetop build/tunetop --model SPEC --train-size N
                   --val-size V --epochs E --budget B --seed S --threads T
                   --space SPACE.ini --out DIR [--rf 3] [--min-resource 1]
                   [--train-arg=--schedule --train-arg=cosine ...]

The search space is read from a file of tunetop [space] lines (NAME = float
LO HI | log-float LO HI | int LO HI | log-int LO HI | choice A,B,C), so the
Optuna side searches exactly what the tunetop studies search; NAME becomes
tunetop train's --NAME.

Per-epoch values: `tunetop train` writes one line per finished epoch on
stderr ("epoch E  step S/T  loss ..  acc ..%  val_loss ..  val_acc X%  ..").
Each is read as it comes, told to Optuna with trial.report(val_acc, epoch),
and when trial.should_prune() says so the process is killed (SIGKILL) and the
trial ends as pruned.

Compute: one full-fidelity epoch is U = m * N multiply-accumulates, m the
engine's per-example training MACs of the whole model (train_macs in its
JSON, asked once with a one-step probe) and N the training examples: the
unit a study's budget is counted in (runner.c, budget_macs).  Every epoch a
trial finished counts m * N (a completed run's JSON agrees: train_macs *
samples_per_s * seconds, what a study stores in rungs.train_macs, is checked
against it); a diverged run, stopped inside an epoch, counts what its JSON
reports.  The steps of the next epoch that a pruned process may have begun
before the kill are not counted: the kill follows the epoch line within
milliseconds, and that time times the line's samples/s is kept as an
estimate of what went uncounted (summary: uncounted_ff_est).  No trial
starts once the compute spent reaches B; a trial that has started runs
until it ends or is pruned, as a study lets a started run finish.
Validation and test evaluations are not counted, on either side.

Test accuracy: every run is launched for E epochs with --test, so each run
that completes (full fidelity) reports test accuracy in its JSON; the chosen
configuration is the completed trial with the best validation accuracy
within the budget, and its test accuracy is reported.

A diverged run (the engine's "diverged": true, loss NaN) ends as a pruned
trial, which TPE ranks below every trial that got further; as a failed
trial (--diverged fail, Optuna's nan return) TPE would not see it at all and
keeps sampling where runs diverge (a quick MLP study did so 44 times in 62).

Writes DIR/trials.json (everything), DIR/trials.csv (one row per trial) and
DIR/summary.json; prints one line per trial.
"""
import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import optuna

# results that end within TOL full-fidelity epochs past B count as within it
TOL = 1e-4
EPOCH_RE = re.compile(r"^epoch (\d+)\s+step (\d+)/(\d+).*\bval_acc ([0-9.]+|nan|-?inf)%"
                      r"\s+([0-9.]+) samples/s")


def read_space(path):
    """tunetop [space] lines -> [(name, kind, args)]"""
    space = []
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            if not line or line.startswith("["):
                continue
            name, _, val = (p.strip() for p in line.partition("="))
            kind, _, rest = val.partition(" ")
            rest = rest.strip()
            if kind in ("float", "log-float"):
                lo, hi = (float(x) for x in rest.split())
                space.append((name, kind, (lo, hi)))
            elif kind in ("int", "log-int"):
                lo, hi = (int(x) for x in rest.split())
                space.append((name, kind, (lo, hi)))
            elif kind == "choice":
                vals = []
                for x in rest.split(","):
                    x = x.strip()
                    for conv in (int, float):
                        try:
                            x = conv(x)
                            break
                        except ValueError:
                            pass
                    vals.append(x)
                space.append((name, kind, tuple(vals)))
            else:
                sys.exit(f"optuna_peer: {path}: {line}: unknown kind '{kind}'")
    if not space:
        sys.exit(f"optuna_peer: {path}: no [space] lines")
    return space


def suggest(trial, space):
    p = {}
    for name, kind, a in space:
        if kind == "float":
            p[name] = trial.suggest_float(name, a[0], a[1])
        elif kind == "log-float":
            p[name] = trial.suggest_float(name, a[0], a[1], log=True)
        elif kind == "int":
            p[name] = trial.suggest_int(name, a[0], a[1])
        elif kind == "log-int":
            p[name] = trial.suggest_int(name, a[0], a[1], log=True)
        else:
            p[name] = trial.suggest_categorical(name, list(a))
    return p


def fmt(v):
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tunetop", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--train-size", type=int, required=True)
    ap.add_argument("--val-size", type=int, required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--budget", type=float, required=True, help="full-fidelity epochs")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--space", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rf", type=int, default=3, help="Hyperband reduction_factor")
    ap.add_argument("--min-resource", type=int, default=1)
    ap.add_argument("--diverged", choices=("pruned", "fail"), default="pruned",
                    help="how a diverged run ends: pruned (TPE learns from it) or failed "
                         "(returns nan: TPE ignores it)")
    ap.add_argument("--train-arg", action="append", default=[],
                    help="one more argument for every tunetop train (repeat)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    space = read_space(a.space)
    common = [a.tunetop, "train", "--model", a.model, "--data", a.data,
              "--train-size", str(a.train_size), "--val-size", str(a.val_size),
              "--threads", str(a.threads), "--seed", str(a.seed)] + a.train_arg

    # the unit: per-example training MACs of the whole model, from a probe
    probe = subprocess.run(common[:2] + ["--model", a.model, "--data", a.data, "--train-size",
                                         str(min(a.train_size, 256)), "--val-size", "1",
                                         "--steps", "1", "--threads", str(a.threads)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"optuna_peer: probe failed: {probe.stderr.strip()[-300:]}")
    pj = json.loads(probe.stdout)
    m, stages = float(pj["train_macs"]), pj["stages"]
    unit = m * a.train_size
    budget_macs = a.budget * unit

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own line per trial
    sampler = optuna.samplers.TPESampler(seed=a.seed)
    pruner = optuna.pruners.HyperbandPruner(min_resource=a.min_resource, max_resource=a.epochs,
                                            reduction_factor=a.rf)
    # a fixed name: Hyperband assigns brackets by a hash of it and the trial number
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"tunetop-{a.model}-seed{a.seed}")
    state = {"spent": 0.0, "trials": [], "check": [], "uncounted": 0.0}
    t_start = time.time()

    def objective(trial):
        params = suggest(trial, space)
        cmd = common + ["--epochs", str(a.epochs), "--test"]
        for k, v in params.items():
            cmd += ["--" + k, fmt(v)]
        rec = {"number": trial.number, "params": params, "epochs_done": 0, "val_acc": [],
               "spent_at_epoch": [], "state": None, "val_acc_final": None, "test_acc": None,
               "diverged": False, "compute_ff": 0.0, "exact": False,
               "spent_before": state["spent"] / unit}
        state["trials"].append(rec)
        spent0 = state["spent"]
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                bufsize=1)
        pruned, tail = False, []
        for line in proc.stderr:
            t_line = time.monotonic()
            mo = EPOCH_RE.match(line)
            if not mo:
                tail = (tail + [line.rstrip()])[-3:]
                continue
            e, va = int(mo.group(1)), float(mo.group(4)) / 100
            rec["epochs_done"] = e
            rec["val_acc"].append(va)
            state["spent"] = spent0 + e * unit
            rec["spent_at_epoch"].append(state["spent"] / unit)
            if e >= a.epochs:
                continue  # the last one: the JSON line has it
            trial.report(va, e)
            if trial.should_prune():
                proc.send_signal(signal.SIGKILL)
                state["uncounted"] += (time.monotonic() - t_line) * float(mo.group(5)) * m
                pruned = True
                break
        out = proc.stdout.read()
        proc.stderr.close()
        proc.stdout.close()
        rc = proc.wait()
        rec["seconds"] = time.time() - t0
        res = None
        if not pruned:
            try:
                res = json.loads(out)
            except ValueError:
                res = None
        if res is not None:
            exact = res["train_macs"] * res["samples_per_s"] * res["seconds"]
            if res.get("diverged"):
                # stopped inside an epoch: what the engine counted
                state["spent"] = spent0 + exact
                rec["exact"] = True
            else:
                # whole epochs, counted as m * N each; the engine's own
                # count agrees to its printed digits (checked)
                state["check"].append((exact - rec["epochs_done"] * unit) / unit)
        rec["compute_ff"] = (state["spent"] - spent0) / unit
        rec["spent_after"] = state["spent"] / unit
        if pruned:
            rec["state"] = "pruned"
            raise optuna.TrialPruned()
        if res is None:
            rec["state"] = "failed"
            sys.exit(f"optuna_peer: trial {trial.number}: tunetop train exited {rc} without "
                     f"its JSON line: {' | '.join(tail)}")
        if res.get("diverged") or res.get("val_acc") is None:
            rec["state"] = "diverged"
            rec["diverged"] = True
            if a.diverged == "fail":
                return float("nan")  # a failed trial: TPE leaves it out
            # pruned: TPE ranks a pruned trial by its last reported epoch,
            # below every trial that got further, and one that reported
            # nothing below all (optuna/samplers/_tpe/sampler.py)
            raise optuna.TrialPruned()
        rec["state"] = "complete"
        rec["val_acc_final"] = res["val_acc"]
        rec["test_acc"] = res.get("test_acc")
        if rec["val_acc"]:
            rec["val_acc"][-1] = res["val_acc"]  # more digits than the % line
        return res["val_acc"]

    def stop_when_spent(study_, frozen):
        r = state["trials"][-1]
        acc = r["val_acc_final"]
        print(f"trial {r['number']:3d} {r['state']:8s} epochs {r['epochs_done']}/{a.epochs} "
              f"val_acc {'   -  ' if acc is None else f'{acc:.4f}'} "
              f"spent {state['spent'] / unit:7.3f}/{a.budget:g} ff-epochs  "
              f"{r['seconds']:.1f}s  "
              + " ".join(f"{k}={fmt(v)}" for k, v in r["params"].items()), flush=True)
        if state["spent"] >= budget_macs:
            study_.stop()

    print(f"optuna {optuna.__version__}: TPESampler(seed={a.seed}) + HyperbandPruner("
          f"min_resource={a.min_resource}, max_resource={a.epochs}, reduction_factor={a.rf}); "
          f"{a.model} ({stages} stages), {a.train_size} train / {a.val_size} val, budget "
          f"{a.budget:g} full-fidelity epochs of {m:.0f} MAC x {a.train_size} = "
          f"{unit / 1e9:.4g} GMAC", flush=True)
    if a.budget > 0:
        study.optimize(objective, n_trials=100000, callbacks=[stop_when_spent],
                       catch=())
    wall = time.time() - t_start

    # the choice, within the budget: completed trials whose run ended at or
    # below B, best validation accuracy
    within = [r for r in state["trials"] if r["state"] == "complete"
              and r["spent_after"] <= a.budget + TOL]
    chosen = max(within, key=lambda r: r["val_acc_final"], default=None)
    done = [r for r in state["trials"] if r["state"] == "complete"]
    summary = {
        "side": "optuna", "optuna_version": optuna.__version__,
        "python": sys.version.split()[0], "model": a.model, "stages": stages,
        "train_size": a.train_size, "val_size": a.val_size, "epochs": a.epochs,
        "budget_ff": a.budget, "seed": a.seed, "threads": a.threads,
        "sampler": f"TPESampler(seed={a.seed})",
        "diverged_as": a.diverged,
        "pruner": f"HyperbandPruner(min_resource={a.min_resource}, max_resource={a.epochs}, "
                  f"reduction_factor={a.rf})",
        "train_macs_per_example": m, "unit_macs": unit,
        "spent_ff": state["spent"] / unit, "wall_s": wall,
        "trials": len(state["trials"]), "complete": len(done),
        "complete_within_budget": len(within),
        "pruned": sum(r["state"] == "pruned" for r in state["trials"]),
        "diverged": sum(r["state"] == "diverged" for r in state["trials"]),
        "chosen": chosen and {"number": chosen["number"], "params": chosen["params"],
                              "val_acc": chosen["val_acc_final"], "test_acc": chosen["test_acc"]},
        "uncounted_ff_est": state["uncounted"] / unit,
        "unit_check_max_abs": max((abs(c) for c in state["check"]), default=0.0),
    }
    with open(os.path.join(a.out, "trials.json"), "w") as f:
        json.dump({"summary": summary, "trials": state["trials"]}, f, indent=1)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(a.out, "trials.csv"), "w", newline="") as f:
        w = csv.writer(f)
        names = [s[0] for s in space]
        w.writerow(["trial", "state"] + names + ["epochs_done", "val_acc_per_epoch",
                                                 "val_acc_final", "test_acc", "compute_ff",
                                                 "spent_after_ff", "seconds"])
        for r in state["trials"]:
            w.writerow([r["number"], r["state"]] + [fmt(r["params"][k]) for k in names]
                       + [r["epochs_done"], " ".join(f"{v:.4f}" for v in r["val_acc"]),
                          "" if r["val_acc_final"] is None else f"{r['val_acc_final']:.4f}",
                          "" if r["test_acc"] is None else f"{r['test_acc']:.4f}",
                          f"{r['compute_ff']:.4f}", f"{r['spent_after']:.4f}",
                          f"{r['seconds']:.2f}"])
    if summary["unit_check_max_abs"] > 1e-3:
        print(f"optuna_peer: WARNING: a completed run's reported MACs differ from epochs x "
              f"unit by {summary['unit_check_max_abs']:.4f} full-fidelity epochs", flush=True)
    c = summary["chosen"]
    print(f"optuna: {summary['trials']} trials ({summary['complete']} complete, "
          f"{summary['pruned']} pruned, {summary['diverged']} diverged), spent "
          f"{summary['spent_ff']:.3f} ff-epochs, {wall:.0f}s; chosen: "
          + ("NONE: no trial reached full fidelity within the budget" if c is None else
             f"trial {c['number']} val_acc {c['val_acc']:.4f} test_acc {c['test_acc']:.4f}"),
          flush=True)


if __name__ == "__main__":
    main()
