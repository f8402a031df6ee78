#!/bin/sh
# t_fms.sh — freeze-thaw studies end to end (real binary, real SQLite):
# examples/fms-quick.ini runs and stores a decision per epoch in the
# forecasts table; a study killed (kill -9, after the decisions it sees
# stored) and resumed makes the same decisions as an uninterrupted one for
# the same seed, for fms (against the example's own run) and dyhpo; a
# study searches its starting checkpoint (init = choice, files that
# `tunetop train --save-checkpoint` wrote); bad input is refused with
# exit 2.
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
# resume_same SAMPLER BUDGET [A.db]: b (the example with that sampler and
# budget) killed after 7 decisions and resumed decides as a, an
# uninterrupted run (A.db when given: the example's own run)
resume_same() {
	sed -e "s/^sampler = .*/sampler = $1/" -e "s/^budget = .*/budget = $2/" \
	    fms-quick.ini > a.ini
	cp a.ini b.ini
	sed -i -e 's/^name = .*/name = a/' a.ini
	sed -i -e 's/^name = .*/name = b/' b.ini
	rm -f a.db* b.db*
	adb=${3:-a.db}
	if [ -z "$3" ]; then
		"$BIN" run --headless a.ini 2>a.log || { fail "resume_same_$1" "a: $(tail -2 a.log)"; return; }
	fi
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
	decisions "$adb" > a.txt
	decisions b.db > b.txt
	if [ "$before" -ge "$2" ]; then
		fail "resume_same_$1" "the kill came after the end ($before epochs)"
	elif ! grep -q "resuming" b.log; then
		fail "resume_same_$1" "the second run did not resume"
	elif [ "$(wc -l < a.txt)" != "$2" ] || ! cmp -s a.txt b.txt; then
		fail "resume_same_$1" "decisions differ: $(diff a.txt b.txt | head -4 | tr '\n' ' ')"
	else
		ok "resume_same_$1"
	fi
}
if [ -s fms-quick.db ]; then
	resume_same fms 14 fms-quick.db
else
	fail resume_same_fms "no run of the example to compare with"
fi
resume_same dyhpo 14 # as many epochs after the kill as fms: a loaded machine polls late

# --- starting checkpoints: tunetop train --save-checkpoint, [space] init
ckpt() { # FILE SEED [SPEC]
	"$BIN" train --data synthetic --train-size 256 --val-size 64 --model "${3:-cnn:4,8}" \
	    --epochs 1 --batch 64 --threads 1 --seed "$2" --save-checkpoint "$1" \
	    >/dev/null 2>"$1.log"
}
mkdir -p hub
if ckpt hub/a.ckpt 1 && ckpt hub/b.ckpt 2 && ckpt hub/other.ckpt 1 cnn:4,16 &&
   [ -s hub/a.ckpt ] && [ -s hub/b.ckpt ] && ! cmp -s hub/a.ckpt hub/b.ckpt; then
	ok save_checkpoint
else
	fail save_checkpoint "$(cat hub/*.log | tail -3)"
fi
# a study beside the hub: paths relative to the study file, run from elsewhere
sed -e 's/^name = .*/name = init/' -e 's/^budget = .*/budget = 8/' \
    -e 's/^max_trials = .*/max_trials = 6/' fms-quick.ini > hub/init.ini
sed -i '/^\[space\]/a init = choice a.ckpt, b.ckpt' hub/init.ini
if "$BIN" run --headless hub/init.ini 2>init.log; then
	n=$(sql hub/init.db "select count(*) from rungs")
	d=$(sql hub/init.db "select count(distinct at) from forecasts")
	a=$(sql hub/init.db "select count(*) from trials where params like '%a.ckpt%'")
	b=$(sql hub/init.db "select count(*) from trials where params like '%b.ckpt%'")
	if [ "$n" = 8 ] && [ "$d" = 8 ] && [ $((a + b)) -ge 2 ]; then
		ok study_searches_init
	else
		fail study_searches_init "$n epochs, $d decisions, trials from a $a, from b $b"
	fi
else
	fail study_searches_init "exit $?: $(tail -3 init.log)"
fi
# [train] init as written is the study's identity: run again from the
# study's own directory (the path resolved differently) it resumes, and
# starts from that checkpoint
sed -e 's/^name = .*/name = tinit/' -e 's/^budget = .*/budget = 3/' -e '/^init = choice/d' \
    -e '/^\[train\]/a init = a.ckpt' hub/init.ini > hub/tinit.ini
if "$BIN" run --headless hub/tinit.ini 2>tinit.log &&
   (cd hub && "$BIN" run --headless tinit.ini 2>>../tinit.log) &&
   [ "$(sql hub/tinit.db "select count(*) from rungs")" = 3 ]; then
	ok train_init_resumes_from_elsewhere
else
	fail train_init_resumes_from_elsewhere "$(tail -3 tinit.log)"
fi
# what is no checkpoint of the model: exit 2, file, line and value named
sed 's/^init = choice .*/init = choice a.ckpt, nosuch.ckpt/' hub/init.ini > hub/bad1.ini
"$BIN" run --headless hub/bad1.ini 2>bad1.log; rc=$?
if [ $rc = 2 ] && grep -q "bad1.ini:[0-9]*: \[space\] init: found 'nosuch.ckpt'.*No such file" bad1.log; then
	ok refuses_missing_init
else
	fail refuses_missing_init "exit $rc: $(cat bad1.log)"
fi
sed -e '/^init = choice/d' -e '/^\[train\]/a init = other.ckpt' hub/init.ini > hub/bad2.ini
"$BIN" run --headless hub/bad2.ini 2>bad2.log; rc=$?
if [ $rc = 2 ] && grep -q "bad2.ini:[0-9]*: \[train\] init: found 'other.ckpt'.*model 'cnn:4,16'" bad2.log; then
	ok refuses_init_of_another_model
else
	fail refuses_init_of_another_model "exit $rc: $(cat bad2.log)"
fi
echo "not a checkpoint" > junk.ckpt
"$BIN" train --data synthetic --model cnn:4,8 --init junk.ckpt 2>junk.log; rc=$?
if [ $rc = 2 ] && grep -q "init 'junk.ckpt': expected a checkpoint" junk.log; then
	ok train_refuses_junk_init
else
	fail train_refuses_junk_init "exit $rc: $(cat junk.log)"
fi
"$BIN" train --data synthetic --model cnn:4,8 --save-checkpoint nodir/x.ckpt 2>nd.log; rc=$?
if [ $rc = 2 ] && grep -q "save-checkpoint 'nodir/x.ckpt': cannot write" nd.log; then
	ok train_refuses_unwritable_save
else
	fail train_refuses_unwritable_save "exit $rc: $(cat nd.log)"
fi

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
