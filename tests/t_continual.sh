#!/bin/sh
# t_continual.sh — continual studies end to end (real binary, real SQLite,
# synthetic data): the rungs are experiences, each continued from the last
# one's checkpoint; task_acc holds row r of a trial's accuracy matrix once
# its rung r ends, and the rung's val_acc is that row's mean (the tasks
# seen, on the validation set); the split and the strategy's settings are
# searched in [space]; bad fidelity and scheduler kinds are refused with
# exit 2 naming the file and line.
BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print("|".join(map(str,r))) for r in c.execute(sys.argv[2])]' "$@"; }

cat > cl.ini <<'EOF'
[study]
name = cl
seed = 1
workers = 1

[data]
source = synthetic
train_size = 400
val_size = 100

[model]
spec = resnet:1,1:w4

[space]
cl-strategy = choice replay,hn
cl-split = int 0 1
hn-beta = float 0.1 1
replay-batch = int 4 16

[fidelity]
eta = 2
epochs = 2

[scheduler]
kind = asha
max_trials = 4

[train]
continual-tasks = 5
cl-order = 3
replay-size = 40
optimizer = adamw
lr = 3e-3
weight-decay = 0
batch = 16
threads = 1
EOF

if "$BIN" run --headless cl.ini >out.log 2>err.log; then
	# one rung per experience: 5 rungs of 0.4 epochs each
	r=$(sql cl.db "select group_concat(rung || ':' || epochs, ' ') from (select distinct rung, epochs from rungs order by rung)")
	top=$(sql cl.db "select max(rung) from rungs")
	if [ "$top" -ge 1 ] && echo "$r" | grep -q '^0:0.4 1:0.8'; then
		ok rungs_are_experiences
	else
		fail rungs_are_experiences "rungs $r"
	fi
	# every rung r of a trial has row r of task_acc, tasks 0..r, and no more
	bad=$(sql cl.db "select r.trial_id, r.rung, (select count(*) from task_acc a where a.trial_id = r.trial_id and a.experience = r.rung) from rungs r where (select count(*) from task_acc a where a.trial_id = r.trial_id and a.experience = r.rung) != r.rung + 1")
	extra=$(sql cl.db "select count(*) from task_acc a where not exists (select 1 from rungs r where r.trial_id = a.trial_id and r.rung = a.experience) or a.task > a.experience")
	n=$(sql cl.db "select count(*) from task_acc")
	if [ -z "$bad" ] && [ "$extra" = 0 ] && [ "$n" -gt 4 ]; then
		ok task_acc_fills_as_experiences_end
	else
		fail task_acc_fills_as_experiences_end "rows missing: $bad; rows past a rung: $extra; $n rows"
	fi
	# the rung's val_acc is the mean over the tasks seen
	off=$(sql cl.db "select r.trial_id, r.rung, r.val_acc, avg(a.acc) from rungs r join task_acc a on a.trial_id = r.trial_id and a.experience = r.rung group by r.trial_id, r.rung having abs(r.val_acc - avg(a.acc)) > 1e-9")
	if [ -z "$off" ]; then
		ok rung_val_acc_is_the_row_mean
	else
		fail rung_val_acc_is_the_row_mean "$off"
	fi
	# promoted rungs continue from the last experience's checkpoint
	c=$(grep -c 'from the last experience' err.log)
	p=$(sql cl.db "select count(*) from rungs where rung > 0")
	if [ "$p" -gt 0 ] && [ "$c" = "$p" ]; then
		ok rungs_continue_from_the_last_experience
	else
		fail rungs_continue_from_the_last_experience "$c continued, $p rungs above 0"
	fi
	# the split and the strategy's settings were searched
	k=$(sql cl.db "select count(distinct json_extract(params, '\$.\"cl-split\"')) || ' ' || count(distinct json_extract(params, '\$.\"cl-strategy\"')) || ' ' || count(distinct json_extract(params, '\$.\"replay-batch\"')) from trials")
	if [ "$k" = "2 2 4" ] || [ "$k" = "2 2 3" ]; then
		ok split_and_strategy_searched
	else
		fail split_and_strategy_searched "distinct cl-split, cl-strategy, replay-batch: $k"
	fi
else
	fail continual_study "exit $?: $(tail -3 err.log)"
fi

# --- refused, exit 2, file and line named
refused() { # name, sed expression, what the message names
	sed "$2" cl.ini > bad.ini
	"$BIN" run --headless bad.ini >/dev/null 2>bad.log
	rc=$?
	if [ "$rc" = 2 ] && grep -q "bad.ini:$4" bad.log && grep -q -- "$3" bad.log; then
		ok "refused_$1"
	else
		fail "refused_$1" "exit $rc: $(head -c 300 bad.log)"
	fi
}
refused frozen_fidelity 's/^eta = 2/kind = frozen\neta = 2/' "expected experiences" 21
refused experiences_without_tasks 's/^eta = 2/kind = experiences\neta = 2/; /^continual-tasks = 5/d' "continual-tasks" 21
refused freeze_thaw 's/^kind = asha/kind = freeze-thaw/' "freeze-thaw" 25
