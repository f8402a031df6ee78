#!/bin/sh
# t_fmnist.sh — real data: a small ResNet learns Fashion-MNIST in one epoch.
#
# One epoch over a subset of the real training set (from Debian's
# dataset-fashion-mnist, installed by `make deps`), then validation on a
# held-out split: the run must reach 85% and report a sane JSON result.
BIN=${TT_BIN:-build/tunetop}
out=$(mktemp); err=$(mktemp); trap 'rm -f "$out" "$err"' EXIT
"$BIN" train --model resnet:1,1,1:w16 --data fashion-mnist \
	--train-size 55000 --val-size 5000 --epochs 1 --batch 64 \
	--optimizer sgd --lr 0.05 --seed 7 >"$out" 2>"$err"
rc=$?
cat "$err" | tail -3
if [ $rc -ne 0 ]; then
	echo "FAIL fmnist-resnet-one-epoch: exit status $rc"
	exit 0
fi
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
acc = r["val_acc"]
ok = (acc >= 0.85 and not r["diverged"] and r["epochs"] == 1
      and r["memory"]["peak"] >= r["memory"]["total"] > 0)
print(("ok" if ok else "FAIL") + " fmnist-resnet-one-epoch: val_acc %.4f (needs 0.85), %.0f samples/s"
      % (acc, r["samples_per_s"]))
PY
