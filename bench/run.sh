#!/bin/sh
# bench/run.sh — the engine against PyTorch, in one run, as ratios.
#
# What `make bench` runs after building (it builds nothing itself):
#   1. $BUILD/bench/sgemm: OpenBLAS sgemm GFLOP/s on the engine's shapes
#      and a 1024^3 peak, 2 threads.
#   2. For each model, each side at its best: short runs at z = all try
#      the settings each side has (below) and the fastest is kept for the
#      model's measurements.
#   3. For each model and z in {all, half of the stages (rounded down, at
#      least 1), 1}: `tunetop train` on synthetic 28x28x1 data under
#      /usr/bin/time (peak RSS), then bench/torch_bench.py on the same
#      model, batch and optimizer, each with its kept settings; then one
#      more engine run with TUNETOP_PROFILE=1 for the time per operation kind.
#   4. bench/report.py: the tables on stdout, bench/out/bench.csv.
#   5. bench/side_by_side.sh (SIDE_BY_SIDE=1, the default): two tunetop
#      processes at once against one alone, under each way of waiting.
#
# Settings tried (BENCH_TUNE=1, the default):
#   PyTorch: every BLAS build installed (each folder
#     /usr/lib/MULTIARCH/openblas-*/ holding a libblas.so.3: openmp,
#     pthread, serial), chosen by LD_LIBRARY_PATH and checked against
#     /proc/self/maps by torch_bench.py --expect-blas; on each, 2 threads
#     with OpenMP's default waiting, OMP_WAIT_POLICY=passive and =active,
#     and 1 thread (torch.set_num_threads, OMP_NUM_THREADS and
#     OPENBLAS_NUM_THREADS all say the same count).  The fastest of those
#     is then tried with torch.set_num_interop_threads(1) and, unless it
#     waits passively, GOMP_SPINCOUNT=1000 (what the engine uses by
#     default); the fastest of all is kept.
#   Engine (2 threads, always): its own default (GOMP_SPINCOUNT=1000, set
#     by tunetop itself), libgomp's (GOMP_SPINCOUNT=300000),
#     OMP_WAIT_POLICY=passive and =active; then the fastest of those with
#     OMP_PROC_BIND=true.
# The report prints every candidate's samples/s and which one was kept.
#
# Both sides train with batch 128, SGD momentum 0.9, lr 0.01, no weight
# decay, constant learning rate, on 2 cores: the engine with 2 threads,
# PyTorch with 2 or 1, whichever its tuning found faster.  Each side gets about
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
#   QUICK=1              same as --quick: a smoke test of a few minutes
#                        (every setting tried once, for one step)
#   BENCH_SECONDS=7      target timed seconds per configuration and side
#   BENCH_REPEATS=3      runs (engine) and windows (PyTorch) per config
#   BENCH_MODELS="..."   model specs (default: mlp:512,512,512
#                        resnet:1,1,1:w16 resnet:2,2,2:w16)
#   BENCH_TUNE=1         0: no settings tried; the engine runs with
#                        OpenMP's defaults, PyTorch with 2 threads on the
#                        BLAS build the alternatives system gives it
#   BENCH_TORCH_BLAS="..."  the builds PyTorch tries (default: all
#                        installed): openmp, pthread, serial, reference
#                        (Debian's netlib libblas3)
#   TRAIN_SIZE=4096      synthetic training examples held by both sides
#   SIDE_BY_SIDE=1       0: skip bench/side_by_side.sh
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
BENCH_TUNE=${BENCH_TUNE:-1}
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null ||
	$PY -c 'import sysconfig; print(sysconfig.get_config_var("MULTIARCH") or "")' 2>/dev/null)
LIBDIR=/usr/lib/${MULTIARCH:-x86_64-linux-gnu}
if [ -z "${BENCH_TORCH_BLAS:-}" ]; then
	BENCH_TORCH_BLAS=
	for f in "$LIBDIR"/openblas-*/libblas.so.3; do
		[ -e "$f" ] || continue
		d=${f%/libblas.so.3}
		BENCH_TORCH_BLAS="$BENCH_TORCH_BLAS ${d##*/openblas-}"
	done
fi

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
	TUNE_TORCH_ARGS="--steps 1 --warmup 1 --repeats 1"
else
	BENCH_SECONDS=${BENCH_SECONDS:-7}
	CAL_STEPS=2
	REPEATS=${BENCH_REPEATS:-3}
	SGEMM_ARGS=
	# each candidate setting gets about a quarter of a measurement, in
	# two windows, after two warm-up steps: enough to rank them
	TUNE_SECONDS=$($PY -c 'import sys; print(max(1.0, float(sys.argv[1]) / 4))' "$BENCH_SECONDS")
	TUNE_TORCH_ARGS="--seconds $TUNE_SECONDS --repeats 2 --warmup 2"
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

# The variables that steer OpenMP's and OpenBLAS's threads: every run
# starts with them unset, then gets those of its settings, so what the
# caller's shell has set does not leak into one candidate and not another.
UNSET="-u OMP_WAIT_POLICY -u OMP_PROC_BIND -u GOMP_SPINCOUNT -u OMP_NUM_THREADS
	-u OPENBLAS_NUM_THREADS -u GOMP_CPU_AFFINITY -u OMP_PLACES -u TUNETOP_PROFILE"

# engine_env WAIT:BIND: the env(1) assignments of an engine setting, where
# WAIT is - (tunetop's default, GOMP_SPINCOUNT=1000: see tui/main.c),
# passive or active (OMP_WAIT_POLICY) or sN (GOMP_SPINCOUNT=N), and BIND
# - or true (OMP_PROC_BIND); engine_label the same in words.
engine_env() {
	e= w=${1%%:*}
	case $w in
	-) ;;
	s*) e="GOMP_SPINCOUNT=${w#s}" ;;
	*) e="OMP_WAIT_POLICY=$w" ;;
	esac
	case ${1#*:} in -) ;; *) e="$e OMP_PROC_BIND=${1#*:}" ;; esac
	echo $e
}
engine_label() {
	l=$(engine_env "$1")
	echo "${l:-defaults (tunetop: GOMP_SPINCOUNT=1000)}"
}

# engine_run TAG MODEL Z STEPS [ENV...]: one `tunetop train` (as the peer
# runs: no feature cache, frozen batch norms in training mode) with the
# environment assignments ENV (and VAL, the validation set size, VAL_SIZE
# unless set), JSON to RAW/TAG.json, stderr to RAW/TAG.err, peak RSS
# (KiB) to RAW/TAG.rss.  Status of tunetop.
engine_run() {
	et=$1 em=$2 ez=$3 es=$4
	shift 4
	/usr/bin/time -f %M -o "$RAW/$et.rss" env $UNSET "$@" \
		"$TT" train --model "$em" --trainable "$ez" --data synthetic \
		--train-size "$TRAIN_SIZE" --val-size "${VAL:-$VAL_SIZE}" --steps "$es" \
		--batch "$BATCH" --threads "$THREADS" --optimizer sgd --lr 0.01 \
		--momentum 0.9 --weight-decay 0 --schedule constant --feature-cache 0 \
		--frozen-bn batch \
		>"$RAW/$et.json" 2>"$RAW/$et.err"
}

# blas_dir BUILD: the folder of a BLAS build (reference: Debian's netlib).
blas_dir() {
	case $1 in
	reference) echo "$LIBDIR/blas" ;;
	*) echo "$LIBDIR/openblas-$1" ;;
	esac
}

# torch_label BUILD:THREADS:WAIT:SPIN:INTEROP: a PyTorch setting in words.
torch_label() {
	IFS=: read -r tb tn tw ts ti <<-EOF
	$1
	EOF
	l="$tb, $tn thread$( [ "$tn" = 1 ] || echo s)"
	[ "$tw" = - ] || l="$l, OMP_WAIT_POLICY=$tw"
	[ "$ts" = - ] || l="$l, GOMP_SPINCOUNT=$ts"
	[ "$ti" = 0 ] || l="$l, interop $ti"
	echo "$l"
}

# torch_run TAG SETTING MODEL Z ARGS...: bench/torch_bench.py with one
# PyTorch setting BUILD:THREADS:WAIT:SPIN:INTEROP (BUILD "system" is the
# one the alternatives system gives, unchecked), JSON to RAW/TAG.json and
# stderr to RAW/TAG.err.  Status of torch_bench.py.
torch_run() {
	tt=$1 tm=$3 tz=$4
	IFS=: read -r tb tn tw ts ti <<-EOF
	$2
	EOF
	shift 4
	te="OMP_NUM_THREADS=$tn OPENBLAS_NUM_THREADS=$tn"
	[ "$tw" = - ] || te="$te OMP_WAIT_POLICY=$tw"
	[ "$ts" = - ] || te="$te GOMP_SPINCOUNT=$ts"
	if [ "$tb" = system ]; then
		tx=
	else
		td=$(blas_dir "$tb")
		te="$te LD_LIBRARY_PATH=$td"
		tx="--expect-blas $td"
	fi
	env $UNSET -u LD_LIBRARY_PATH $te $PY "$HERE/torch_bench.py" \
		--model "$tm" --trainable "$tz" --batch "$BATCH" --threads "$tn" \
		--interop "$ti" --train-size "$TRAIN_SIZE" $tx "$@" \
		>"$RAW/$tt.json" 2>"$RAW/$tt.err"
}

# faster A B: status 0 when samples/s A (possibly empty) beats B.
faster() {
	$PY -c 'import sys; sys.exit(not float(sys.argv[1] or 0) > float(sys.argv[2] or 0))' "$1" "$2"
}

# tune_engine J MODEL SPS: try the engine's settings at z = all for about
# TUNE_SECONDS each (SPS, the calibration's samples/s, sizes the runs):
# the four ways of waiting, then the fastest of them with OMP_PROC_BIND.
# Sets ENGINE_SET to the fastest (the defaults when none ran); each try is
# a line of RAW/tune.tsv.
tune_engine() {
	ENGINE_SET=-:-
	best=0
	if [ "$QUICK" = 1 ]; then
		ns=$CAL_STEPS
	else
		ns=$($PY -c 'import sys; t, sp, b = map(float, sys.argv[1:]); print(max(3, round(t * sp / b)))' \
			"$TUNE_SECONDS" "${3:-0}" "$BATCH")
	fi
	try_engine "$1" "$2" "$ns" -:- s300000:- passive:- active:-
	try_engine "$1" "$2" "$ns" "${ENGINE_SET%:*}:true"
}

# try_engine J MODEL STEPS SETTING...: one run per setting; ENGINE_SET
# and best follow the fastest.
try_engine() {
	ej=$1 em2=$2 ens=$3
	shift 3
	for cand in "$@"; do
		k=$(echo "$cand" | tr ':-' '_n')
		engine_run "t$ej.engine.$k" "$em2" all "$ens" $(engine_env "$cand")
		rc=$?
		sps=
		[ "$rc" = 0 ] && sps=$(jget "$RAW/t$ej.engine.$k.json" samples_per_s)
		printf '%s\tengine\t%s\t%s\tt%s.engine.%s\n' "$em2" "$cand" \
			"$(engine_label "$cand")" "$ej" "$k" >>"$RAW/tune.tsv"
		if [ -n "$sps" ] && faster "$sps" "$best"; then
			best=$sps
			ENGINE_SET=$cand
		fi
	done
}

# tune_torch J MODEL: the same for PyTorch; sets TORCH_SET.
tune_torch() {
	TORCH_SET=
	best=0
	first=
	for b in $BENCH_TORCH_BLAS; do
		for tv in 2:- 2:passive 2:active 1:-; do
			first="$first $b:${tv%%:*}:${tv#*:}:-:0"
		done
	done
	try_torch "$1" "$2" $first
	# the winner, refined with knobs that matter less often
	case $TORCH_SET in
	"") ;;
	*:passive:*)
		try_torch "$1" "$2" "${TORCH_SET%:*}:1" ;;
	*)
		try_torch "$1" "$2" "${TORCH_SET%:*}:1" \
			"$(echo "$TORCH_SET" | awk -F: -v OFS=: '{ $4 = 1000; print }')" ;;
	esac
}

# try_torch J MODEL SETTING...: one short run per setting; TORCH_SET and
# best follow the fastest.
try_torch() {
	tj=$1 tm2=$2
	shift 2
	for cand in "$@"; do
		k=$(echo "$cand" | tr ':-' '_n')
		torch_run "t$tj.torch.$k" "$cand" "$tm2" all $TUNE_TORCH_ARGS
		rc=$?
		sps=
		[ "$rc" = 0 ] && sps=$(jget "$RAW/t$tj.torch.$k.json" samples_per_s)
		printf '%s\ttorch\t%s\t%s\tt%s.torch.%s\n' "$tm2" "$cand" \
			"$(torch_label "$cand")" "$tj" "$k" >>"$RAW/tune.tsv"
		if [ -n "$sps" ] && faster "$sps" "$best"; then
			best=$sps
			TORCH_SET=$cand
		fi
	done
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
# sides, each with its kept setting (ENGINE_SET, TORCH_SET).  The engine's
# calibration run (RAW/TAG.cal.*, its status CALRC) has been made by the
# caller; it sizes REPEATS measured runs that together last about
# BENCH_SECONDS, of which the fastest is kept (RAW/TAG.runK.* stay for
# inspection).  A calibration that already lasted long enough is the
# measurement itself.  Then one engine run of the same length under
# TUNETOP_PROFILE=1, without validation, gives the time per operation kind
# (RAW/TAG.prof.*): its wrapper costs little, but the measured runs go
# without it.
bench_config() {
	t=$1 m=$2 l=$3 zz=$4 n=$5 crc=$6
	printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$m" "$l" "$zz" \
		"$n" >>"$RAW/manifest.tsv"
	echo "== $m trainable=$l ($zz of $n stages)"
	eok=0
	each=$CAL_STEPS
	if [ "$crc" = 0 ]; then
		sps=$(jget "$RAW/$t.cal.json" samples_per_s)
		secs=$(jget "$RAW/$t.cal.json" seconds)
		steps=$($PY -c 'import sys; t, sp, b = map(float, sys.argv[1:]); print(max(3, round(t * sp / b)))' \
			"$BENCH_SECONDS" "${sps:-0}" "$BATCH")
		long=$($PY -c 'import sys; print(int(float(sys.argv[1]) >= 0.6 * float(sys.argv[2])))' \
			"${secs:-0}" "$BENCH_SECONDS")
		if [ "$QUICK" = 1 ] || [ "$long" = 1 ]; then
			echo "   engine: the $CAL_STEPS-step calibration run is the measurement"
			eok=1
		else
			each=$(( (steps + REPEATS - 1) / REPEATS ))
			[ "$each" -ge 3 ] || each=3
			echo "   engine: best of $REPEATS runs of $each steps"
			eok=1
			bestsps=0
			best="$t.run1"
			k=0
			while [ "$k" -lt "$REPEATS" ]; do
				k=$((k + 1))
				if ! engine_run "$t.run$k" "$m" "$zz" "$each" $(engine_env "$ENGINE_SET"); then
					# The failed run is what the report shows.
					eok=0
					best="$t.run$k"
					break
				fi
				sps=$(jget "$RAW/$t.run$k.json" samples_per_s)
				if faster "$sps" "$bestsps"; then
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
	else
		echo "   engine profile: $each steps, TUNETOP_PROFILE=1, no validation"
		VAL=0
		if ! engine_run "$t.prof" "$m" "$zz" "$each" $(engine_env "$ENGINE_SET") TUNETOP_PROFILE=1; then
			echo "   engine profile FAILED:" >&2
			tail -n 5 "$RAW/$t.prof.err" >&2
			failed=1
		fi
		VAL=
	fi

	if [ "$QUICK" = 1 ]; then
		targs="--steps 2 --warmup 1 --repeats 1"
	else
		targs="--seconds $BENCH_SECONDS --repeats $REPEATS"
	fi
	echo "   torch: $targs"
	if ! torch_run "$t.torch" "$TORCH_SET" "$m" "$zz" $targs; then
		echo "   torch FAILED:" >&2
		tail -n 5 "$RAW/$t.torch.err" >&2
		failed=1
	fi
}

: >"$RAW/manifest.tsv"
: >"$RAW/tune.tsv"
: >"$RAW/kept.tsv"
i=0
j=0
for model in $BENCH_MODELS; do
	# The stage count is the engine's answer for z = all (PyTorch's model
	# is checked against it in the report); torch_bench.py's when the
	# engine failed.
	i=$((i + 1))
	j=$((j + 1))
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
	ENGINE_SET=-:-
	TORCH_SET=system:$THREADS:-:-:0
	if [ "$BENCH_TUNE" = 1 ]; then
		echo "== $model: settings (PyTorch: BLAS builds$BENCH_TORCH_BLAS)"
		tune_engine "$j" "$model" "$(jget "$RAW/c$i.cal.json" samples_per_s)"
		tune_torch "$j" "$model"
		if [ -z "$TORCH_SET" ]; then
			echo "   torch: no setting ran; measuring on the system's BLAS" >&2
			TORCH_SET=system:$THREADS:-:-:0
			failed=1
		fi
		echo "   engine kept: $(engine_label "$ENGINE_SET")"
		echo "   torch kept: $(torch_label "$TORCH_SET")"
		# the calibration again, under the kept setting
		engine_run "c$i.cal" "$model" all "$CAL_STEPS" $(engine_env "$ENGINE_SET")
		calrc=$?
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$model" "$ENGINE_SET" \
		"$(engine_label "$ENGINE_SET")" "$TORCH_SET" \
		"$(torch_label "$TORCH_SET")" >>"$RAW/kept.tsv"
	bench_config "c$i" "$model" all "$stages" "$stages" "$calrc"
	for pair in "half:$half" "1:1"; do
		label=${pair%%:*}
		z=${pair#*:}
		i=$((i + 1))
		engine_run "c$i.cal" "$model" "$z" "$CAL_STEPS" $(engine_env "$ENGINE_SET")
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

if [ "${SIDE_BY_SIDE:-1}" = 1 ]; then
	echo
	echo "Two tunetop processes side by side (bench/side_by_side.sh):"
	BUILD=$BUILD QUICK=$QUICK sh "$HERE/side_by_side.sh" || failed=1
fi

if [ "${ACCURACY:-0}" = 1 ]; then
	echo
	BUILD=$BUILD sh "$HERE/accuracy.sh" || failed=1
fi
exit "$failed"
