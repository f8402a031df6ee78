#!/usr/bin/python3
"""report.py - the benchmark's table and CSV from bench/run.sh's raw outputs.

Reads RAW/manifest.tsv (tag, model, label, z, stages per configuration),
RAW/TAG.engine.json (the JSON line of `tunetop train`), RAW/TAG.engine.rss
(peak RSS in KiB from /usr/bin/time -f %M), RAW/TAG.torch.json (from
bench/torch_bench.py) and RAW/sgemm.txt and RAW/sgemm_end.txt (from
bench/sgemm, at the start and the end of the run; the better of the two
counts, line by line).  Prints the sgemm rates and three tables on stdout
(speed, memory, targets) and writes one CSV row per configuration, plus
the sgemm measurements beside it in sgemm.csv.

Definitions:
  engine GFLOP/s  = 2 * train_macs * samples_per_s / 1e9 (train_macs from
                    the engine: multiply-accumulates per example per step)
  torch GFLOP/s   = the same with PyTorch's samples/s (the same network)
  %peak, %mix     = engine GFLOP/s as a share of sgemm_peak (1024^3) and
                    of the sgemm mix for the model (conv for cnn/resnet,
                    dense for mlp: what sgemm gives at the engine's shapes)
  step time       = batch / samples_per_s
  profile share   = seconds of one operation kind (the TUNETOP_PROFILE totals)
                    over the profiled run's training seconds; "host" is
                    what is left of those seconds (batch assembly on the
                    host, the loop itself).  alloc (model creation) is not
                    step time and is left out.
Targets: engine memory (accounted peak) at z = half <= 0.55 x z = all;
engine step time at half <= 0.65 x all; engine peak RSS <= 0.25 x
PyTorch's; and engine cost (memory, step time) rising strictly with z.
"""
import argparse
import csv
import json
import os
import sys

MIB = 1 << 20
TARGET_MEM, TARGET_STEP, TARGET_RSS = 0.55, 0.65, 0.25
# TUNETOP_PROFILE's kinds in the order the profile table prints them, with
# their column heads; alloc (model creation) is not step time.
PROFILE_KINDS = [("gemm", "gemm"), ("conv", "conv"), ("bn", "bn"),
                 ("elementwise", "elem"), ("pool", "pool"),
                 ("zero_copy", "zero"), ("optimizer", "optim"),
                 ("loss", "loss"), ("data", "data"), ("gates", "gates"),
                 ("other", "other")]


def last_json(path):
    try:
        with open(path) as f:
            lines = [l for l in f if l.lstrip().startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def profile(path):
    """The {"profile": ...} line tunetop writes to stderr under TUNETOP_PROFILE."""
    try:
        with open(path) as f:
            for line in reversed(f.readlines()):
                if line.startswith('{"profile"'):
                    return json.loads(line).get("profile")
    except (OSError, ValueError):
        pass
    return None


def read_tsv(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except OSError:
        return []


def last_int(path):
    """/usr/bin/time -o writes the value last (after a status note)."""
    try:
        with open(path) as f:
            vals = [l.strip() for l in f if l.strip().isdigit()]
        return int(vals[-1]) if vals else None
    except OSError:
        return None


def first_line(path):
    try:
        with open(path) as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1] if lines else "no output"
    except OSError:
        return "no output"


def field(d, *paths):
    """The first present field among dotted paths, else None."""
    for p in paths:
        v = d
        for k in p.split("."):
            if not isinstance(v, dict) or k not in v:
                v = None
                break
            v = v[k]
        if v is not None:
            return v
    return None


def read_sgemm(path):
    shapes, mix, peak = [], {}, None
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) == 6 and w[0] == "sgemm":
                    shapes.append((int(w[1]), int(w[2]), int(w[3]), w[4],
                                   float(w[5])))
                elif len(w) == 3 and w[0] == "sgemm_mix":
                    mix[w[1]] = float(w[2])
                elif len(w) == 2 and w[0] == "sgemm_peak":
                    peak = float(w[1])
    except OSError:
        pass
    return shapes, mix, peak


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec, width):
    s = "-" if v is None else format(v, spec)
    return s.rjust(width)


def mark(v, target):
    if v is None:
        return "-"
    return "ok" if v <= target else "MISSED"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--quick", default="0")
    a = ap.parse_args()

    # sgemm ran at the start and at the end; the better of the two per
    # line, as one busy moment should not lower the reference.
    shapes, mix, peak = read_sgemm(os.path.join(a.raw, "sgemm.txt"))
    shapes2, mix2, peak2 = read_sgemm(os.path.join(a.raw, "sgemm_end.txt"))
    if shapes2:
        best = {s[:4]: s[4] for s in shapes}
        for s in shapes2:
            best[s[:4]] = max(best.get(s[:4], 0), s[4])
        shapes = [k + (g,) for k, g in best.items()]
        for k, g in mix2.items():
            mix[k] = max(mix.get(k, 0), g)
        peak = max(peak or 0, peak2 or 0) or None
    # model -> (engine settings, torch settings) in words, as kept
    kept = {k[0]: (k[2], k[4]) for k in read_tsv(os.path.join(a.raw, "kept.tsv"))
            if len(k) == 5}
    tune = read_tsv(os.path.join(a.raw, "tune.tsv"))
    rows = []
    try:
        with open(os.path.join(a.raw, "manifest.tsv")) as f:
            manifest = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    except OSError:
        manifest = []
    for tag, model, label, z, stages in manifest:
        e = last_json(os.path.join(a.raw, tag + ".engine.json"))
        t = last_json(os.path.join(a.raw, tag + ".torch.json"))
        rss_kib = last_int(os.path.join(a.raw, tag + ".engine.rss"))
        r = {"model": model, "label": label, "z": int(z),
             "stages": int(stages)}
        r["engine_error"] = "" if e else first_line(
            os.path.join(a.raw, tag + ".engine.err"))
        r["torch_error"] = "" if t else first_line(
            os.path.join(a.raw, tag + ".torch.err"))
        e, t = e or {}, t or {}
        r["engine_steps"] = field(e, "steps")
        r["engine_seconds"] = field(e, "seconds")
        r["engine_sps"] = field(e, "samples_per_s")
        r["train_macs"] = field(e, "train_macs")
        r["mem_peak"] = field(e, "memory.peak", "mem_peak")
        r["mem_total"] = field(e, "memory.total", "mem_total")
        r["engine_rss"] = rss_kib * 1024 if rss_kib and e else None
        r["torch_steps"] = field(t, "steps")
        r["torch_seconds"] = field(t, "seconds")
        r["torch_sps"] = field(t, "samples_per_s")
        r["torch_rss"] = field(t, "peak_rss_bytes")
        r["torch_stages"] = field(t, "stages")
        r["torch_blas"] = " ".join(field(t, "blas") or [])
        r["torch_blas_build"] = field(t, "blas_build")
        r["engine_settings"] = kept.get(model, ("", ""))[0]
        r["torch_settings"] = kept.get(model, ("", ""))[1]
        pj = last_json(os.path.join(a.raw, tag + ".prof.json")) or {}
        # the line at exit on stderr, or (when tunetop writes it there
        # too) the "profile" member of the JSON result
        prof = (profile(os.path.join(a.raw, tag + ".prof.err"))
                or field(pj, "profile"))
        psecs = field(pj, "seconds")
        for k, _ in PROFILE_KINDS:
            r["prof_" + k] = (prof[k] / psecs if prof and psecs
                              and k in prof else None)
        r["prof_host"] = (max(0.0, 1 - sum(prof.get(k, 0) for k, _ in
                                          PROFILE_KINDS) / psecs)
                          if prof and psecs else None)
        r["prof_seconds"] = psecs if prof else None
        r["prof_steps"] = field(pj, "steps") if prof else None
        r["sps_ratio"] = ratio(r["engine_sps"], r["torch_sps"])
        r["rss_ratio"] = ratio(r["engine_rss"], r["torch_rss"])
        macs = r["train_macs"]
        r["engine_gflops"] = (2 * macs * r["engine_sps"] / 1e9
                              if macs and r["engine_sps"] else None)
        r["torch_gflops"] = (2 * macs * r["torch_sps"] / 1e9
                             if macs and r["torch_sps"] else None)
        kind = "dense" if model.startswith("mlp") else "conv"
        r["sgemm_mix_name"] = kind
        r["sgemm_mix_gflops"] = mix.get(kind)
        r["sgemm_peak_gflops"] = peak
        r["share_peak"] = ratio(r["engine_gflops"], peak)
        r["share_mix"] = ratio(r["engine_gflops"], mix.get(kind))
        rows.append(r)

    if a.quick == "1":
        print("QUICK RUN: smoke test only, one or two steps per side; "
              "the numbers mean little.\n")

    print("OpenBLAS sgemm, 2 threads (GFLOP/s):")
    for m, n, k, tr, g in shapes:
        print("  %6d x %4d x %5d %s %8.1f" % (m, n, k, tr, g))
    print("  mix: " + ", ".join("%s %.1f" % kv for kv in sorted(mix.items()))
          + ("; peak (1024^3) %.1f" % peak if peak else "; peak -"))
    print()

    w = 18
    if tune:
        print("Settings tried at z = all (samples/s of a short run; * kept, "
              "used for every z):")
        for m in dict.fromkeys(t[0] for t in tune):
            print(m)
            for side in ("engine", "torch"):
                cands = [t for t in tune if t[0] == m and t[1] == side
                         and len(t) == 5]
                keep = kept.get(m, ("", ""))[0 if side == "engine" else 1]
                for _, _, _, words, tag in cands:
                    d = last_json(os.path.join(a.raw, tag + ".json"))
                    sps = field(d or {}, "samples_per_s")
                    why = "" if d else "  failed: " + first_line(
                        os.path.join(a.raw, tag + ".err"))
                    print("  %-6s %s %-56s%s%s" % (
                        side, "*" if words == keep else " ", words,
                        fmt(sps, ".1f", 10), why))
        print()
    elif kept:
        for m, (e, t) in kept.items():
            print("%s: engine %s; torch %s" % (m, e, t))
        print()

    print("Speed (samples/s, batch 128, 2 cores, each side at its kept "
          "settings;\n GFLOP/s = 2*train_macs*samples/s):")
    print("%-*s %-9s %9s %9s %9s %9s %6s %6s %9s" % (
        w, "model", "z", "engine/s", "torch/s", "eng/torch", "eng GF/s",
        "%peak", "%mix", "torch GF/s"))
    for r in rows:
        print("%-*s %-9s%s%s%s%s%s%s%s" % (
            w, r["model"], "%s(%d)" % (r["label"], r["z"]),
            fmt(r["engine_sps"], ".1f", 10), fmt(r["torch_sps"], ".1f", 10),
            fmt(r["sps_ratio"], ".2f", 10), fmt(r["engine_gflops"], ".1f", 10),
            fmt(r["share_peak"] and 100 * r["share_peak"], ".0f", 7),
            fmt(r["share_mix"] and 100 * r["share_mix"], ".0f", 7),
            fmt(r["torch_gflops"], ".1f", 11)))
    print()

    print("Memory (MiB; engine peak/total: accounted by the engine; RSS: "
          "peak resident set of the process):")
    print("%-*s %-9s %9s %9s %9s %9s %14s" % (
        w, "model", "z", "eng peak", "eng total", "eng RSS", "torch RSS",
        "RSS eng/torch"))
    for r in rows:
        mb = lambda v: v / MIB if v is not None else None
        print("%-*s %-9s%s%s%s%s%s %s" % (
            w, r["model"], "%s(%d)" % (r["label"], r["z"]),
            fmt(mb(r["mem_peak"]), ".1f", 10), fmt(mb(r["mem_total"]), ".1f", 10),
            fmt(mb(r["engine_rss"]), ".1f", 10), fmt(mb(r["torch_rss"]), ".1f", 10),
            fmt(r["rss_ratio"], ".3f", 15), mark(r["rss_ratio"], TARGET_RSS)))
    print()

    print("Targets (engine): half vs all memory <= %.2f, step time <= %.2f; "
          "cost rising with z:" % (TARGET_MEM, TARGET_STEP))
    print("%-*s %14s %14s %14s %14s  %s" % (
        w, "model", "mem half/all", "step half/all", "mem 1/all",
        "step 1/all", "rises with z"))
    models = []
    for r in rows:
        if r["model"] not in models:
            models.append(r["model"])
    for m in models:
        by = {r["label"]: r for r in rows if r["model"] == m}
        al, hf, one = by.get("all", {}), by.get("half", {}), by.get("1", {})
        mem = lambda r: r.get("mem_peak")
        step = lambda r: (128.0 / r["engine_sps"]
                          if r.get("engine_sps") else None)
        mh, sh = ratio(mem(hf), mem(al)), ratio(step(hf), step(al))
        m1, s1 = ratio(mem(one), mem(al)), ratio(step(one), step(al))
        # Strictly rising over the distinct z values measured.
        seq = sorted({(r["z"], mem(r), step(r)) for r in (one, hf, al) if r},
                     key=lambda x: x[0])
        if any(x[1] is None or x[2] is None for x in seq) or len(seq) < 2:
            rises = "-"
        else:
            mr = all(seq[i][1] < seq[i + 1][1] for i in range(len(seq) - 1))
            sr = all(seq[i][2] < seq[i + 1][2] for i in range(len(seq) - 1))
            rises = "memory %s, time %s" % ("yes" if mr else "NO",
                                            "yes" if sr else "NO")
        print("%-*s %s %-6s %s %-6s %s %s  %s" % (
            w, m, fmt(mh, ".3f", 7), mark(mh, TARGET_MEM),
            fmt(sh, ".3f", 7), mark(sh, TARGET_STEP),
            fmt(m1, ".3f", 14), fmt(s1, ".3f", 14), rises))

    if any(r["prof_seconds"] for r in rows):
        print()
        used = [(k, h) for k, h in PROFILE_KINDS
                if any(r["prof_" + k] for r in rows)]
        print("Engine profile (% of training step time per operation kind, "
              "from a run under\n TUNETOP_PROFILE=1; host = the rest):")
        print("%-*s %-9s %6s" % (w, "model", "z", "steps")
              + "".join(" %6s" % h for _, h in used) + " %6s" % "host")
        for r in rows:
            if not r["prof_seconds"]:
                continue
            print("%-*s %-9s %6s" % (w, r["model"], "%s(%d)" % (r["label"], r["z"]),
                                     r["prof_steps"])
                  + "".join(fmt(r["prof_" + k] and 100 * r["prof_" + k],
                                ".1f", 7) for k, _ in used)
                  + fmt(100 * r["prof_host"], ".1f", 7))

    notes = []
    for r in rows:
        if r["torch_blas"]:
            notes.append("PyTorch ran %s on %s: %s" % (
                r["model"], r["torch_blas_build"], r["torch_blas"]))
    for r in rows:
        if r["engine_error"]:
            notes.append("engine failed, %s %s: %s" % (
                r["model"], r["label"], r["engine_error"]))
        if r["torch_error"]:
            notes.append("torch failed, %s %s: %s" % (
                r["model"], r["label"], r["torch_error"]))
        if r["torch_stages"] is not None and r["torch_stages"] != r["stages"]:
            notes.append("stage counts differ for %s: engine %d, torch %s" % (
                r["model"], r["stages"], r["torch_stages"]))
    if notes:
        print()
        for n in dict.fromkeys(notes):
            print("note: " + n)

    cols = ["model", "label", "z", "stages", "engine_steps", "engine_seconds",
            "engine_sps", "torch_steps", "torch_seconds", "torch_sps",
            "sps_ratio", "train_macs", "engine_gflops", "torch_gflops",
            "sgemm_peak_gflops", "sgemm_mix_name", "sgemm_mix_gflops",
            "share_peak", "share_mix", "mem_peak", "mem_total", "engine_rss",
            "torch_rss", "rss_ratio", "engine_error", "torch_error",
            "engine_settings", "torch_settings", "torch_blas_build",
            "prof_steps", "prof_seconds"] + [
            "prof_" + k for k, _ in PROFILE_KINDS] + ["prof_host"]
    os.makedirs(os.path.dirname(os.path.abspath(a.csv)), exist_ok=True)
    with open(a.csv, "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(cols)
        for r in rows:
            cw.writerow(["" if r[c] is None else
                         (round(r[c], 6) if isinstance(r[c], float) else r[c])
                         for c in cols])
    sg = os.path.join(os.path.dirname(os.path.abspath(a.csv)), "sgemm.csv")
    with open(sg, "w", newline="") as f:
        cw = csv.writer(f)
        cw.writerow(["kind", "m", "n", "k", "trans", "gflops"])
        for s in shapes:
            cw.writerow(("shape",) + s)
        for name, g in sorted(mix.items()):
            cw.writerow(["mix:" + name, "", "", "", "", g])
        cw.writerow(["peak", 1024, 1024, 1024, "NN", peak or ""])
    print()
    print("wrote %s and %s" % (a.csv, os.path.join(os.path.dirname(a.csv), "sgemm.csv")))
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
