#!/bin/sh
# t_fault.sh — a full disk or an I/O error in the middle of a study: the
# Nth SQLite call of a real run fails (TUNETOP_FAULT_SQL), the run ends in
# a clean error (exit 1, a message naming the database) or, when N is past
# the run's last call, succeeds; the database is intact after every run,
# and the same study run again without faults finishes with exactly the
# results an undisturbed run gets.
BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print("|".join(map(str,r))) for r in c.execute(sys.argv[2])]' "$@"; }

cat > f.ini <<'INI'
[study]
name = fault
seed = 11
checkpoint_every = 5
[data]
source = synthetic
train_size = 512
val_size = 128
[model]
spec = mlp:16,16
[space]
lr = log-float 0.01 0.3
[fidelity]
epochs = 2
[scheduler]
kind = asha
max_trials = 4
[train]
batch = 64
threads = 1
INI

"$BIN" run --headless f.ini >ref.log 2>&1 || { echo "FAIL fault-reference: $(tail -2 ref.log)"; exit 0; }
want=$(sql fault.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
rm -f fault.db*

unclean=0; bad_integrity=0; errors=0; wrong=0
for n in 1 2 3 5 8 13 21 34 55 89 144 233 377 610 987 1597; do
	for code in 13 10; do
		TUNETOP_FAULT_SQL=$n:$code "$BIN" run --headless f.ini >run.log 2>&1
		rc=$?
		if [ $rc -eq 1 ]; then
			errors=$((errors + 1))
			grep -q "fault.db" run.log || { unclean=$((unclean + 1)); echo "  N=$n code=$code: $(tail -1 run.log)"; }
		elif [ $rc -ne 0 ]; then
			unclean=$((unclean + 1)); echo "  N=$n code=$code: exit $rc: $(tail -1 run.log)"
		fi
		if [ -f fault.db ] && [ "$(sql fault.db 'PRAGMA integrity_check' 2>&1)" != ok ]; then
			bad_integrity=$((bad_integrity + 1))
		fi
		# finish without faults: the results must be the undisturbed ones
		"$BIN" run --headless f.ini >fin.log 2>&1 || { wrong=$((wrong + 1)); echo "  N=$n: the clean rerun failed: $(tail -1 fin.log)"; }
		got=$(sql fault.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
		[ "$got" = "$want" ] || { wrong=$((wrong + 1)); echo "  N=$n code=$code: results differ after the rerun"; }
		rm -f fault.db*
	done
done
[ $unclean -eq 0 ] && echo "ok fault-clean-errors ($errors runs ended in an error)" ||
	echo "FAIL fault-clean-errors: $unclean runs did not end cleanly"
[ $errors -ge 16 ] && echo "ok fault-injected" || echo "FAIL fault-injected: only $errors runs failed"
[ $bad_integrity -eq 0 ] && echo "ok fault-integrity" || echo "FAIL fault-integrity: $bad_integrity"
[ $wrong -eq 0 ] && echo "ok fault-rerun-same-results" || echo "FAIL fault-rerun-same-results: $wrong"
