#!/bin/sh
# t_fms.sh — freeze-thaw studies end to end (real binary, real SQLite):
# examples/fms-quick.ini runs and stores a decision per epoch in the
# forecasts table; a study killed (kill -9, after the decisions it sees
# stored) and resumed makes the same decisions as an uninterrupted one for
# the same seed, for fms and dyhpo; bad input is refused with exit 2.
BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
SRC=$(pwd)
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print("|".join(map(str,r))) for r in c.execute(sys.argv[2])]' "$@"; }

# --- the example as shipped
cp "$SRC/examples/fms-quick.ini" .
if "$BIN" run --headless fms-quick.ini 2>ex.log; then
	n=$(sql fms-quick.db "select count(*) from rungs")
	d=$(sql fms-quick.db "select count(distinct at) from forecasts")
	c=$(sql fms-quick.db "select count(*) from forecasts where chosen = 1")
	m=$(sql fms-quick.db "select count(*) from forecasts where mu is not null and sd > 0")
	if [ "$n" = 14 ] && [ "$d" = 14 ] && [ "$c" = 14 ] && [ "$m" -gt 0 ]; then
		ok example_fms_quick
	else
		fail example_fms_quick "$n epochs, $d decisions, $c chosen, $m forecasts"
	fi
else
	fail example_fms_quick "exit $?: $(tail -3 ex.log)"
fi

# --- killed and resumed: the same decisions
# one line per decision: the chosen trial and the epoch it went to
decisions() { sql "$1" "select at, trial_id, budget from forecasts where chosen = 1 order by at"; }
resume_same() { # sampler
	sed -e "s/^sampler = fms .*/sampler = $1/" -e 's/^budget = .*/budget = 12/' \
	    fms-quick.ini > a.ini
	cp a.ini b.ini
	sed -i -e 's/^name = .*/name = a/' a.ini
	sed -i -e 's/^name = .*/name = b/' b.ini
	rm -f a.db* b.db*
	"$BIN" run --headless a.ini 2>a.log || { fail "resume_same_$1" "a: $(tail -2 a.log)"; return; }
	"$BIN" run --headless b.ini 2>b.log &
	pid=$!
	# kill -9 once 7 decisions are stored (past the initial design)
	i=0
	while [ "$i" -lt 3000 ]; do
		k=$(sql b.db "select count(distinct at) from forecasts" 2>/dev/null)
		[ "${k:-0}" -ge 7 ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	before=$(sql b.db "select count(*) from rungs")
	"$BIN" run --headless b.ini 2>>b.log || { fail "resume_same_$1" "b: $(tail -2 b.log)"; return; }
	decisions a.db > a.txt
	decisions b.db > b.txt
	if [ "$before" -ge 12 ]; then
		fail "resume_same_$1" "the kill came after the end ($before epochs)"
	elif ! grep -q "resuming" b.log; then
		fail "resume_same_$1" "the second run did not resume"
	elif [ "$(wc -l < a.txt)" != 12 ] || ! cmp -s a.txt b.txt; then
		fail "resume_same_$1" "decisions differ: $(diff a.txt b.txt | head -4 | tr '\n' ' ')"
	else
		ok "resume_same_$1"
	fi
}
resume_same fms
resume_same dyhpo

# --- bad input: exit 2, naming file, line and value
sed 's/^workers = 1 .*/workers = 2/' fms-quick.ini > w.ini
"$BIN" run --headless w.ini 2>w.log; rc=$?
if [ $rc = 2 ] && grep -q "w.ini:[0-9]*: \[study\] workers: found '2'" w.log; then
	ok refuses_two_workers
else
	fail refuses_two_workers "exit $rc: $(cat w.log)"
fi
sed 's/^kind = freeze-thaw/kind = asha/' fms-quick.ini > k.ini
"$BIN" run --headless k.ini 2>k.log; rc=$?
if [ $rc = 2 ] && grep -q "k.ini:[0-9]*: \[scheduler\] sampler: found 'fms'" k.log; then
	ok refuses_fms_without_freeze_thaw
else
	fail refuses_fms_without_freeze_thaw "exit $rc: $(cat k.log)"
fi
