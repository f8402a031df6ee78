#!/usr/bin/python3
"""bench/vs_optuna.py: the report of bench/vs_optuna.sh, and its helper.

    vs_optuna.py chosen ARMDIR TUNETOP
        a tunetop arm's chosen configuration (the best validation accuracy
        at the top rung among the runs that ended within the budget),
        retrained once at full fidelity with --test: ARMDIR/chosen.json.
        A study never evaluates the test set, and with mode = restart the
        top rung is exactly this run (same seed, split, initialisation and
        steps); its validation accuracy is compared with the study's.
    vs_optuna.py report OUT
        reads OUT/run.json and every arm's results; prints the report and
        writes bench/out/vs_optuna_{seeds,curves,mean}.csv beside OUT.

Compute, both sides, in full-fidelity epochs: U = m * N MACs, m the engine's
per-example training MACs of the whole model (OUT/MODEL/probe.json), N the
training examples.  A tunetop arm's runs are its rungs rows in the order
stored, each rungs.train_macs / U; the Optuna arm's are its trials' epochs
(optuna_peer.py).  A result counts "within B" when the compute spent up to
the end of its run is at most B."""
import csv
import json
import math
import os
import sqlite3
import subprocess
import sys

TOL = 1e-4  # full-fidelity epochs: a run ending at B up to rounding is within B
FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0)


def read_ini(path):
    sec, d = None, {}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                sec = line.strip("[]")
                continue
            k, _, v = (p.strip() for p in line.partition("="))
            d[(sec, k)] = v
    return d


def ladder(stages, min_trainable, eta):
    """the trainable depths of the rungs, as tt_ladder (engine/scheduler.c)"""
    z, v = [], max(1, min(min_trainable, stages))
    while v < stages:
        z.append(v)
        v *= eta
    return z + [stages]


def fmt(v):
    return repr(v) if isinstance(v, float) else ("on" if v is True else "off" if v is False
                                                 else str(v))


# ---- one arm's results -------------------------------------------------------

def tunetop_arm(dirpath, stages, unit, budget):
    ini = read_ini(os.path.join(dirpath, "study.ini"))
    nr = len(ladder(stages, int(ini[("fidelity", "min_trainable")]),
                    int(ini[("fidelity", "eta")])))
    top = nr - 1
    db = sqlite3.connect(f"file:{os.path.join(dirpath, 'study.db')}?mode=ro", uri=True)
    rows = db.execute("SELECT trial_id, rung, trainable, epochs, val_acc, train_macs "
                      "FROM rungs ORDER BY rowid").fetchall()
    params = {t: json.loads(p) for t, p in db.execute("SELECT id, params FROM trials")}
    states = [s for (s,) in db.execute("SELECT state FROM trials")]
    corr = db.execute("SELECT rung_a, rung_b, n, spearman, kendall FROM rank_corr "
                      "ORDER BY rung_a, rung_b").fetchall()
    db.close()
    events, spent, by_rung = [], 0.0, [0.0] * nr
    for tid, rung, z, ep, acc, macs in rows:
        spent += macs / unit
        if 0 <= rung < nr:
            by_rung[rung] += macs / unit
        events.append({"spent": spent, "top": rung == top, "val_acc": acc, "trial": tid,
                       "rung": rung, "z": z, "epochs": ep})
    return {"events": events, "spent": spent, "trials": len(params), "params": params,
            "rungs": nr, "top": top, "by_rung": by_rung, "corr": corr,
            "diverged": sum(s == "diverged" for s in states),
            "budget_line": budget_line(os.path.join(dirpath, "log"))}


def budget_line(log):
    """the study's own statement of B in GMAC ('budget: B full-fidelity
    epochs = X GMAC'), to check the unit against"""
    try:
        with open(log) as f:
            for line in f:
                if "full-fidelity epochs =" in line and "GMAC" in line:
                    b = float(line.split("budget:")[1].split()[0])
                    g = float(line.split("=")[-1].split()[0])
                    return b, g
    except (OSError, ValueError, IndexError):
        pass
    return None


def optuna_arm(dirpath, unit, epochs):
    with open(os.path.join(dirpath, "trials.json")) as f:
        d = json.load(f)
    events, by_epoch = [], [0.0] * epochs
    for t in d["trials"]:
        prev = t["spent_before"]
        for k, s in enumerate(t["spent_at_epoch"]):
            if k < epochs:
                by_epoch[k] += s - prev
            prev = s
        if t["state"] == "complete":
            events.append({"spent": t["spent_after"], "top": True, "val_acc": t["val_acc_final"],
                           "trial": t["number"], "test_acc": t["test_acc"],
                           "curve": t["val_acc"]})
        elif t["state"] == "diverged":
            by_epoch[min(t["epochs_done"], epochs - 1)] += t["spent_after"] - prev
    s = d["summary"]
    return {"events": events, "spent": s["spent_ff"], "trials": s["trials"],
            "pruned": s["pruned"], "diverged": s["diverged"], "by_rung": by_epoch,
            "summary": s, "trials_raw": d["trials"]}


def best_at(events, x):
    """(best top-rung val_acc among runs ended at or below x, its event)"""
    best = None
    for e in events:
        if e["top"] and e["spent"] <= x + TOL and e["val_acc"] is not None and \
                (best is None or e["val_acc"] > best["val_acc"]):
            best = e
    return (float("nan"), None) if best is None else (best["val_acc"], best)


# ---- Spearman's rho (average ranks for ties) ---------------------------------

def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    if len(a) < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb) if va > 0 and vb > 0 else float("nan")


# ---- chosen -------------------------------------------------------------------

def cmd_chosen(dirpath, tt):
    ini = read_ini(os.path.join(dirpath, "study.ini"))
    model = ini[("model", "spec")]
    with open(os.path.join(dirpath, "..", "..", "probe.json")) as f:
        probe = json.load(f)
    train = int(ini[("data", "train_size")])
    unit = probe["train_macs"] * train
    budget = float(ini[("study", "budget")])
    arm = tunetop_arm(dirpath, probe["stages"], unit, budget)
    acc, ev = best_at(arm["events"], budget)
    out = {"trial": None, "study_val_acc": None}
    if ev is not None:
        p = arm["params"][ev["trial"]]
        cmd = [tt, "train", "--model", model, "--data", ini[("data", "source")],
               "--train-size", str(train), "--val-size", ini[("data", "val_size")],
               "--epochs", ini[("fidelity", "epochs")], "--seed", ini[("study", "seed")],
               "--threads", ini[("train", "threads")], "--schedule", ini[("train", "schedule")],
               "--test"]
        for k, v in p.items():
            cmd += ["--" + k, fmt(v)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        try:
            j = json.loads(r.stdout)
        except ValueError:
            print(f"chosen: the retrain failed: {r.stderr.strip()[-300:]}")
            return 1
        out = {"trial": ev["trial"], "params": p, "study_val_acc": acc,
               "retrain_val_acc": j["val_acc"], "test_acc": j["test_acc"],
               "mode": ini.get(("scheduler", "mode"), "restart"), "cmd": cmd[1:]}
    with open(os.path.join(dirpath, "chosen.json"), "w") as f:
        json.dump(out, f, indent=1)
    name = os.path.basename(dirpath)
    if ev is None:
        print(f"{name}: NO RESULT AT THE TOP RUNG within the budget: the whole budget was "
              f"spent below full fidelity ({arm['spent']:.2f} full-fidelity epochs, "
              f"{arm['trials']} trials)")
    else:
        print(f"{name}: {arm['trials']} trials, {sum(e['top'] for e in arm['events'])} at the "
              f"top rung, spent {arm['spent']:.2f} full-fidelity epochs; chosen trial "
              f"{ev['trial']} val_acc {acc:.4f} (retrained {out['retrain_val_acc']:.4f}) "
              f"test_acc {out['test_acc']:.4f}")
    return 0


# ---- report -------------------------------------------------------------------

def mean_sd(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan"), 0
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd, len(xs)


def f4(x):
    return "   -  " if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def cmd_report(out):
    with open(os.path.join(out, "run.json")) as f:
        run = json.load(f)
    csvdir = os.path.dirname(os.path.abspath(out))
    try:
        with open(os.path.join(out, "env.txt")) as f:
            env = f.read().rstrip()
    except OSError:
        env = "(no env.txt)"
    print("\n==== tunetop's ladder against Optuna (TPE + Hyperband) at equal compute ====")
    print(env)
    E = run["epochs"]
    print(f"data: Fashion-MNIST, {run['train']} training / {run['val']} validation images "
          f"(the split and initialisation from the seed, the same on both sides); "
          f"{E} epochs at full fidelity; schedule cosine")
    print(f"tunetop arms: scheduler {run['sched']}, eta {run['eta']}, min_trainable "
          f"{run['min_trainable']}, mode {run['mode']}, sampler "
          f"{run['sampler'] or '(study default)'}"
          + (f", [fidelity] {run['fidelity_extra']}" if run["fidelity_extra"] else ""))
    print(f"optuna arm: TPESampler(seed) + HyperbandPruner(min_resource="
          f"{run['optuna_min_resource']}, max_resource={E}, reduction_factor={run['optuna_rf']}); "
          f"a diverged run ends {run.get('optuna_diverged', 'pruned')}")
    print("compute: full-fidelity epochs (one epoch of the whole model over the training "
          "images, in the engine's MACs); validation and test not counted; 'within B': "
          "results of runs that ended with at most B spent")
    arms, seeds = run["arms"], run["seeds"]
    loud, seed_rows, curve_rows, mean_rows = [], [], [], []
    for mod in run["models"]:
        spec, B = mod["spec"], float(mod["budget"])
        slug = spec.replace(":", "_").replace(",", "_")
        with open(os.path.join(out, slug, "probe.json")) as f:
            probe = json.load(f)
        stages, unit = probe["stages"], probe["train_macs"] * run["train"]
        z = ladder(stages, run["min_trainable"], run["eta"])
        print(f"\n#### {spec}: {stages} stages, budget B = {B:g} full-fidelity epochs "
              f"= {B * unit / 1e9:.4g} GMAC (1 = {probe['train_macs']:.0f} MAC x "
              f"{run['train']}); tunetop rungs z = {', '.join(map(str, z))}")
        res = {}
        for seed in seeds:
            for arm in arms:
                d = os.path.join(out, slug, f"seed{seed}", arm)
                try:
                    if arm == "optuna":
                        r = optuna_arm(d, unit, E)
                    else:
                        r = tunetop_arm(d, stages, unit, B)
                        try:
                            with open(os.path.join(d, "chosen.json")) as f:
                                r["chosen"] = json.load(f)
                        except OSError:
                            r["chosen"] = None
                except (OSError, sqlite3.Error, KeyError, ValueError) as e:
                    loud.append(f"{spec} seed {seed} {arm}: NO RESULTS ({e})")
                    continue
                try:
                    with open(os.path.join(d, "wall_s")) as f:
                        r["wall"] = float(f.read())
                except (OSError, ValueError):
                    r["wall"] = float("nan")
                res[(seed, arm)] = r

        # per seed
        print(f"\nper seed ({spec}): best full-fidelity val_acc within B, the test accuracy "
              f"of that chosen configuration, runs at the top rung (full fidelity) within B")
        print(f"{'seed':>4} {'arm':>7} {'trials':>6} {'top':>4} {'best val':>8} "
              f"{'test':>7} {'spent':>7} {'top share':>9} {'rho lo-top (n)':>15} {'wall s':>7}")
        for seed in seeds:
            for arm in arms:
                r = res.get((seed, arm))
                if r is None:
                    continue
                acc, ev = best_at(r["events"], B)
                ntop = sum(e["top"] and e["spent"] <= B + TOL for e in r["events"])
                ntop_all = sum(e["top"] for e in r["events"])
                if arm == "optuna":
                    test = ev["test_acc"] if ev else None
                    rho = ""
                else:
                    c = r.get("chosen") or {}
                    test = c.get("test_acc")
                    if ev is not None and c.get("trial") != ev["trial"]:
                        loud.append(f"{spec} seed {seed} {arm}: chosen.json names trial "
                                    f"{c.get('trial')}, the report {ev['trial']}")
                        test = None
                    if c.get("retrain_val_acc") is not None and \
                            abs(c["retrain_val_acc"] - c["study_val_acc"]) > 5e-4:
                        loud.append(f"{spec} seed {seed} {arm}: the chosen trial retrained "
                                    f"for its test accuracy reached val_acc "
                                    f"{c['retrain_val_acc']:.4f}, the study's run "
                                    f"{c['study_val_acc']:.4f} (mode {c.get('mode')})")
                    lo = [row for row in r["corr"] if row[0] == 0 and row[1] == r["top"]]
                    rho = (f"{lo[0][3]:6.3f} ({lo[0][2]})" if lo and lo[0][3] is not None
                           else f"   -  ({lo[0][2] if lo else 0})")
                share = r["by_rung"][-1] / r["spent"] if r["spent"] > 0 else float("nan")
                flag = ""
                if ev is None:
                    flag = "  <- NO FULL-FIDELITY RESULT WITHIN B"
                    loud.append(f"{spec} seed {seed} {arm}: SPENT THE WHOLE BUDGET BELOW THE "
                                f"TOP RUNG: no full-fidelity result within B = {B:g} "
                                f"({ntop_all} after B, {r['spent']:.2f} spent)")
                print(f"{seed:>4} {arm:>7} {r['trials']:>6} {ntop:>4} {f4(acc):>8} "
                      f"{f4(test):>7} {r['spent']:>7.2f} {share:>9.3f} {rho:>15} "
                      f"{r['wall']:>7.0f}{flag}")
                seed_rows.append([spec, seed, arm, r["trials"], ntop, ntop_all,
                                  f4(acc).strip(), f4(test).strip(), f"{r['spent']:.4f}",
                                  f"{share:.4f}", r.get("diverged", 0),
                                  r.get("pruned", ""), f"{r['wall']:.0f}"])
                last = float("nan")
                for e in r["events"]:
                    if e["top"] and e["val_acc"] is not None and not (e["val_acc"] <= last):
                        last = e["val_acc"]
                    curve_rows.append([spec, arm, seed, f"{e['spent']:.4f}", f4(last).strip()])
                r["best"], r["test"], r["ntop"] = acc, test, ntop

        # the mean over seeds
        print(f"\nmean over seeds ({spec}): best full-fidelity val_acc against compute "
              f"(fractions of B), with the seeds that had a full-fidelity result by then")
        print(f"{'arm':>7} " + " ".join(f"{'%.3g B' % fr:>14}" for fr in FRACTIONS))
        for arm in arms:
            cells = []
            for fr in FRACTIONS:
                vals = [best_at(res[(s, arm)]["events"], fr * B)[0] for s in seeds
                        if (s, arm) in res]
                m, _, n = mean_sd(vals)
                cells.append(f"{f4(m)} ({n}/{len(vals)})")
                mean_rows.append([spec, arm, fr, f"{fr * B:.4f}", f4(m).strip(), n, len(vals)])
            print(f"{arm:>7} " + " ".join(f"{c:>14}" for c in cells))
        print(f"\nmean +- sd over seeds ({spec}), within B:")
        print(f"{'arm':>7} {'best val':>16} {'test (chosen)':>16} {'top runs':>8} "
              f"{'trials':>7} {'reached top':>11} {'wall s':>7}")
        for arm in arms:
            rs = [res[(s, arm)] for s in seeds if (s, arm) in res]
            if not rs:
                continue
            mv, sv, _ = mean_sd([r["best"] for r in rs])
            mt, st, _ = mean_sd([r["test"] for r in rs])
            reached = sum(not math.isnan(r["best"]) for r in rs)
            mark = "" if reached == len(rs) else "  <- NOT EVERY SEED"
            print(f"{arm:>7} {f4(mv):>8} +- {sv:.4f} {f4(mt):>8} +- {st:.4f} "
                  f"{mean_sd([r['ntop'] for r in rs])[0]:>8.1f} "
                  f"{mean_sd([r['trials'] for r in rs])[0]:>7.1f} "
                  f"{f'{reached}/{len(rs)}':>11} {mean_sd([r['wall'] for r in rs])[0]:>7.0f}{mark}")

        # compute by rung, and the ranks between rungs
        for arm in arms:
            rs = {s: res[(s, arm)] for s in seeds if (s, arm) in res}
            if not rs:
                continue
            if arm == "optuna":
                tot = [sum(r["by_rung"]) for r in rs.values()]
                shares = [sum(r["by_rung"][k] for r in rs.values()) / max(sum(tot), 1e-12)
                          for k in range(E)]
                print(f"\noptuna ({spec}): share of compute by epoch of a trial: "
                      + ", ".join(f"epoch {k + 1} {s:.2f}" for k, s in enumerate(shares))
                      + f"; pruned {sum(r['pruned'] for r in rs.values())}, diverged "
                      f"{sum(r['diverged'] for r in rs.values())} of "
                      f"{sum(r['trials'] for r in rs.values())} trials")
                for s, r in rs.items():
                    done = [t for t in r["trials_raw"] if t["state"] == "complete"]
                    rhos = [f"epoch {k + 1}-{E} "
                            f"{spearman([t['val_acc'][k] for t in done], [t['val_acc'][-1] for t in done]):.3f}"
                            for k in range(E - 1)]
                    unc = r["summary"].get("uncounted_ff_est", 0.0)
                    chk = r["summary"].get("unit_check_max_abs", 0.0)
                    print(f"  seed {s}: completed trials only (n = {len(done)}): rho "
                          + (", ".join(rhos) or "-")
                          + f"; uncounted after kills ~{unc:.4f} ff-epochs; engine MACs vs "
                          f"epochs x unit: max diff {chk:.2g} ff-epochs")
                    if chk > 1e-3:
                        loud.append(f"{spec} seed {s} optuna: the engine's MACs and epochs x "
                                    f"unit differ by {chk:.4f} full-fidelity epochs")
                continue
            nr = next(iter(rs.values()))["rungs"]
            tot = sum(sum(r["by_rung"]) for r in rs.values())
            shares = [sum(r["by_rung"][k] for r in rs.values()) / max(tot, 1e-12)
                      for k in range(nr)]
            print(f"\n{arm} ({spec}): share of compute by rung: "
                  + ", ".join(f"rung {k} {s:.2f}" for k, s in enumerate(shares))
                  + f"; diverged trials {sum(r['diverged'] for r in rs.values())}")
            print(f"  Spearman rho between rungs (n = trials at both), per seed; the issue "
                  f"wants >= 10 at the top rung")
            pairs = sorted({(row[0], row[1]) for r in rs.values() for row in r["corr"]})
            for a_, b_ in pairs:
                cells, vals = [], []
                for s, r in rs.items():
                    row = next((row for row in r["corr"] if (row[0], row[1]) == (a_, b_)), None)
                    if row is None:
                        cells.append("   -  (0)")
                        continue
                    if row[3] is not None:
                        vals.append(row[3])
                    cells.append(f"{f4(row[3]) if row[3] is not None else '   -  '}({row[2]})")
                m, _, n = mean_sd(vals)
                print(f"  rung {a_} vs {b_}: mean {f4(m)} over {n}; " + "  ".join(cells))
            for s, r in rs.items():
                nt = sum(e["top"] for e in r["events"])
                if nt < 10:
                    loud.append(f"{spec} seed {s} {arm}: {nt} trials at the top rung (< 10): "
                                f"its rho against the top rung rests on too few")
                bl = r["budget_line"]
                if bl and abs(bl[1] * 1e9 - bl[0] * unit) > 0.006 * bl[0] * unit:
                    loud.append(f"{spec} seed {s} {arm}: the study's budget line says "
                                f"{bl[1]:.3g} GMAC, the report's unit gives "
                                f"{bl[0] * unit / 1e9:.3g}")
        overs = [(s, a, res[(s, a)]["spent"]) for s in seeds for a in arms
                 if (s, a) in res and res[(s, a)]["spent"] > B + TOL]
        if overs:
            print(f"\nrunning past B ({spec}): a run that started below B ran to its end, "
                  f"on both sides (its result is not counted within B): "
                  + ", ".join(f"seed {s} {a} {sp:.2f}" for s, a, sp in overs))

    with open(os.path.join(csvdir, "vs_optuna_seeds.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "seed", "arm", "trials", "top_within_b", "top_all",
                    "best_val_acc_within_b", "test_acc_chosen", "spent_ff", "top_share",
                    "diverged", "pruned", "wall_s"])
        w.writerows(seed_rows)
    with open(os.path.join(csvdir, "vs_optuna_curves.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "arm", "seed", "spent_ff", "best_val_acc"])
        w.writerows(curve_rows)
    with open(os.path.join(csvdir, "vs_optuna_mean.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "arm", "fraction_of_b", "spent_ff", "mean_best_val_acc",
                    "seeds_with_result", "seeds"])
        w.writerows(mean_rows)
    print()
    if loud:
        print("NOTE, loudly:")
        for line in loud:
            print("  " + line)
    else:
        print("every study reached full fidelity within its budget")
    print(f"wrote {csvdir}/vs_optuna_seeds.csv, vs_optuna_curves.csv, vs_optuna_mean.csv")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "chosen":
        sys.exit(cmd_chosen(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 3 and sys.argv[1] == "report":
        sys.exit(cmd_report(sys.argv[2]))
    sys.exit(__doc__)
