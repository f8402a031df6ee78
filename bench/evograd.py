#!/usr/bin/python3
"""bench/evograd.py — EvoGrad (methods.md section 3) on Fashion-MNIST:
what it learns inside one run, against what the run does without it.

Three experiments, every run a `tunetop train ... --test` whose JSON line
is kept in bench/out/evograd/:

  noisy     40% symmetric label noise on the training split, 1000 clean
            validation images, mlp:256,128, 10 epochs: plain cross-entropy
            against EvoGrad learning a Meta-Weight-Net (--evograd mwn), and
            the same network trained on clean labels (the ceiling any
            reweighting can reach).  Clean test accuracy, time per step and
            peak memory (the engine's booked device bytes, and the
            process's max RSS).  Targets: +3 points of test accuracy, at
            most 3x the time per step.  Then the same on 5000 training
            images for 20 epochs, where the network memorises the noise,
            over three seeds.
  rotate    train upright, validate and test rotated 30 degrees: the
            upright-trained baseline against EvoGrad learning the
            training images' angle (--evograd rotate), on mlp:256,128
            with the paper's K = 2 and sigma = 0.001 and with K = 8,
            sigma = 0.01, and on cnn:8,16 with the latter.  Targets: the
            angle within 5 degrees of 30, rotated-test accuracy clearly
            above the baseline's.
  wd        the weight decay learned online (--evograd wd from the
            default 5e-4) against random search over a fixed weight decay
            (log-uniform in [1e-5, 1e-1]) given the same compute: as many
            plain runs as fit in the EvoGrad run's wall time, the best by
            validation accuracy.

Usage: /usr/bin/python3 bench/evograd.py [--quick] [noisy] [rotate] [wd]
Env: BUILD (build), THREADS (2), EVO_EPOCHS (10), EVO_TRAIN (55000),
EVO_ROT ("mlp:256,128 20000 2 rotate;mlp:256,128 20000 2 rotate,8,0.01;
cnn:8,16 10000 4 rotate,8,0.01": model, images, epochs, --evograd per arm),
EVO_SEEDS (1), EVO_SMALL_SEEDS (1,2,3).
"""
import json
import math
import os
import random
import subprocess
import sys
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
quick = "--quick" in sys.argv or os.environ.get("QUICK") == "1"
build = os.environ.get("BUILD", "build")
tt = os.path.join(build, "tunetop")
out_dir = os.path.join("bench", "out", "evograd")
os.makedirs(out_dir, exist_ok=True)
threads = os.environ.get("THREADS", "2")
epochs = int(os.environ.get("EVO_EPOCHS", "2" if quick else "10"))
train = int(os.environ.get("EVO_TRAIN", "8000" if quick else "55000"))
rot_arms = [a.split() for a in os.environ.get(
    "EVO_ROT", "mlp:256,128 4000 1 rotate,8,0.01" if quick else
    "mlp:256,128 20000 2 rotate;mlp:256,128 20000 2 rotate,8,0.01;"
    "cnn:8,16 10000 4 rotate,8,0.01").split(";") if a.strip()]
seeds = [int(s) for s in os.environ.get("EVO_SEEDS", "1").split(",")]
small_seeds = [int(s) for s in os.environ.get("EVO_SMALL_SEEDS", "1" if quick else "1,2,3").split(",")]
which = args or ["noisy", "rotate", "wd"]


def run(tag, extra):
    """One `tunetop train` run: its JSON and the process's max RSS (KiB)."""
    path = os.path.join(out_dir, tag + ".json")
    cmd = [tt, "train", "--test", "--threads", threads] + extra
    print("  $ " + " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    if p.returncode != 0:
        sys.exit("bench/evograd.py: %s failed (%d)" % (" ".join(cmd), p.returncode))
    line = out.decode().strip().splitlines()[-1]
    with open(path, "w") as f:
        f.write(line + "\n")
    j = json.loads(line)
    j["_rss_kib"] = ru.ru_maxrss
    j["_wall"] = wall
    return j


def step_ms(j):
    return 1e3 * j["seconds"] / j["steps"]


def row(name, j, base=None):
    acc = 100 * j["test_acc"]
    ev = j.get("evograd")
    learned = ""
    if ev:
        learned = " ".join("%s=%.4g" % (k, v) for k, v in ev["values"].items())
    s = "%-22s test %6.2f%%" % (name, acc)
    if base:
        s += " (%+5.2f)" % (acc - 100 * base["test_acc"])
    else:
        s += "        "
    s += "  %7.2f ms/step" % step_ms(j)
    if base:
        s += " (x%.2f)" % (step_ms(j) / step_ms(base))
    else:
        s += "        "
    s += "  peak %6.1f MB booked, %6.1f MB RSS" % (j["memory"]["peak"] / 1e6,
                                                  j["_rss_kib"] / 1024)
    print(s + ("  " + learned if learned else ""), flush=True)


common = ["--train-size", str(train), "--val-size", "5000"]

if "noisy" in which:
    print("noisy labels: mlp:256,128, 40%% symmetric noise, %d epochs, 1000 clean "
          "validation images" % epochs, flush=True)
    for seed in seeds:
        a = ["--model", "mlp:256,128", "--epochs", str(epochs), "--label-noise", "0.4",
             "--clean-val", "1000", "--seed", str(seed)] + common
        plain = run("noisy_plain_s%d" % seed, a)
        evo = run("noisy_mwn_s%d" % seed, a + ["--evograd", "mwn"])
        clean = run("noisy_clean_s%d" % seed, [x for x in a if x not in ("--label-noise", "0.4")])
        row("plain cross-entropy", plain)
        row("evograd mwn", evo, plain)
        row("clean labels (ceiling)", clean, plain)
        print("  in-run: meta-steps %.1f%% of the time, a step %.2fx its plain part"
              % (100 * evo["evograd"]["meta_seconds"] / evo["seconds"],
                 evo["evograd"]["step_ratio"]), flush=True)
    print("noisy labels, memorising: 5000 training images, 20 epochs", flush=True)
    gains = []
    for seed in small_seeds:
        a = ["--model", "mlp:256,128", "--epochs", "20", "--label-noise", "0.4",
             "--clean-val", "1000", "--seed", str(seed), "--train-size", "5000",
             "--val-size", "5000"]
        plain = run("small_plain_s%d" % seed, a)
        evo = run("small_mwn_s%d" % seed, a + ["--evograd", "mwn"])
        row("plain s%d" % seed, plain)
        row("evograd mwn s%d" % seed, evo, plain)
        gains.append(100 * (evo["test_acc"] - plain["test_acc"]))
    print("  mean gain %+.2f points over %d seeds" % (sum(gains) / len(gains), len(gains)),
          flush=True)

if "rotate" in which:
    print("rotation: trained upright, validated and tested at 30 degrees", flush=True)
    baselines = {}
    for seed in seeds:
        for model, n, ep, evo in rot_arms:
            a = ["--model", model, "--epochs", ep, "--val-rotate", "30", "--seed", str(seed),
                 "--train-size", n, "--val-size", "5000"]
            tag = "%s_%s_%s_s%d" % (model.replace(":", "_").replace(",", "-"), n, ep, seed)
            if tag not in baselines:
                baselines[tag] = run("rotate_plain_" + tag, a)
                row("upright %s %s x%s" % (model, n, ep), baselines[tag])
            j = run("rotate_%s_%s" % (evo.replace(",", "_"), tag), a + ["--evograd", evo])
            row("evograd %s" % evo, j, baselines[tag])
            ang = j["evograd"]["values"]["angle"]
            print("  learned angle %.2f degrees (target 30 +- 5: %s)"
                  % (ang, "met" if abs(ang - 30) <= 5 else "missed"), flush=True)

if "wd" in which:
    print("weight decay: mlp:256,128, %d epochs, learned online against random "
          "search at the same compute" % epochs, flush=True)
    for seed in seeds:
        a = ["--model", "mlp:256,128", "--epochs", str(epochs), "--seed", str(seed)] + common
        evo = run("wd_evograd_s%d" % seed, a + ["--evograd", "wd"])
        budget = evo["_wall"]
        rng = random.Random(seed)
        spent, trials = 0.0, []
        while spent < budget or not trials:
            wd = math.exp(rng.uniform(math.log(1e-5), math.log(1e-1)))
            j = run("wd_fixed_s%d_%d" % (seed, len(trials)), a + ["--weight-decay", "%.3g" % wd])
            spent += j["_wall"]
            trials.append((wd, j))
            if spent + j["_wall"] > budget * 1.05:
                break
        best_wd, best = max(trials, key=lambda t: t[1]["val_acc"])
        print("  evograd wd: %.0f s; random search: %d runs in %.0f s"
              % (budget, len(trials), spent), flush=True)
        row("random search best", best)
        print("    (its weight decay %.3g, val %.2f%%)" % (best_wd, 100 * best["val_acc"]))
        row("evograd wd", evo, best)
        print("    (val %.2f%%)" % (100 * evo["val_acc"]), flush=True)
