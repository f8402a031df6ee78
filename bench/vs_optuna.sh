#!/bin/sh
# bench/vs_optuna.sh — tunetop's ladder against the peer users run today:
# Optuna, TPE with the Hyperband pruner on epochs, at equal compute.
#
# For each model and seed, every arm searches the same space (lr log,
# momentum, weight decay log, batch choice) on the same Fashion-MNIST split
# (the seed picks the split and the initialisation on both sides), with the
# same budget B in full-fidelity epochs (one epoch of the whole model over
# the training subset, counted in the multiply-accumulates the engine
# reports), the same fixed training settings and the same threads, one arm
# at a time:
#   optuna   bench/optuna_peer.py: TPESampler(seed) + HyperbandPruner(1, E, 3)
#            driving `tunetop train` for E epochs, pruned per epoch
#   frozen   a tunetop study, [fidelity] kind = frozen (trainable depth)
#   joint    a tunetop study, [fidelity] kind = joint (depth and epochs)
#   epochs   a tunetop study, [fidelity] kind = epochs (epochs only)
# then bench/vs_optuna.py prints the report (and bench/out/vs_optuna*.csv).
#
# Defaults: mlp:256,256,256 and resnet:1,1,1:w16, seeds 0..4, 8000 training
# / 5000 validation images, E = 4 epochs at full fidelity, B = 24 for the
# ResNet (the issue's manual experiment) and 160 for the MLP (cheap enough
# for >= 10 trials at the top rung); see bench/README.md for times.
# QUICK=1: the MLP, seed 0, 2000 / 1000 images, E = 2, B = 40: a few minutes.
#
# Knobs (environment):
#   MODELS="mlp:256,256,256 resnet:1,1,1:w16"  SEEDS="0 1 2 3 4"
#   TRAIN=8000 VAL=5000 EPOCHS=4 THREADS=2
#   BUDGET=B          every model's budget (else BUDGET_MLP=160, BUDGET_OTHER=24)
#   ARMS="optuna frozen joint"   (any of optuna frozen joint epochs)
#   tunetop arms: SAMPLER (unset: the study default), SCHED=asha, ETA=2,
#     MIN_TRAINABLE=1, MODE=restart, MAX_TRIALS=1000,
#     FIDELITY_EXTRA="key = value; key = value" (more [fidelity] lines)
#   optuna arm: OPTUNA_RF=3 (reduction_factor), OPTUNA_MIN_RESOURCE=1,
#     OPTUNA_DIVERGED=pruned (a diverged run ends pruned; fail: as Optuna's
#     failed trial, which TPE ignores)
#   OUT=bench/out/vs_optuna
#
# Usage: sh bench/vs_optuna.sh   (BUILD=build by default; make builds first)
set -u
BUILD=${BUILD:-build}
TT=$(cd "$(dirname "$BUILD/tunetop")" && pwd)/tunetop
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$TT" ] || { echo "vs_optuna: $TT missing: run make first"; exit 1; }
$PY -c 'import optuna' 2>/dev/null || {
	echo "vs_optuna: Debian's python3 has no optuna: make deps-bench (python3-optuna)"; exit 1; }

if [ "${QUICK:-0}" = 1 ]; then
	MODELS=${MODELS:-mlp:256,256,256}; SEEDS=${SEEDS:-0}
	TRAIN=${TRAIN:-2000}; VAL=${VAL:-1000}; EPOCHS=${EPOCHS:-2}
	BUDGET=${BUDGET:-40}
else
	MODELS=${MODELS:-mlp:256,256,256 resnet:1,1,1:w16}; SEEDS=${SEEDS:-0 1 2 3 4}
	TRAIN=${TRAIN:-8000}; VAL=${VAL:-5000}; EPOCHS=${EPOCHS:-4}
fi
BUDGET=${BUDGET:-}
BUDGET_MLP=${BUDGET_MLP:-160}; BUDGET_OTHER=${BUDGET_OTHER:-24}
THREADS=${THREADS:-2}
ARMS=${ARMS:-optuna frozen joint}
SAMPLER=${SAMPLER:-}
SCHED=${SCHED:-asha}; ETA=${ETA:-2}; MIN_TRAINABLE=${MIN_TRAINABLE:-1}
MODE=${MODE:-restart}; MAX_TRIALS=${MAX_TRIALS:-1000}
FIDELITY_EXTRA=${FIDELITY_EXTRA:-}
OPTUNA_RF=${OPTUNA_RF:-3}; OPTUNA_MIN_RESOURCE=${OPTUNA_MIN_RESOURCE:-1}
OPTUNA_DIVERGED=${OPTUNA_DIVERGED:-pruned}
OUT=${OUT:-$(pwd)/bench/out/vs_optuna}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

for arm in $ARMS; do
	case $arm in optuna|frozen|joint|epochs) ;;
	*) echo "vs_optuna: ARMS: unknown arm '$arm' (optuna frozen joint epochs)"; exit 2;; esac
done

# the one search space, for both sides (tunetop [space] lines)
cat > "$OUT/space.ini" <<'SPACE'
lr = log-float 0.005 0.5
momentum = float 0.5 0.99
weight-decay = log-float 0.00001 0.01
batch = choice 64,128,256
SPACE

budget_of() {
	if [ -n "$BUDGET" ]; then echo "$BUDGET"
	else case $1 in mlp:*) echo "$BUDGET_MLP";; *) echo "$BUDGET_OTHER";; esac; fi
}

# what each side runs on
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host: $(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	echo "tunetop: $("$TT" --version) at $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null)$(git -C "$HERE" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
	echo "optuna: $($PY -c 'import optuna, sys; print(optuna.__version__, "on Python", sys.version.split()[0])') (Debian python3-optuna $(dpkg-query -W -f '${Version}' python3-optuna 2>/dev/null))"
	echo "threads: $THREADS per training run on both sides, one run at a time (workers = 1)"
	echo "OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-unset} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

# this run's settings, for the report
{
	printf '{"models": ['; sep=
	for m in $MODELS; do printf '%s{"spec": "%s", "budget": %s}' "$sep" "$m" "$(budget_of "$m")"; sep=', '; done
	printf '], "seeds": [%s], "arms": [' "$(echo $SEEDS | sed 's/ /, /g')"
	sep=; for a in $ARMS; do printf '%s"%s"' "$sep" "$a"; sep=', '; done
	printf '], "train": %s, "val": %s, "epochs": %s, "threads": %s, "sampler": "%s", ' \
		"$TRAIN" "$VAL" "$EPOCHS" "$THREADS" "$SAMPLER"
	printf '"sched": "%s", "eta": %s, "min_trainable": %s, "mode": "%s", "max_trials": %s, ' \
		"$SCHED" "$ETA" "$MIN_TRAINABLE" "$MODE" "$MAX_TRIALS"
	printf '"fidelity_extra": "%s", "optuna_rf": %s, "optuna_min_resource": %s, ' \
		"$FIDELITY_EXTRA" "$OPTUNA_RF" "$OPTUNA_MIN_RESOURCE"
	printf '"optuna_diverged": "%s", "quick": %s}\n' "$OPTUNA_DIVERGED" "${QUICK:-0}"
} > "$OUT/run.json"

echo "vs_optuna: models [$MODELS], seeds [$SEEDS], arms [$ARMS], $TRAIN train / $VAL val, $EPOCHS epochs at full fidelity"
status=0
for MODEL in $MODELS; do
	slug=$(echo "$MODEL" | tr ':,' '__')
	B=$(budget_of "$MODEL")
	mkdir -p "$OUT/$slug"
	# the unit: the engine's per-example training MACs of the whole model
	"$TT" train --model "$MODEL" --train-size 256 --val-size 1 --steps 1 \
		--threads "$THREADS" > "$OUT/$slug/probe.json" 2>/dev/null || {
		echo "vs_optuna: $MODEL: the probe run failed"; exit 1; }
	for SEED in $SEEDS; do
		for ARM in $ARMS; do
			dir=$OUT/$slug/seed$SEED/$ARM
			rm -rf "$dir"; mkdir -p "$dir"
			echo "== $MODEL seed $SEED $ARM: budget $B full-fidelity epochs (load $(cut -d' ' -f1 /proc/loadavg))"
			start=$(date +%s)
			if [ "$ARM" = optuna ]; then
				$PY "$HERE/optuna_peer.py" --tunetop "$TT" --model "$MODEL" \
					--train-size "$TRAIN" --val-size "$VAL" --epochs "$EPOCHS" \
					--budget "$B" --seed "$SEED" --threads "$THREADS" \
					--space "$OUT/space.ini" --out "$dir" --rf "$OPTUNA_RF" \
					--min-resource "$OPTUNA_MIN_RESOURCE" --diverged "$OPTUNA_DIVERGED" \
					--train-arg=--schedule --train-arg=cosine >"$dir/log" 2>&1 || {
					echo "optuna: failed: $(tail -2 "$dir/log")"; status=1; continue; }
				tail -1 "$dir/log"
			else
				{
					printf '[study]\nname = %s-s%s\ndb = study.db\nseed = %s\nworkers = 1\n' "$ARM" "$SEED" "$SEED"
					printf 'budget = %s\ncheckpoint_every = 200\n\n' "$B"
					printf '[data]\nsource = fashion-mnist\ntrain_size = %s\nval_size = %s\n\n' "$TRAIN" "$VAL"
					printf '[model]\nspec = %s\n\n[space]\n' "$MODEL"
					cat "$OUT/space.ini"
					printf '\n[fidelity]\nkind = %s\neta = %s\nmin_trainable = %s\nepochs = %s\n' \
						"$ARM" "$ETA" "$MIN_TRAINABLE" "$EPOCHS"
					[ -n "$FIDELITY_EXTRA" ] && echo "$FIDELITY_EXTRA" | tr ';' '\n' | sed 's/^ *//'
					printf '\n[scheduler]\nkind = %s\nmax_trials = %s\nmode = %s\n' "$SCHED" "$MAX_TRIALS" "$MODE"
					[ -n "$SAMPLER" ] && printf 'sampler = %s\n' "$SAMPLER"
					printf '\n[train]\nschedule = cosine\nthreads = %s\n' "$THREADS"
				} > "$dir/study.ini"
				"$TT" run --headless "$dir/study.ini" >"$dir/log" 2>&1 || {
					echo "$ARM: the study failed: $(tail -2 "$dir/log")"; status=1; continue; }
				# the test accuracy of the chosen configuration: retrained once
				# at full fidelity with --test (outside the budget)
				$PY "$HERE/vs_optuna.py" chosen "$dir" "$TT" || status=1
			fi
			echo "$(( $(date +%s) - start ))" > "$dir/wall_s"
		done
	done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
$PY "$HERE/vs_optuna.py" report "$OUT" | tee "$OUT/report.txt"
exit $status
