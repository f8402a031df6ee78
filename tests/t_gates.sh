#!/bin/sh
# t_gates.sh — complexity-aware training from the outside.
#
# 1. Real data: a small ResNet on a Fashion-MNIST subset with --gates 2
#    removes a substantial share of its FLOPs (the engine's own count of
#    the compacted network), ends with every gate exactly 0 or 1, and
#    still learns (far above chance).  Five epochs of 10,000 images:
#    warm-up, three gated epochs, a fine-tuning epoch.
# 2. A gated study: the masks table holds every gate of the trials that
#    trained gated stages, final masks 0/1 with prob equal to on, and their
#    rung results say what they kept; the log names every head-only rung
#    (nothing to gate) as trained ungated.
BIN=${TT_BIN:-build/tunetop}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT INT TERM

"$BIN" train --model resnet:1,1,1:w16 --data fashion-mnist --train-size 10000 \
	--val-size 5000 --epochs 5 --seed 3 --gates 2 >"$T/out" 2>"$T/err"
rc=$?
tail -2 "$T/err"
if [ $rc -ne 0 ]; then
	echo "FAIL gates-fmnist-resnet: exit status $rc: $(tail -3 "$T/err")"
else
	python3 - "$T/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
g = r.get("gates")
why = []
if not g:
    why.append("no gates object in the JSON")
else:
    if not g["macs_kept"] <= 0.6:
        why.append("kept %.3f of the FLOPs, expected at most 0.6" % g["macs_kept"])
    if not 0 < g["params_kept"] <= 1:
        why.append("params_kept %r" % g["params_kept"])
    masks = "".join(s["mask"] for s in g["stages"])
    units = sum(s["units"] for s in g["stages"])
    layers = [s["layer"] for s in g["stages"] if "layer" in s]
    if set(masks) - set("01") or len(masks) != units:
        why.append("masks not all 0/1 or not one per unit: %r" % masks[:80])
    if any(l not in (True, False, 0, 1) for l in layers):
        why.append("layer gates %r" % layers)
    if sum(s["kept"] for s in g["stages"]) != masks.count("1"):
        why.append("units kept disagree with the masks")
    if g["count"] != units + len(layers):
        why.append("count %d, %d units + %d layer gates" % (g["count"], units, len(layers)))
if not r["val_acc"] >= 0.6:
    why.append("val_acc %.4f, expected at least 0.6" % r["val_acc"])
print(("FAIL" if why else "ok") + " gates-fmnist-resnet: FLOPs kept %s, params kept %s, "
      "val_acc %.4f%s" % (g and round(g["macs_kept"], 3), g and round(g["params_kept"], 3),
                          r["val_acc"], ": " + "; ".join(why) if why else ""))
PY
fi

sed -e 's/^threads = 1/threads = 1\ngate-strength = 3/' -e 's/^epochs = 3/epochs = 4/' \
	examples/quick.ini >"$T/quick.ini"
if ! "$BIN" run --headless "$T/quick.ini" >"$T/log" 2>&1; then
	echo "FAIL gates-study: the study failed: $(tail -3 "$T/log")"
	exit 0
fi
q() { sqlite3 "$T/quick.db" "$1"; }
# gated stages exist from depth 2 (fc2) on: those trials have masks
with=$(q "SELECT count(DISTINCT trial_id) FROM masks")
deep=$(q "SELECT count(DISTINCT trial_id) FROM rungs WHERE trainable >= 2")
bad01=$(q "SELECT count(*) FROM masks WHERE \"on\" NOT IN (0, 1) OR prob != \"on\"")
per=$(q "SELECT group_concat(n) FROM (SELECT count(*) AS n FROM masks GROUP BY trial_id)")
kept=$(q "SELECT count(*) FROM rungs WHERE trainable >= 2 AND macs_kept > 0 AND macs_kept <= 1")
if [ "$deep" -lt 1 ] || [ "$with" -ne "$deep" ]; then
	echo "FAIL gates-study: $with trials with masks, $deep trained gated stages"
elif [ "$bad01" -ne 0 ]; then
	echo "FAIL gates-study: $bad01 final masks not 0/1 or prob != on"
elif [ "$kept" -ne "$(q "SELECT count(*) FROM rungs WHERE trainable >= 2")" ]; then
	echo "FAIL gates-study: gated rung results without macs_kept"
elif [ "$(grep -c 'trained ungated' "$T/log")" -ne "$(q "SELECT count(*) FROM rungs WHERE trainable = 1")" ]; then
	echo "FAIL gates-study: the log names $(grep -c 'trained ungated' "$T/log") head-only rungs as ungated, the database has $(q "SELECT count(*) FROM rungs WHERE trainable = 1")"
else
	echo "ok gates-study: $with gated trials, masks per trial $per"
fi
