#!/bin/sh
# bench/fcache.sh — what a low rung of the frozen-depth ladder costs with and
# without the frozen-prefix feature cache, in full-fidelity epochs.
#
# On Fashion-MNIST (TRAIN training images, default 8000) with MODEL (default
# resnet:2,2,2:w16), batch 128, 2 threads: one full-fidelity epoch (every
# stage trained), then a rung of EPOCHS epochs (default 4) at trainable
# depth Z (default 1) without the cache and with it.  The cost of the rung
# is given in full-fidelity epochs twice: from the multiply-accumulates the
# engine reports (train_macs per example times the examples trained) and
# from the training seconds.  The cached rung is one trial alone: the first
# of a study's trials at that depth; every later trial finds the prefix's
# outputs computed and pays only the trainable stages (the third line).
#
# Usage: sh bench/fcache.sh   (BUILD=build by default)
set -u
BUILD=${BUILD:-build}
TT=$BUILD/tunetop
MODEL=${MODEL:-resnet:2,2,2:w16}
TRAIN=${TRAIN:-8000}
EPOCHS=${EPOCHS:-4}
Z=${Z:-1}
OUT=${OUT:-bench/out/fcache}
mkdir -p "$OUT"
common="--model $MODEL --train-size $TRAIN --val-size 2000 --batch 128 --threads 2"
run() { # name, options...
	name=$1; shift
	"$TT" train $common "$@" >"$OUT/$name.json" 2>"$OUT/$name.log" ||
		{ echo "fcache bench: $name failed: $(tail -1 "$OUT/$name.log")"; exit 1; }
}
echo "fcache bench: $MODEL, $TRAIN images, a rung of $EPOCHS epochs at z = $Z, $(nproc) cores"
run full --epochs 1 --feature-cache 0
run nocache --epochs "$EPOCHS" --trainable "$Z" --feature-cache 0
run cache --epochs "$EPOCHS" --trainable "$Z"
/usr/bin/python3 - "$OUT" "$TRAIN" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
r = {k: json.load(open(f"{out}/{k}.json")) for k in ("full", "nocache", "cache")}
full_macs = r["full"]["train_macs"] * n
full_s = r["full"]["seconds"]
print(f"{'run':<28}{'val_acc':>9}{'seconds':>9}{'full epochs (MACs)':>20}{'full epochs (s)':>17}")
for k, what in (("full", "full fidelity, 1 epoch"), ("nocache", "rung, no cache"),
                ("cache", "rung, cache (first trial)")):
    d = r[k]
    steps_n = d["samples_per_s"] * d["seconds"]
    print(f"{what:<28}{d['val_acc']:9.4f}{d['seconds']:9.2f}"
          f"{d['train_macs'] * steps_n / full_macs:20.3f}{d['seconds'] / full_s:17.3f}")
d = r["cache"]
print(f"numbers equal with and without the cache: val_acc {r['nocache']['val_acc']:.4f} / "
      f"{d['val_acc']:.4f}, val_loss {r['nocache']['val_loss']:.6f} / {d['val_loss']:.6f}")
PY
