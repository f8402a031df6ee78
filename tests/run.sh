#!/bin/sh
# tests/run.sh — run every test program and script, count the cases.
#
# Programs ($BUILD/tests/test_*) and scripts (tests/t_*.sh) print one line per
# case, "ok NAME" or "FAIL NAME"; anything else they print is passed through.
# A program that dies without printing its cases (a crash, a sanitizer
# report) counts as one failed case.  The last line is "N passed, N failed".
BUILD=${BUILD:-build}
export BUILD
export TT_BIN="$BUILD/tunetop"
pass=0; fail=0
log=$(mktemp); trap 'rm -f "$log"' EXIT
for t in "$BUILD"/tests/test_* tests/t_*.sh; do
	[ -e "$t" ] || continue
	case "$t" in *.o|*.d) continue;; esac
	name=$(basename "$t")
	echo "== $name"
	case "$t" in
	*.sh) sh "$t" >"$log" 2>&1; rc=$?;;
	*) "$t" >"$log" 2>&1; rc=$?;;
	esac
	cat "$log"
	p=$(grep -c '^ok ' "$log"); f=$(grep -c '^FAIL ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exited with status $rc"
		f=1
	fi
	pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
