#!/bin/sh
# t_gates_front.sh — the gates' accuracy-cost front is smooth, and the
# strength means the same cost whatever the model (issue 14).
#
# A small MLP on the synthetic set, trained gated at strengths on a grid
# of steps x1.25 from 0.25 to 3.64: the FLOPs kept at the end fall with
# the strength, no two neighbours differ by more than 0.25, the cost the
# probabilities expect lands near the target 1/(1+S), and at least 95% of
# the gates settled at 0 or 1 before the end had to round them.  A small
# ResNet at two of the strengths must land near the same targets.  No
# timing is asserted.
BIN=${TT_BIN:-build/tunetop}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT INT TERM

run() { # model strength -> one JSON line in $T/$1_$2.json
	"$BIN" train --model "$1" --data synthetic --train-size 2000 --val-size 500 \
		--epochs 4 --batch 64 --threads 1 --seed 2 --gates "$2" \
		>"$T/$(echo "$1" | tr ':,' '__')_$2.json" 2>"$T/err" ||
		{ echo "FAIL gates-front: $1 --gates $2: $(tail -2 "$T/err")"; exit 0; }
}

S="0.25 0.3125 0.390625 0.488281 0.610352 0.762939 0.953674 1.19209 1.49012 1.86265 2.32831 2.91038 3.63798"
for s in $S; do run mlp:64,64 "$s"; done
for s in 0.5 2; do run resnet:1,1:w8 "$s"; done

python3 - "$T" $S <<'PY'
import json, sys
d, grid = sys.argv[1], [float(x) for x in sys.argv[2:]]
def load(model, s):
    name = "%s/%s_%s.json" % (d, model.replace(":", "_").replace(",", "_"), s)
    r = json.loads(open(name).read().strip().splitlines()[-1])
    return r["gates"], r["val_acc"]
why = []
kept, rows, dev, settle = [], [], 0.0, 1.0
for s, arg in zip(grid, sys.argv[2:]):
    g, acc = load("mlp:64,64", arg)
    c = 0.5 * g["macs_expected"] + 0.5 * g["params_expected"]
    kept.append(g["macs_kept"])
    settled = 1 - g["rounded"] / g["count"]
    rows.append("%.3g:%.3f" % (s, g["macs_kept"]))
    dev, settle = max(dev, abs(c - 1 / (1 + s))), min(settle, 1 - g["rounded"] / g["count"])
    if abs(c - 1 / (1 + s)) > 0.08:
        why.append("mlp S=%g: cost %.3f, target %.3f" % (s, c, 1 / (1 + s)))
    if settled < 0.95:
        why.append("mlp S=%g: %.1f%% of the gates settled" % (s, 100 * settled))
for a, b, sa, sb in zip(kept, kept[1:], grid, grid[1:]):
    if abs(a - b) > 0.25:
        why.append("S=%g -> %g: FLOPs kept %.3f -> %.3f" % (sa, sb, a, b))
    if b > a + 0.03:
        why.append("S=%g -> %g: FLOPs kept rose %.3f -> %.3f" % (sa, sb, a, b))
if kept[0] < 0.6 or kept[-1] > 0.35:
    why.append("the grid spans FLOPs kept %.3f .. %.3f, expected 0.6+ .. 0.35-" % (kept[0], kept[-1]))
for arg in ("0.5", "2"):
    g, acc = load("resnet:1,1:w8", arg)
    c = 0.5 * g["macs_expected"] + 0.5 * g["params_expected"]
    s = float(arg)
    if abs(c - 1 / (1 + s)) > 0.1:
        why.append("resnet S=%s: cost %.3f, target %.3f" % (arg, c, 1 / (1 + s)))
print(("FAIL" if why else "ok") + " gates-front: cost at most %.3f from 1/(1+S), %.1f%% "
      "settled at worst; FLOPs kept " % (dev, 100 * settle) + " ".join(rows) +
      (": " + "; ".join(why) if why else ""))
PY
