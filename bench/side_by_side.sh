#!/bin/sh
# bench/side_by_side.sh — two tunetop processes on one machine: does one
# slow the other down by spinning?
#
# An OpenMP thread that reaches the end of a parallel region waits for the
# next one; libgomp's default is to spin for a while (GOMP_SPINCOUNT,
# 300000 rounds) before it sleeps.  Alone on its cores that saves a wake-up
# per region.  Two 2-thread processes on 2 cores are another matter: a
# thread that spins holds the core the other process needs, and both can
# end up far slower than half their speed alone.  libgomp only throttles
# its spinning when one process has more threads than cores, so it does
# not see this case.
#
# For each model and each setting below: `tunetop train` alone (2 threads
# unless said), then two of them started together with the same setting.
# Printed per setting: samples/s alone, of each of the pair, the pair's
# sum, and sum / alone (1.0: two processes share the machine as well as
# one uses it; well under 1: they fight).  Settings:
#   tunetop_default   the environment unset: what tunetop does itself
#                     (GOMP_SPINCOUNT=1000, set in tui/main.c)
#   libgomp_default   GOMP_SPINCOUNT=300000 (what libgomp does unasked)
#   active            OMP_WAIT_POLICY=active (spin forever)
#   passive           OMP_WAIT_POLICY=passive (sleep at once)
#   spin_10000        GOMP_SPINCOUNT=10000
#   1_thread          --threads 1 and tunetop's default
#
# Usage: sh bench/side_by_side.sh [--quick]
# Environment:
#   BUILD=build          where the Makefile put tunetop
#   QUICK=1              same as --quick: a smoke test of a minute or so
#   SBS_SECONDS=8        target seconds of one run alone
#   SBS_MODELS="..."     model specs (default: mlp:512,512,512
#                        resnet:1,1,1:w16)
# Raw outputs: bench/out/sbs/ (gitignored).  Exit status 0 when every run
# succeeded, 1 otherwise.  Run it on an otherwise idle machine: other work
# is a third process that this measurement does not account for.
set -u

BUILD=${BUILD:-build}
QUICK=${QUICK:-0}
PY=/usr/bin/python3
BATCH=128
SBS_MODELS=${SBS_MODELS:-"mlp:512,512,512 resnet:1,1,1:w16"}

for a in "$@"; do
	case $a in
	--quick) QUICK=1 ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "bench/side_by_side.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
	esac
done
if [ "$QUICK" = 1 ]; then
	SBS_SECONDS=${SBS_SECONDS:-1}
else
	SBS_SECONDS=${SBS_SECONDS:-8}
fi

TT="$BUILD/tunetop"
HERE=$(dirname "$0")
RAW="$HERE/out/sbs"
if [ ! -x "$TT" ]; then
	echo "bench/side_by_side.sh: $TT is missing: run 'make all'" >&2
	exit 1
fi
rm -rf "$RAW"
mkdir -p "$RAW" || exit 1
failed=0

# Each setting: a label, the thread count, then env(1) assignments ("-":
# none).  Every run starts with the variables below unset.
UNSET="-u OMP_WAIT_POLICY -u OMP_PROC_BIND -u GOMP_SPINCOUNT -u OMP_NUM_THREADS
	-u OPENBLAS_NUM_THREADS -u GOMP_CPU_AFFINITY -u OMP_PLACES -u TUNETOP_PROFILE"
SETTINGS="tunetop_default 2 -
libgomp_default 2 GOMP_SPINCOUNT=300000
active 2 OMP_WAIT_POLICY=active
passive 2 OMP_WAIT_POLICY=passive
spin_10000 2 GOMP_SPINCOUNT=10000
1_thread 1 -"

jget() {
	$PY -c '
import json, sys
try:
    line = [l for l in open(sys.argv[1]) if l.lstrip().startswith("{")][-1]
    print(json.loads(line)[sys.argv[2]])
except (OSError, IndexError, ValueError, KeyError):
    pass' "$1" "$2"
}

# run TAG MODEL THREADS STEPS ENV: one `tunetop train` in the background
# (its pid in $!), JSON to RAW/TAG.json, stderr to RAW/TAG.err.
run() {
	e=$5
	[ "$e" = - ] && e=
	env $UNSET $e "$TT" train --model "$2" --data synthetic --train-size 2048 \
		--val-size 0 --steps "$4" --batch "$BATCH" --threads "$3" \
		--optimizer sgd --lr 0.01 --momentum 0.9 --weight-decay 0 \
		--schedule constant >"$RAW/$1.json" 2>"$RAW/$1.err" &
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores)"
printf '%-18s %-16s %9s %9s %9s %9s %10s\n' model setting alone pair_a \
	pair_b pair_sum sum/alone
m=0
for model in $SBS_MODELS; do
	m=$((m + 1))
	# steps for about SBS_SECONDS alone, from a 2-step run
	run "m$m.cal" "$model" 2 2 -
	wait $!
	sps=$(jget "$RAW/m$m.cal.json" samples_per_s)
	if [ -z "$sps" ]; then
		echo "$model: the calibration run failed:" >&2
		tail -n 3 "$RAW/m$m.cal.err" >&2
		failed=1
		continue
	fi
	steps=$($PY -c 'import sys; t, sp, b = map(float, sys.argv[1:]); print(max(3, round(t * sp / b)))' \
		"$SBS_SECONDS" "$sps" "$BATCH")
	echo "$SETTINGS" | {
	bad=0
	while read -r label threads envs; do
		t="m$m.$label"
		run "$t.alone" "$model" "$threads" "$steps" "$envs"
		wait $!
		run "$t.a" "$model" "$threads" "$steps" "$envs"
		pa=$!
		run "$t.b" "$model" "$threads" "$steps" "$envs"
		pb=$!
		wait "$pa"
		wait "$pb"
		$PY - "$RAW" "$t" "$model" "$label" <<-'EOF' || bad=1
		import json, os, sys
		raw, t, model, label = sys.argv[1:]
		def sps(k):
		    try:
		        with open(os.path.join(raw, "%s.%s.json" % (t, k))) as f:
		            lines = [l for l in f if l.startswith("{")]
		        return json.loads(lines[-1])["samples_per_s"]
		    except (OSError, IndexError, ValueError, KeyError):
		        return None
		al, a, b = sps("alone"), sps("a"), sps("b")
		f = lambda v: "%9.1f" % v if v is not None else "%9s" % "FAILED"
		tot = a + b if a is not None and b is not None else None
		r = "%10.2f" % (tot / al) if tot is not None and al else "%10s" % "-"
		print("%-18s %-16s %s %s %s %s %s" % (model, label, f(al), f(a), f(b),
		                                      f(tot), r))
		sys.exit(0 if None not in (al, a, b) else 1)
		EOF
	done
	exit "$bad"
	} || failed=1
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$failed"
