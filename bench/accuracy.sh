#!/bin/sh
# bench/accuracy.sh — the accuracy target run: resnet:2,2,2:w16 on
# Fashion-MNIST, 10 epochs, every other setting at tunetop's defaults
# (see `tunetop train --help`), with test-set accuracy.
#
# Prints the command, its wall time, its peak RSS and the JSON result, and
# keeps the JSON in bench/out/accuracy.json and progress in
# bench/out/accuracy.err.  Long: tens of minutes on 2 cores.  bench/run.sh
# calls it only with ACCURACY=1.
#
# Usage: sh bench/accuracy.sh [extra tunetop train options]
# Environment: BUILD=build (where tunetop is).
set -u
BUILD=${BUILD:-build}
TT="$BUILD/tunetop"
OUT="$(dirname "$0")/out"
PY=/usr/bin/python3

if [ ! -x "$TT" ]; then
	echo "bench/accuracy.sh: $TT is missing: run 'make'" >&2
	exit 1
fi
mkdir -p "$OUT" || exit 1

echo "accuracy: $TT train --model resnet:2,2,2:w16 --epochs 10 --test $*"
start=$(date +%s)
/usr/bin/time -f %M -o "$OUT/accuracy.rss" \
	"$TT" train --model resnet:2,2,2:w16 --epochs 10 --test "$@" \
	>"$OUT/accuracy.json" 2>"$OUT/accuracy.err"
rc=$?
end=$(date +%s)
secs=$((end - start))
echo "accuracy: exit status $rc, wall time ${secs}s ($((secs / 60))m$((secs % 60))s)," \
	"peak RSS $(tail -n 1 "$OUT/accuracy.rss") KiB"
if [ "$rc" -ne 0 ]; then
	tail -n 5 "$OUT/accuracy.err" >&2
fi
cat "$OUT/accuracy.json"
$PY -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
if lines:
    r = json.loads(lines[-1])
    print("accuracy: test_acc %s  val_acc %s  train %.0f s  %.0f samples/s"
          % (r.get("test_acc"), r.get("val_acc"), r.get("seconds", 0),
             r.get("samples_per_s", 0)))' "$OUT/accuracy.json" 2>/dev/null
exit "$rc"
