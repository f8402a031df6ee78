#!/usr/bin/python3
"""bench/fms.py — Forecasting Model Search (methods.md section 2) on
Fashion-MNIST: the replay benchmark of the issue's "Benchmark" section.

1. The replay table (build/bench/fms_replay build): a hub of 2 x HUB_SEEDS
   small cnns (cnn:8,16 and cnn:16,32, global pooling), pretrained 2 epochs
   on classes 0-4; CONFIGS configurations (hub x lr x momentum x weight
   decay x batch) fine-tuned with a new head on classes 5-9 for EPOCHS
   epochs, validation accuracy and checkpoint kept after every epoch.
   The table is kept in bench/out/fms/<size>/ and reused.
2. The replays (fms_replay replay): fms (the graph embedding of the
   weights), dyhpo (no weights), fms-flat (flattened weights) and random
   (each configuration trained to the top in a shuffled order) spend the
   larger budget REPEATS times (seeds 1..REPEATS); the smaller budget is the
   same run read at that point.  Every sampler sees the same pool.
3. Reported, for every budget: the Kendall tau-b between the surrogate's
   forecast of final accuracy and the table's final accuracy, over every
   configuration not yet at the top when that budget is spent; the regret
   (the table's best accuracy minus the best accuracy seen so far) every
   10 epochs, as bench/out/fms/<size>/regret.csv and a text table; the
   time per decision (mean and largest, on one thread).
4. One live run: a freeze-thaw study with sampler fms on Fashion-MNIST
   (`tunetop run --headless`), its forecasts table summarised.

Sizes: the full one (FMS_FULL=1 or --full: 12 hub checkpoints, 150
configurations x 10 epochs on 10000 images, the surrogate at 2-core sizes
of methods.md: GMN width 16, 2 blocks, 20 warm steps) and, by default, a
shrunk one that finishes in about 40 minutes on a shared 2-core machine
(24 configurations on 2000 images, the GMN at width 8 with 1 block, 5 warm
steps, 10 initial configurations).  Every size can be set by env:
FMS_CONFIGS, FMS_EPOCHS, FMS_HUB_SEEDS, FMS_HUB_TRAIN, FMS_TRAIN, FMS_VAL,
FMS_THREADS, FMS_BUDGETS (50,100; shrunk 30,60), FMS_REPEATS (5), FMS_WIDTH, FMS_BLOCKS,
FMS_INIT, FMS_FIRST, FMS_WARM, FMS_JOBS (replays at once, 2), FMS_LIVE (1),
FMS_SAMPLERS (which to replay now; the report reads every replay file
there), FMS_FMS_REPEATS (fms's repeats, FMS_REPEATS by default).

Targets (issue 12): FMS's tau at least 0.05 above DyHPO's at the smaller
budget; FMS's regret at or below random's at every budget; a decision under
2 s on 2 cores at the shrunk sizes.

Usage: /usr/bin/python3 bench/fms.py [--full]
"""
import os
import statistics
import subprocess
import sys
import time

full = "--full" in sys.argv or os.environ.get("FMS_FULL") == "1"
build = os.environ.get("BUILD", "build")
rep_bin = os.path.join(build, "bench", "fms_replay")
tt = os.path.join(build, "tunetop")


def env(name, full_v, small_v):
    return os.environ.get(name, str(full_v if full else small_v))


configs = int(env("FMS_CONFIGS", 150, 24))
epochs = int(env("FMS_EPOCHS", 10, 10))
hub_seeds = int(env("FMS_HUB_SEEDS", 6, 6))
hub_train = int(env("FMS_HUB_TRAIN", 10000, 5000))
ntrain = int(env("FMS_TRAIN", 10000, 2000))
nval = int(env("FMS_VAL", 2000, 1000))
threads = int(env("FMS_THREADS", 2, 1))
budgets = [int(b) for b in env("FMS_BUDGETS", "50,100", "30,60").split(",")]
repeats = int(env("FMS_REPEATS", 5, 5))
width = int(env("FMS_WIDTH", 16, 8))
blocks = int(env("FMS_BLOCKS", 2, 1))
init = int(env("FMS_INIT", 20, 10))
first = int(env("FMS_FIRST", 1000, 20))
warm = int(env("FMS_WARM", 20, 5))
jobs = int(env("FMS_JOBS", 2, 2))
live = env("FMS_LIVE", 1, 1) == "1"
samplers = ["fms", "dyhpo", "fms-flat", "random"]
# FMS_SAMPLERS: replay only these (the report still reads every replay
# file there is); FMS_FMS_REPEATS: fewer repeats for fms, the slow one
run_samplers = os.environ.get("FMS_SAMPLERS", ",".join(samplers)).split(",")
fms_repeats = int(os.environ.get("FMS_FMS_REPEATS", str(repeats)))


def reps(s):
    return fms_repeats if s == "fms" else repeats


size = f"c{configs}e{epochs}h{2 * hub_seeds}n{ntrain}"
out = os.path.join("bench", "out", "fms", size)
os.makedirs(out, exist_ok=True)
log = open(os.path.join(out, "bench.log"), "a")


def say(*a):
    line = " ".join(str(x) for x in a)
    print(line, flush=True)
    log.write(line + "\n")
    log.flush()


say(f"== bench/fms.py {time.strftime('%F %T')} size {size}: {configs} configs x {epochs} "
    f"epochs, hub {2 * hub_seeds} on {hub_train}, fine-tune {ntrain}/{nval}, threads "
    f"{threads}; budgets {budgets}, repeats {repeats}; gmn width {width} blocks {blocks}, "
    f"init {init}, fit {first}/{warm} steps")

# ---- 1. the table
t0 = time.time()
r = subprocess.run([rep_bin, "build", out, str(configs), str(epochs), str(hub_seeds),
                    str(hub_train), str(ntrain), str(nval), str(threads)],
                   stderr=subprocess.PIPE, text=True)
log.write(r.stderr)
if r.returncode:
    say("table build failed:", r.stderr[-2000:])
    sys.exit(1)
say(f"table: {time.time() - t0:.0f} s")
acc = {}
for line in open(os.path.join(out, "table.csv")):
    f = line.strip().split(",")
    if f[0] == "config":
        continue
    acc[(int(f[0]), int(f[8]))] = float(f[9])
n = max(i for i, _ in acc) + 1
final = {i: acc[(i, epochs)] for i in range(n) if (i, epochs) in acc}
best = max(acc.values())
finals = sorted(final.values())
say(f"table: {len(final)} configs, final accuracy min {finals[0]:.4f} median "
    f"{finals[len(finals) // 2]:.4f} max {finals[-1]:.4f}; best at any epoch {best:.4f}")

# ---- 2. the replays
top = max(budgets)
res = {}
runs = [(s, k) for s in samplers if s in run_samplers for k in range(1, reps(s) + 1)]
for s_ in samplers:  # replays done before, by another invocation
    for k in range(1, reps(s_) + 1):
        path = os.path.join(out, f"replay_{s_}_{k}.txt")
        if s_ not in run_samplers and os.path.exists(path):
            res[(s_, k)] = path
pending = list(runs)
live_p = {}
while pending or live_p:
    while pending and len(live_p) < jobs:
        s, k = pending.pop(0)
        path = os.path.join(out, f"replay_{s}_{k}.txt")
        if os.path.exists(path) and open(path).read().count("\nd ") + 1 >= top:
            res[(s, k)] = path
            continue
        cmd = [rep_bin, "replay", out, s, str(k), str(top), str(width), str(blocks), str(init),
               str(first), str(warm)]
        live_p[(s, k)] = (subprocess.Popen(cmd, stdout=open(path + ".tmp", "w")), path,
                          time.time())
    for key, (p, path, ts) in list(live_p.items()):
        if p.poll() is not None:
            if p.returncode:
                say(f"replay {key} failed: exit {p.returncode}")
            else:
                os.replace(path + ".tmp", path)
                res[key] = path
                say(f"replay {key[0]} seed {key[1]}: {time.time() - ts:.0f} s")
            del live_p[key]
    time.sleep(0.5)


def kendall(a, b):
    """tau-b"""
    nc = nd = ta = tb = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            x = (a[i] > a[j]) - (a[i] < a[j])
            y = (b[i] > b[j]) - (b[i] < b[j])
            if x == 0 and y == 0:
                continue
            if x == 0:
                ta += 1
            elif y == 0:
                tb += 1
            elif x == y:
                nc += 1
            else:
                nd += 1
    den = ((nc + nd + ta) * (nc + nd + tb)) ** 0.5
    return (nc - nd) / den if den else float("nan")


steps = sorted(set(list(range(10, top + 1, 10)) + budgets))
tau = {}
regret = {}
dtime = {}
dcpu = {}
for (s, k), path in res.items():
    seen = -1.0
    reg = {}
    fc = {}
    times = []
    cpus = []
    for line in open(path):
        f = line.split()
        if f[0] == "d":
            spent, a = int(f[1]), float(f[4])
            seen = max(seen, a)
            times.append(float(f[5]))
            if len(f) > 6:
                cpus.append(float(f[6]))
            if spent in steps:
                reg[spent] = best - seen
        elif f[0] == "f":
            fc.setdefault(int(f[1]), []).append((int(f[2]), float(f[3])))
    regret[(s, k)] = reg
    dtime[(s, k)] = times
    dcpu[(s, k)] = cpus
    for b in budgets:
        if b in fc and len(fc[b]) > 2:
            tau[(s, k, b)] = kendall([m for _, m in fc[b]], [final[i] for i, _ in fc[b]])


def mean_sd(v):
    v = [x for x in v if x == x]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}"


with open(os.path.join(out, "regret.csv"), "w") as f:
    f.write("sampler,seed,epochs,regret\n")
    for (s, k), reg in sorted(res_items := regret.items()):
        for b in sorted(reg):
            f.write(f"{s},{k},{b},{reg[b]:.6f}\n")
say("")
say(f"Kendall tau (forecast of final accuracy vs the table's, configurations not at the "
    f"top), mean ± sd over {repeats} repeats ({fms_repeats} for fms)")
say("sampler    " + "".join(f"{'budget ' + str(b):>20}" for b in budgets))
for s in samplers[:3]:
    say(f"{s:10} " + "".join(
        f"{mean_sd([tau.get((s, k, b), float('nan')) for k in range(1, reps(s) + 1)]):>20}"
        for b in budgets))
say("")
say("regret (best accuracy in the table minus the best seen) against epochs spent, "
    "mean over repeats")
say("epochs " + "".join(f"{s:>10}" for s in samplers))
for b in steps:
    row = []
    for s in samplers:
        v = [regret[(s, k)][b] for k in range(1, reps(s) + 1)
             if (s, k) in regret and b in regret[(s, k)]]
        row.append(f"{statistics.mean(v):10.4f}" if v else f"{'-':>10}")
    say(f"{b:6} " + "".join(row))
say("")
say("time per decision (s): mean, largest, over decisions after the initial design; "
    "wall, then CPU")
for s in samplers[:3]:
    v = [t for k in range(1, reps(s) + 1) for t in dtime.get((s, k), [])[init:]]
    c = [t for k in range(1, reps(s) + 1) for t in dcpu.get((s, k), [])[init:]]
    if v:
        say(f"{s:10} {statistics.mean(v):8.3f} {max(v):8.3f}" +
            (f"   cpu {statistics.mean(c):8.3f} {max(c):8.3f}" if c else ""))

# ---- targets
say("")
lo = min(budgets)
tf = [tau.get(("fms", k, lo), float("nan")) for k in range(1, fms_repeats + 1)]
td = [tau.get(("dyhpo", k, lo), float("nan")) for k in range(1, repeats + 1)]
tf = [x for x in tf if x == x]
td = [x for x in td if x == x]
if tf and td:
    gap = statistics.mean(tf) - statistics.mean(td)
    say(f"target tau: fms {statistics.mean(tf):.3f} - dyhpo {statistics.mean(td):.3f} = "
        f"{gap:+.3f} at {lo} epochs (target >= +0.05): {'met' if gap >= 0.05 else 'NOT met'}")
for b in budgets:
    rf = [regret[("fms", k)].get(b) for k in range(1, fms_repeats + 1) if ("fms", k) in regret]
    rr = [regret[("random", k)].get(b) for k in range(1, repeats + 1) if ("random", k) in regret]
    rf = [x for x in rf if x is not None]
    rr = [x for x in rr if x is not None]
    if rf and rr:
        a, c = statistics.mean(rf), statistics.mean(rr)
        say(f"target regret at {b}: fms {a:.4f} vs random {c:.4f}: "
            f"{'met' if a <= c + 1e-12 else 'NOT met'}")
v = [t for k in range(1, fms_repeats + 1) for t in dtime.get(("fms", k), [])[init:]]
c = [t for k in range(1, fms_repeats + 1) for t in dcpu.get(("fms", k), [])[init:]]
if v:
    say(f"target time: fms decision mean {statistics.mean(v):.2f} s, largest {max(v):.2f} s "
        f"wall (target < 2 s): {'met' if max(v) < 2 else 'NOT met'}" +
        (f"; CPU mean {statistics.mean(c):.2f} s, largest {max(c):.2f} s: "
         f"{'met' if max(c) < 2 else 'NOT met'}" if c else ""))

# ---- 4. one live run
if live:
    ini = os.path.join(out, "live.ini")
    db = os.path.join(out, "live.db")
    for p in (db, db + "-wal", db + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    with open(ini, "w") as f:
        f.write(f"""[study]
name = live
seed = 3
workers = 1
budget = 24
db = {os.path.abspath(db)}

[data]
source = fashion-mnist
train_size = 2000
val_size = 1000

[model]
spec = cnn:8,16

[space]
lr = log-float 0.003 0.3
momentum = choice 0, 0.9
weight-decay = choice 0, 1e-4
batch = choice 64, 256

[fidelity]
kind = epochs
epochs = 4

[scheduler]
kind = freeze-thaw
sampler = fms
max_trials = 12
init_configs = 4
gmn_width = {width}
gmn_blocks = {blocks}
fit_steps_first = {first}
fit_steps = {warm}

[train]
schedule = constant
threads = {threads}
""")
    t0 = time.time()
    r = subprocess.run([tt, "run", "--headless", ini], stderr=subprocess.PIPE, text=True)
    if r.returncode:
        say(f"live run failed: exit {r.returncode}: {r.stderr[-800:]}")
    else:
        import sqlite3
        c = sqlite3.connect(db)
        nd = c.execute("select count(distinct at) from forecasts").fetchone()[0]
        nt = c.execute("select count(distinct trial_id) from forecasts where chosen = 1").fetchone()[0]
        ba = c.execute("select max(val_acc) from rungs").fetchone()[0]
        say(f"live run: {nd} decisions over {nt} trials in {time.time() - t0:.0f} s, "
            f"best val acc {ba}")
