#!/bin/sh
# t_tpe.sh — sampler = tpe in a study end to end (real binary, real
# SQLite): an ASHA study with one worker runs and stores its trials and
# rung results; stopped (by a budget, and by kill -9 once results are
# stored) and resumed, it creates every trial with the parameters the
# uninterrupted run gave it.  From the fourth trial on (min_obs is 3 for
# max_trials 12) tpe proposes from the results it was told, so a resumed
# sampler that was not rebuilt to the same state would propose others.
# One worker: with more, which results a proposal saw depends on timing.
BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print("|".join(map(str,r))) for r in c.execute(sys.argv[2])]' "$@"; }

# A second or so: 12 trials, 3 rungs (the frozen ladder of a 3-stage MLP).
# checkpoint_every beyond a rung's steps: a rung killed midway trains
# again from its start, as it did the first time.
cat > tpe.ini <<'EOF'
[study]
name = tpe
seed = 4
workers = 1
checkpoint_every = 100000

[data]
source = synthetic
train_size = 4096
val_size = 256

[model]
spec = mlp:32,32

[space]
lr = log-float 0.005 0.5
momentum = float 0.5 0.95
batch = choice 32,64

[fidelity]
kind = frozen
eta = 2
epochs = 1

[scheduler]
kind = asha
max_trials = 12
sampler = tpe

[train]
threads = 1
EOF

params() { sql "$1" "SELECT id, params FROM trials ORDER BY id"; }

# --- the whole study
if "$BIN" run --headless tpe.ini >tpe.log 2>&1; then
	nt=$(sql tpe.db "SELECT count(*) FROM trials")
	nr=$(sql tpe.db "SELECT count(*) FROM rungs")
	top=$(sql tpe.db "SELECT count(*) FROM rungs WHERE rung = 2")
	if [ "$nt" = 12 ] && [ "$nr" -gt 12 ] && [ "$top" -ge 1 ]; then
		ok tpe_study
	else
		fail tpe_study "$nt trials, $nr rung results, $top at the top rung"
	fi
else
	fail tpe_study "exit $?: $(tail -3 tpe.log)"
fi
params tpe.db >whole.txt

# same_params NAME DB LOG: DB's trials have the uninterrupted run's params,
# and the run in LOG resumed with the tpe sampler told again
same_params() {
	params "$2" >part.txt
	if ! grep -q "the tpe sampler has heard them again" "$3"; then
		fail "$1" "the second run did not resume: $(tail -2 "$3")"
	elif [ "$(wc -l <whole.txt)" != 12 ] || ! cmp -s whole.txt part.txt; then
		fail "$1" "params differ: $(diff whole.txt part.txt | head -4 | tr '\n' ' ')"
	else
		ok "$1"
	fi
}

# --- stopped by a budget of 3 epochs (6 trials), resumed without it
sed -e 's/^name = tpe/name = budget/' -e 's/^workers = 1/&\nbudget = 3/' tpe.ini >budget.ini
"$BIN" run --headless budget.ini >budget.log 2>&1
n=$(sql budget.db "SELECT count(*) FROM trials")
sed -i '/^budget = /d' budget.ini
if [ "${n:-0}" -lt 5 ] || [ "$n" -ge 12 ]; then
	fail tpe_resume_budget "the budget stopped the study at ${n:-no} trials, expected 5 to 11"
elif ! "$BIN" run --headless budget.ini >>budget.log 2>&1; then
	fail tpe_resume_budget "resumed: exit $?: $(tail -2 budget.log)"
else
	same_params tpe_resume_budget budget.db budget.log
fi

# --- killed (kill -9) once 9 rung results are stored, resumed
sed -e 's/^name = tpe/name = kill/' tpe.ini >kill.ini
"$BIN" run --headless kill.ini >kill.log 2>&1 &
pid=$!
python3 - kill.db $pid <<'PY'
import os, sqlite3, sys, time
db, pid = sys.argv[1], int(sys.argv[2])
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(0)  # it ended first: the count below says so
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=0.05)
        n = c.execute("SELECT count(*) FROM rungs").fetchone()[0]
        c.close()
    except sqlite3.Error:
        n = 0
    if n >= 9:
        os.kill(pid, 9)
        sys.exit(0)
    time.sleep(0.002)
PY
wait $pid 2>/dev/null
before=$(sql kill.db "SELECT count(*) FROM rungs")
if [ "$before" -ge "$nr" ]; then
	fail tpe_resume_kill "the kill came after the end ($before rung results)"
elif ! "$BIN" run --headless kill.ini >>kill.log 2>&1; then
	fail tpe_resume_kill "resumed: exit $?: $(tail -2 kill.log)"
else
	same_params tpe_resume_kill kill.db kill.log
fi
