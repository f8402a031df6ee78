#!/bin/sh
# bench/run.sh — the engine against PyTorch, in one run, as ratios.
#
# What `make bench` runs after building (it builds nothing itself):
#   1. $BUILD/bench/sgemm: OpenBLAS sgemm GFLOP/s on the engine's shapes
#      and a 1024^3 peak, 2 threads.
#   2. For each model and z in {all, half of the stages (rounded down, at
#      least 1), 1}: `tunetop train` on synthetic 28x28x1 data under
#      /usr/bin/time (peak RSS), then bench/torch_bench.py on the same
#      model, batch, optimizer and thread count.
#   3. bench/report.py: the table on stdout, bench/out/bench.csv.
#
# Both sides train with batch 128, SGD momentum 0.9, lr 0.01, no weight
# decay, constant learning rate, 2 threads.  Each side gets about
# BENCH_SECONDS of training per configuration, split into BENCH_REPEATS
# runs (engine; sized from a short calibration run at the same z) or timed
# windows (PyTorch, after 3 warm-up steps), and the fastest counts: on a
# shared machine a burst of other work then spoils one part, not the
# result.  sgemm runs at the start and at the end; the report keeps the
# better of the two for each shape.
#
# Usage: sh bench/run.sh [--quick]
# Environment:
#   BUILD=build          where the Makefile put tunetop and bench/sgemm
#   QUICK=1              same as --quick: a smoke test of a minute or so
#   BENCH_SECONDS=7      target timed seconds per configuration and side
#   BENCH_REPEATS=3      runs (engine) and windows (PyTorch) per config
#   BENCH_MODELS="..."   model specs (default: mlp:512,512,512
#                        resnet:1,1,1:w16 resnet:2,2,2:w16)
#   TRAIN_SIZE=4096      synthetic training examples held by both sides
#   ACCURACY=1           also run bench/accuracy.sh at the end (long)
#
# Raw outputs stay in bench/out/raw/ (gitignored) for inspection.  Exit
# status: 0 when every run on both sides succeeded, 1 otherwise; missed
# targets are reported in the table, not turned into a failure.
set -u

BUILD=${BUILD:-build}
QUICK=${QUICK:-0}
PY=/usr/bin/python3
THREADS=2
BATCH=128
VAL_SIZE=256
TRAIN_SIZE=${TRAIN_SIZE:-4096}
BENCH_MODELS=${BENCH_MODELS:-"mlp:512,512,512 resnet:1,1,1:w16 resnet:2,2,2:w16"}

for a in "$@"; do
	case $a in
	--quick) QUICK=1 ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "bench/run.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
	esac
done

if [ "$QUICK" = 1 ]; then
	BENCH_SECONDS=${BENCH_SECONDS:-1}
	CAL_STEPS=1
	REPEATS=1
	SGEMM_ARGS=--quick
else
	BENCH_SECONDS=${BENCH_SECONDS:-7}
	CAL_STEPS=2
	REPEATS=${BENCH_REPEATS:-3}
	SGEMM_ARGS=
fi

TT="$BUILD/tunetop"
SGEMM="$BUILD/bench/sgemm"
HERE=$(dirname "$0")
OUT="$HERE/out"
# This run's raw outputs go to a folder of its own, which replaces
# out/raw when the run ends: two runs at once (a bad idea for the timings)
# at least do not mix each other's files.
RAW="$OUT/raw.$$"

for f in "$TT" "$SGEMM"; do
	if [ ! -x "$f" ]; then
		echo "bench/run.sh: $f is missing: run 'make bench' (or 'make all')" >&2
		exit 1
	fi
done
if ! $PY -c 'import torch' 2>/dev/null; then
	echo "bench/run.sh: $PY cannot import torch: run 'make deps-bench'" >&2
	exit 1
fi
if [ ! -x /usr/bin/time ]; then
	echo "bench/run.sh: /usr/bin/time is missing: run 'make deps-bench'" >&2
	exit 1
fi

mkdir -p "$RAW" || exit 1
trap 'rm -rf "$RAW"; exit 130' INT TERM
failed=0

# jget FILE KEY: a top-level field of the last JSON object line in FILE.
jget() {
	$PY -c '
import json, sys
line = [l for l in open(sys.argv[1]) if l.lstrip().startswith("{")][-1]
print(json.loads(line)[sys.argv[2]])' "$1" "$2" 2>/dev/null
}

# engine_run TAG MODEL Z STEPS: one `tunetop train`, JSON to RAW/TAG.json,
# stderr to RAW/TAG.err, peak RSS (KiB) to RAW/TAG.rss.  Status of tunetop.
engine_run() {
	/usr/bin/time -f %M -o "$RAW/$1.rss" \
		"$TT" train --model "$2" --trainable "$3" --data synthetic \
		--train-size "$TRAIN_SIZE" --val-size "$VAL_SIZE" --steps "$4" \
		--batch "$BATCH" --threads "$THREADS" --optimizer sgd --lr 0.01 \
		--momentum 0.9 --weight-decay 0 --schedule constant \
		>"$RAW/$1.json" 2>"$RAW/$1.err"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores)"
if awk -v n="$(nproc)" '{ exit !($1 > 0.5 * n) }' /proc/loadavg; then
	echo "warning: the machine is busy before the benchmark starts; with 2" \
		"threads per side the timings will be noisy"
fi
echo "sgemm: $SGEMM $SGEMM_ARGS"
if ! "$SGEMM" $SGEMM_ARGS >"$RAW/sgemm.txt" 2>"$RAW/sgemm.err"; then
	echo "bench/run.sh: sgemm failed:" >&2
	cat "$RAW/sgemm.err" >&2
	failed=1
fi

# bench_config TAG MODEL LABEL Z STAGES CALRC: one configuration on both
# sides.  The engine's calibration run (RAW/TAG.cal.*, its status CALRC)
# has been made by the caller; it sizes REPEATS measured runs that together
# last about BENCH_SECONDS, of which the fastest is kept (RAW/TAG.runK.*
# stay for inspection).  A calibration that already lasted long enough is
# the measurement itself.
bench_config() {
	t=$1 m=$2 l=$3 zz=$4 n=$5 crc=$6
	printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$m" "$l" "$zz" \
		"$n" >>"$RAW/manifest.tsv"
	echo "== $m trainable=$l ($zz of $n stages)"
	eok=0
	if [ "$crc" = 0 ]; then
		sps=$(jget "$RAW/$t.cal.json" samples_per_s)
		secs=$(jget "$RAW/$t.cal.json" seconds)
		steps=$($PY -c 'import sys; t, sp, b = map(float, sys.argv[1:]); print(max(3, round(t * sp / b)))' \
			"$BENCH_SECONDS" "${sps:-0}" "$BATCH")
		long=$($PY -c 'import sys; print(int(float(sys.argv[1]) >= 0.6 * float(sys.argv[2])))' \
			"${secs:-0}" "$BENCH_SECONDS")
		each=$(( (steps + REPEATS - 1) / REPEATS ))
		[ "$each" -ge 3 ] || each=3
		if [ "$QUICK" = 1 ] || [ "$long" = 1 ]; then
			echo "   engine: the $CAL_STEPS-step calibration run is the measurement"
			eok=1
		else
			echo "   engine: best of $REPEATS runs of $each steps"
			eok=1
			bestsps=0
			best="$t.run1"
			k=0
			while [ "$k" -lt "$REPEATS" ]; do
				k=$((k + 1))
				if ! engine_run "$t.run$k" "$m" "$zz" "$each"; then
					# The failed run is what the report shows.
					eok=0
					best="$t.run$k"
					break
				fi
				sps=$(jget "$RAW/$t.run$k.json" samples_per_s)
				if $PY -c 'import sys; sys.exit(not float(sys.argv[1]) > float(sys.argv[2]))' \
					"${sps:-0}" "$bestsps"; then
					best="$t.run$k"
					bestsps=$sps
				fi
			done
			for ext in json err rss; do
				cp "$RAW/$best.$ext" "$RAW/$t.cal.$ext"
			done
		fi
	fi
	for ext in json err rss; do
		mv "$RAW/$t.cal.$ext" "$RAW/$t.engine.$ext" 2>/dev/null
	done
	if [ "$eok" = 0 ]; then
		echo "   engine FAILED:" >&2
		tail -n 5 "$RAW/$t.engine.err" >&2
		failed=1
	fi

	if [ "$QUICK" = 1 ]; then
		targs="--steps 2 --warmup 1 --repeats 1"
	else
		targs="--seconds $BENCH_SECONDS --repeats $REPEATS"
	fi
	echo "   torch: $targs"
	if ! $PY "$HERE/torch_bench.py" --model "$m" --trainable "$zz" \
		--batch "$BATCH" --threads "$THREADS" \
		--train-size "$TRAIN_SIZE" $targs \
		>"$RAW/$t.torch.json" 2>"$RAW/$t.torch.err"; then
		echo "   torch FAILED:" >&2
		tail -n 5 "$RAW/$t.torch.err" >&2
		failed=1
	fi
}

: >"$RAW/manifest.tsv"
i=0
for model in $BENCH_MODELS; do
	# The stage count is the engine's answer for z = all (PyTorch's model
	# is checked against it in the report); torch_bench.py's when the
	# engine failed.
	i=$((i + 1))
	engine_run "c$i.cal" "$model" all "$CAL_STEPS"
	calrc=$?
	stages=$(jget "$RAW/c$i.cal.json" stages)
	[ -n "$stages" ] || stages=$($PY "$HERE/torch_bench.py" --model "$model" --stages 2>/dev/null)
	if [ -z "$stages" ]; then
		echo "== $model: neither side could build it:" >&2
		tail -n 5 "$RAW/c$i.cal.err" >&2
		failed=1
		continue
	fi
	half=$((stages / 2))
	[ "$half" -ge 1 ] || half=1
	bench_config "c$i" "$model" all "$stages" "$stages" "$calrc"
	for pair in "half:$half" "1:1"; do
		label=${pair%%:*}
		z=${pair#*:}
		i=$((i + 1))
		engine_run "c$i.cal" "$model" "$z" "$CAL_STEPS"
		bench_config "c$i" "$model" "$label" "$z" "$stages" $?
	done
done
echo "sgemm again: $SGEMM $SGEMM_ARGS"
"$SGEMM" $SGEMM_ARGS >"$RAW/sgemm_end.txt" 2>>"$RAW/sgemm.err" || failed=1
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

trap - INT TERM
rm -rf "$OUT/raw"
mv "$RAW" "$OUT/raw" && RAW="$OUT/raw"
if ! $PY "$HERE/report.py" --raw "$RAW" --csv "$OUT/bench.csv" --quick "$QUICK"; then
	failed=1
fi

if [ "${ACCURACY:-0}" = 1 ]; then
	echo
	BUILD=$BUILD sh "$HERE/accuracy.sh" || failed=1
fi
exit "$failed"
