#!/bin/sh
# bench/ladder.sh — does the frozen-depth ladder find good configurations
# for less compute than random search at full fidelity?
#
# On Fashion-MNIST with resnet:2,2,2:w16 and a space of learning rate,
# momentum, weight decay and batch size, three studies get the same
# compute budget B (in full-fidelity epochs over the training subset,
# counted in the multiply-accumulates the engine really computes):
#   random     every trial at full fidelity
#   asha       frozen-depth ASHA, rungs z = 1, 2, 4, 8, eta 2
#   hyperband  frozen-depth Hyperband over the same rungs
# bench/ladder.py then prints the best full-fidelity validation accuracy
# found against compute spent (text table and bench/out/ladder.csv) and
# Spearman's rho between every pair of rungs.
#
# Defaults: 10000 training / 5000 validation images, 2 epochs per rung,
# B = 32 full-fidelity epochs per study: about 7 minutes a study on 2
# cores, well under an hour for the three.  QUICK=1: 4000 images, 1 epoch,
# B = 8, a few minutes in all.
#
# Usage: sh bench/ladder.sh   (BUILD=build by default; make builds first)
set -u
BUILD=${BUILD:-build}
TT=$(cd "$(dirname "$BUILD/tunetop")" && pwd)/tunetop
OUT=$(pwd)/bench/out/ladder
mkdir -p "$OUT"
if [ "${QUICK:-0}" = 1 ]; then
	TRAIN=${TRAIN:-4000}; EPOCHS=${EPOCHS:-1}; BUDGET=${BUDGET:-8}
else
	TRAIN=${TRAIN:-10000}; EPOCHS=${EPOCHS:-2}; BUDGET=${BUDGET:-32}
fi
echo "ladder bench: resnet:2,2,2:w16, $TRAIN training images, $EPOCHS epochs a rung, budget $BUDGET full-fidelity epochs per study"
for kind in random asha hyperband; do
	rm -f "$OUT/$kind.db" "$OUT/$kind.db-wal" "$OUT/$kind.db-shm"
	cat > "$OUT/$kind.ini" <<INI
[study]
name = $kind
db = $kind.db
seed = 1
workers = 1
budget = $BUDGET
checkpoint_every = 200

[data]
source = fashion-mnist
train_size = $TRAIN
val_size = 5000

[model]
spec = resnet:2,2,2:w16

[space]
lr = log-float 0.005 0.5
momentum = float 0.5 0.99
weight-decay = log-float 0.00001 0.01
batch = choice 64,128,256

[fidelity]
kind = frozen
eta = 2
epochs = $EPOCHS

[scheduler]
kind = $kind
max_trials = 1000
sampler = halton

[train]
schedule = cosine
INI
	start=$(date +%s)
	"$TT" run --headless "$OUT/$kind.ini" >"$OUT/$kind.log" 2>&1 || {
		echo "$kind: the study failed: $(tail -2 "$OUT/$kind.log")"; exit 1; }
	echo "$kind: $(( $(date +%s) - start )) s"
done
/usr/bin/python3 "$(dirname "$0")/ladder.py" "$OUT" "$BUDGET"
