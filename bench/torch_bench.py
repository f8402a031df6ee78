#!/usr/bin/python3
"""torch_bench.py - the PyTorch side of the engine benchmark.

Trains the same network the engine trains (built by tests/ref/ttmodels.py
from the same spec string) with the same settings bench/run.sh gives
`tunetop train`: batch 128 of 28x28x1 inputs with random labels, SGD with
momentum 0.9 and lr 0.01, the first n - z stages frozen, 2 threads.  A few
warm-up steps are not timed; then steps run until --seconds have passed
(or exactly --steps), split into --repeats windows of which the fastest
gives samples_per_s and step_ms (mean_samples_per_s is over all of them),
and one JSON line goes to stdout:

  {"model", "stages", "trainable", "batch", "threads", "interop", "steps",
   "seconds", "samples_per_s", "mean_samples_per_s", "windows", "step_ms",
   "loss", "peak_rss_bytes", "torch", "blas", "blas_build", "env"}

peak_rss_bytes is this process's peak resident set (getrusage), the whole
of what a user pays to train with PyTorch: interpreter, libraries, model,
data and autograd.

Which BLAS build torch calls is decided when the process starts: Debian's
torch links libblas.so.3, which the alternatives system points at one of
the OpenBLAS builds (openblas-openmp, openblas-pthread, ...), and an
LD_LIBRARY_PATH naming one build's folder overrides that.  "blas" lists
the BLAS and LAPACK files this process really mapped (read from
/proc/self/maps), "blas_build" names their build, and --expect-blas DIR
makes a run fail unless every one of them lies in DIR: a bench that asks
for the pthread build and silently gets another would compare the wrong
thing.  "env" records the thread and wait settings the process ran with
(OMP_NUM_THREADS, OMP_WAIT_POLICY, GOMP_SPINCOUNT, OPENBLAS_NUM_THREADS).

The training set is --train-size random examples held in memory, as the
engine's synthetic set is, and each step gathers a shuffled batch from it.

Run it with Debian's interpreter, which has python3-torch:
  /usr/bin/python3 bench/torch_bench.py --model resnet:1,1,1:w16 \
      --trainable 2 --seconds 3
  /usr/bin/python3 bench/torch_bench.py --model mlp:512,512,512 --stages
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread \
      OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 /usr/bin/python3 \
      bench/torch_bench.py --model mlp:512,512,512 --seconds 3 \
      --expect-blas /usr/lib/x86_64-linux-gnu/openblas-pthread
"""
import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, os.pardir, "tests", "ref")
# The environment that decides threads and waiting, recorded in the JSON.
ENV_KEYS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
            "OPENBLAS_NUM_THREADS", "OMP_PROC_BIND")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model spec, as tunetop")
    p.add_argument("--trainable", default="all",
                   help="z: train the last z stages; all (or <= 0), half, or a number")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2,
                   help="torch.set_num_threads (intra-op threads)")
    p.add_argument("--interop", type=int, default=0,
                   help="> 0: torch.set_num_interop_threads; 0 leaves it")
    p.add_argument("--expect-blas", default="",
                   help="fail unless every BLAS/LAPACK file mapped lies in "
                   "this folder")
    p.add_argument("--seconds", type=float, default=6.0,
                   help="timed duration when --steps is not given")
    p.add_argument("--steps", type=int, default=0,
                   help="> 0: time this many steps, split over the windows")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed windows; the fastest one is reported")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--train-size", type=int, default=4096)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stages", action="store_true",
                   help="print the model's stage count and exit")
    return p.parse_args()


def load_ttmodels():
    sys.path.insert(0, os.path.normpath(REF))
    try:
        import ttmodels
    except ImportError as e:
        sys.exit("torch_bench: cannot import tests/ref/ttmodels.py: %s" % e)
    return ttmodels


def resolve_z(arg, stages):
    """'all', '' or z <= 0 mean every stage, 'half' stages // 2 (at least
    1); otherwise 1..stages."""
    if arg in ("all", ""):
        return stages
    if arg == "half":
        return max(1, stages // 2)
    try:
        z = int(arg)
    except ValueError:
        sys.exit("torch_bench: --trainable wants all, half or a number, "
                 "not %r" % arg)
    if z <= 0:
        return stages
    if z > stages:
        sys.exit("torch_bench: --trainable %d but the model has %d stages"
                 % (z, stages))
    return z


def loaded_blas():
    """The BLAS and LAPACK libraries this process mapped (Debian's
    alternatives or LD_LIBRARY_PATH decide which build torch gets)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = os.path.basename(path)
                if name.startswith(("libblas", "libopenblas", "liblapack")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def blas_build(libs):
    """A name for the build the files in libs come from: the part after
    'openblas-' of their folder (openmp, pthread, serial), 'reference' for
    Debian's netlib folder blas/, else the folder; 'mixed' when they come
    from more than one folder."""
    dirs = {os.path.basename(os.path.dirname(p)) for p in libs}
    if not dirs:
        return "none"
    if len(dirs) > 1:
        return "mixed"
    d = dirs.pop()
    if d.startswith("openblas-"):
        return d[len("openblas-"):]
    if d in ("blas", "lapack"):
        return "reference"
    return d


def check_blas(libs, want):
    """Exit unless every mapped BLAS/LAPACK file lies in folder want."""
    w = os.path.realpath(want)
    if not libs:
        sys.exit("torch_bench: --expect-blas %s: no BLAS library is mapped"
                 % want)
    bad = [p for p in libs if os.path.dirname(p) != w]
    if bad:
        sys.exit("torch_bench: --expect-blas %s, but this process mapped %s"
                 " (LD_LIBRARY_PATH=%r)" % (want, ", ".join(bad),
                                            os.environ.get("LD_LIBRARY_PATH", "")))


def main():
    a = parse_args()
    import torch
    import torch.nn.functional as F

    # The inter-op pool can be sized only before any parallel work starts.
    if a.interop > 0:
        torch.set_num_interop_threads(a.interop)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    # torch maps its BLAS when it is imported; a small product makes sure
    # the library has been called (and its thread pool started) before the
    # maps are read.
    torch.ones(64, 64) @ torch.ones(64, 64)
    blas = loaded_blas()
    if a.expect_blas:
        check_blas(blas, a.expect_blas)
    tm = load_ttmodels()

    model = tm.build_model(a.model, classes=a.classes, in_ch=1, hw=28)
    stages = len(model.stages)
    if a.stages:
        print(stages)
        return
    z = resolve_z(a.trainable, stages)
    model.train()
    tm.freeze_prefix(model, z)

    # The frozen prefix must own no trainable parameter and the trainable
    # suffix all of them, or the comparison is not of the same work.
    for i, st in enumerate(model.stages):
        want = i >= stages - z
        for p in st.parameters():
            if p.requires_grad != want:
                sys.exit("torch_bench: freeze_prefix(model, %d) left stage %d "
                         "with requires_grad=%s" % (z, i, p.requires_grad))

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    n = max(a.train_size, a.batch)
    data = torch.rand(n, 1, 28, 28)
    labels = torch.randint(0, a.classes, (n,))
    perm = torch.randperm(n)
    pos = 0

    def batch():
        nonlocal perm, pos
        if pos + a.batch > n:
            perm = torch.randperm(n)
            pos = 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        return data.index_select(0, idx), labels.index_select(0, idx)

    def step():
        x, y = batch()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()

    # --repeats timed windows, each of --seconds / repeats (or of --steps
    # / repeats steps); the fastest window is the result, so a burst of
    # other work on a shared machine costs one window, not the measurement.
    reps = max(1, a.repeats)
    windows = []
    for _ in range(reps):
        steps = 0
        t0 = time.perf_counter()
        while True:
            loss = step()
            steps += 1
            dt = time.perf_counter() - t0
            if a.steps > 0:
                if steps >= max(1, a.steps // reps):
                    break
            elif dt >= a.seconds / reps and steps >= 2:
                break
        windows.append((steps * a.batch / dt, steps, dt))
    best = max(windows)
    total_steps = sum(w[1] for w in windows)
    total_s = sum(w[2] for w in windows)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "model": a.model,
        "stages": stages,
        "trainable": z,
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "interop": torch.get_num_interop_threads(),
        "steps": total_steps,
        "seconds": round(total_s, 4),
        "samples_per_s": round(best[0], 2),
        "mean_samples_per_s": round(total_steps * a.batch / total_s, 2),
        "windows": reps,
        "step_ms": round(1000.0 * best[2] / best[1], 3),
        "loss": round(float(loss), 5),
        "peak_rss_bytes": rss,
        "torch": torch.__version__,
        "blas": blas,
        "blas_build": blas_build(blas),
        "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ},
    }))


if __name__ == "__main__":
    main()
