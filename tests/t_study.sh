#!/bin/sh
# t_study.sh — studies end to end with the real binary and real SQLite files:
# a headless run, status/export/cmd, resuming, kill -9 at moments it sees,
# commands against a running study, and readers, writers and commands at
# once without "database is locked".
BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
REPO_ROOT=$(pwd)
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print("|".join(map(str,r))) for r in c.execute(sys.argv[2])]' "$@"; }

# A study that runs for several seconds: real jobs to interrupt.
cat > crash.ini <<'EOF'
[study]
name = crash
seed = 3
workers = 2
checkpoint_every = 10

[data]
source = synthetic
train_size = 2048
val_size = 256

[model]
spec = resnet:1,1:w4

[space]
lr = log-float 0.01 0.2
momentum = float 0.5 0.95

[fidelity]
kind = frozen
eta = 2
epochs = 2

[scheduler]
kind = asha
max_trials = 16

[train]
batch = 64
threads = 1
EOF

# --- kill -9 at moments the test sees; nothing finished is ever lost -------
# Each kill waits for the database to show something new since the run
# started, in turn: a checkpoint of a running trial (so the next run must
# resume it from there), a rung result (just stored, must stay), and a
# trial row (just created), so the test means the same on a fast machine
# and a slow one.  wait_then_kill exits 1 when the run ended first.
wait_then_kill() {
	python3 - crash.db "$1" "$2" <<'PY'
import sqlite3, sys, time, os
db, pid, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
q = {
    "checkpoint": "SELECT coalesce(max(c.created_at), 0) FROM checkpoints c"
                  " JOIN trials t ON t.id = c.trial_id AND t.state = 'running'"
                  " AND t.rung = c.rung",
    "result": "SELECT count(*) FROM rungs",
    "trial": "SELECT count(*) FROM trials",
}[what]
def now():
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=0.05)
        v = c.execute(q).fetchone()[0]
        c.close()
        return v
    except sqlite3.Error:
        return None
first = None
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    v = now()
    if v is not None:
        if first is None:
            first = v
        elif v != first:
            os.kill(pid, 9)
            sys.exit(0)
    time.sleep(0.002)
PY
}
prev=""
lost=0; bad_integrity=0; kills=0; resumed=0
i=0
while [ $kills -lt 10 ] && [ $i -lt 25 ]; do
	i=$((i + 1))
	"$BIN" run --headless crash.ini >>log 2>&1 &
	pid=$!
	case $((i % 3)) in
	1) what=checkpoint ;; 2) what=result ;; *) what=trial ;;
	esac
	wait_then_kill $pid $what && kills=$((kills + 1))
	wait $pid 2>/dev/null
	[ "$(sql crash.db 'PRAGMA integrity_check')" = ok ] || bad_integrity=$((bad_integrity + 1))
	now=$(sql crash.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
	# every row seen before must still be there, unchanged
	for row in $prev; do
		printf '%s\n' "$now" | grep -qx -- "$row" || lost=$((lost + 1))
	done
	prev=$now
done
[ $kills -ge 10 ] && ok crash-ten-kills || fail crash-ten-kills "the study ended after $kills kills"
[ $bad_integrity -eq 0 ] && ok crash-integrity || fail crash-integrity "$bad_integrity checks not ok"
[ $lost -eq 0 ] && ok crash-no-lost-results || fail crash-no-lost-results "$lost rung results vanished"
grep -q "from its checkpoint" log && ok crash-resumes-from-checkpoint ||
	fail crash-resumes-from-checkpoint "no job resumed from a checkpoint in 10 kills"
grep -q "^\[.*resuming:" log && ok crash-resume-line || fail crash-resume-line "no 'resuming' line"

# the same command once more finishes the study
"$BIN" run --headless crash.ini >final.log 2>&1
rc=$?
left=$(sql crash.db "SELECT count(*) FROM trials WHERE state IN ('running','queued')")
final=$(sql crash.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
for row in $prev; do
	printf '%s\n' "$final" | grep -qx -- "$row" || lost=$((lost + 1))
done
if [ $rc -eq 0 ] && [ "$left" = 0 ] && [ $lost -eq 0 ] &&
   [ "$(sql crash.db 'SELECT count(*) FROM trials')" = 16 ] &&
   grep -q "^best trial" final.log; then
	ok crash-then-finish
else
	fail crash-then-finish "exit $rc, $left trials left running/queued, $lost lost; $(tail -3 final.log)"
fi
top=$(sql crash.db "SELECT count(*) FROM rungs WHERE rung = 2")
[ "$top" -ge 1 ] && ok ladder-reaches-top || fail ladder-reaches-top "no result at the top rung"
corr=$(sql crash.db "SELECT count(*) FROM rank_corr WHERE rung_a = 0 AND rung_b = 1")
[ "$corr" = 1 ] && ok rank-corr-stored || fail rank-corr-stored "rank_corr has $corr rows for (0,1)"
mem=$(sql crash.db "SELECT count(*) FROM layer_memory WHERE frozen = 1 AND kind = 'grads' AND bytes > 0")
frz=$(sql crash.db "SELECT count(*) FROM layer_memory WHERE frozen = 1 AND kind = 'params' AND bytes > 0")
[ "$mem" = 0 ] && [ "$frz" -gt 0 ] && ok layer-memory-frozen ||
	fail layer-memory-frozen "$mem frozen stages with gradient bytes, $frz frozen with params"
# every kind reaches layer_memory: the per-stage ones per stage, the
# workspace as one row of the whole model (stage -1, "model") per rung result
nres=$(sql crash.db "SELECT count(*) FROM rungs")
nwork=$(sql crash.db "SELECT count(*) FROM layer_memory WHERE kind = 'workspace'
                      AND stage = -1 AND name = 'model' AND bytes > 0")
nstage=$(sql crash.db "SELECT count(*) FROM layer_memory WHERE kind = 'workspace' AND stage >= 0")
kinds=$(sql crash.db "SELECT group_concat(kind, ' ') FROM
                      (SELECT DISTINCT kind FROM layer_memory ORDER BY kind)")
if [ "$nres" -gt 0 ] && [ "$nwork" = "$nres" ] && [ "$nstage" = 0 ] &&
   [ "$kinds" = "activations grads optim params workspace" ]; then
	ok layer-memory-workspace
else
	fail layer-memory-workspace "$nres rung results, $nwork model workspace rows, $nstage per stage; kinds: $kinds"
fi

# --- status, export, cmd ---------------------------------------------------
"$BIN" status crash.db >status.out 2>&1
if [ $? -eq 0 ] && grep -q "study crash (done): 16 trials" status.out &&
   grep -q "spearman" status.out; then ok status; else fail status "$(head -3 status.out)"; fi
"$BIN" export crash.db --format json >export.json 2>&1 &&
python3 - export.json <<'PY' && ok export-json || fail export-json "bad JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["study"] == "crash" and len(d["trials"]) == 16, d.keys()
assert all("lr" in t["params"] for t in d["trials"])
assert any(r["rung"] == 2 for t in d["trials"] for r in t["rungs"])
PY
"$BIN" export crash.db --format csv >export.csv 2>&1
n=$(python3 -c 'import csv,sys; print(len(list(csv.DictReader(open(sys.argv[1])))))' export.csv)
want=$(sql crash.db 'SELECT count(*) FROM rungs')
[ "$n" = "$want" ] && ok export-csv || fail export-csv "$n rows, expected $want"
"$BIN" export crash.db --format xml >/dev/null 2>err; rc=$?
[ $rc -eq 2 ] && grep -q "csv|json" err && ok export-bad-format || fail export-bad-format "exit $rc"
"$BIN" cmd crash.db frobnicate 1 >/dev/null 2>err; rc=$?
[ $rc -eq 2 ] && grep -q "expected promote, kill, pause or resume" err && ok cmd-bad-verb ||
	fail cmd-bad-verb "exit $rc"
"$BIN" cmd crash.db kill 999 >/dev/null 2>err; rc=$?
[ $rc -eq 2 ] && grep -q "999" err && ok cmd-unknown-trial || fail cmd-unknown-trial "exit $rc"
printf 'not a database' >junk.db
"$BIN" status junk.db >/dev/null 2>err; rc=$?
[ $rc -eq 2 ] && grep -q "junk.db" err && ok status-not-a-db || fail status-not-a-db "exit $rc: $(cat err)"
cp crash.db before.db
sql crash.db "PRAGMA user_version" >/dev/null
python3 -c 'import sqlite3; c=sqlite3.connect("newer.db"); c.execute("PRAGMA application_id=0x74546F70"); c.execute("PRAGMA user_version=999"); c.execute("create table x(a)"); c.commit()'
"$BIN" status newer.db >/dev/null 2>err; rc=$?
[ $rc -eq 2 ] && grep -qi "newer" err && ok status-newer-db || fail status-newer-db "exit $rc: $(cat err)"

# --- commands against a running study, with a reader polling beside it ----
sed -e 's/^name = crash/name = live/' -e 's/^max_trials = 16/max_trials = 6/' \
    -e 's/^workers = 2/workers = 1/' crash.ini >live.ini
"$BIN" run --headless live.ini >live.log 2>&1 &
pid=$!
# wait for the first two trials to exist (or the run to end)
while kill -0 $pid 2>/dev/null; do
	[ -f live.db ] && [ "$(sql live.db 'SELECT count(*) FROM trials' 2>/dev/null)" -ge 2 ] 2>/dev/null && break
	sleep 0.1
done
locked=0
# readers and commands while the engine writes
( k=0; while [ $k -lt 30 ]; do "$BIN" status live.db >/dev/null 2>>reader.err || true; k=$((k + 1)); done ) &
rpid=$!
"$BIN" cmd live.db pause 1 >/dev/null 2>>cmd.err
"$BIN" cmd live.db kill 2 >/dev/null 2>>cmd.err
wait $rpid
# until the study has applied both commands (or has ended)
while kill -0 $pid 2>/dev/null &&
      [ "$(sql live.db "SELECT count(*) FROM commands WHERE done_at IS NULL" 2>/dev/null)" != 0 ]; do
	sleep 0.1
done
st1=$(sql live.db "SELECT state FROM trials WHERE id = 1")
st2=$(sql live.db "SELECT state FROM trials WHERE id = 2")
[ "$st1" = paused ] && ok cmd-pause || fail cmd-pause "trial 1 is '$st1'"
[ "$st2" = killed ] && ok cmd-kill || fail cmd-kill "trial 2 is '$st2'"
"$BIN" cmd live.db resume 1 >/dev/null 2>>cmd.err
wait $pid; rc=$?
st1=$(sql live.db "SELECT state FROM trials WHERE id = 1")
st2=$(sql live.db "SELECT state FROM trials WHERE id = 2")
pending=$(sql live.db "SELECT count(*) FROM commands WHERE done_at IS NULL")
[ $rc -eq 0 ] && [ "$st1" = done ] && [ "$st2" = killed ] && [ "$pending" = 0 ] &&
	ok cmd-resume-and-finish || fail cmd-resume-and-finish "exit $rc, trial 1 '$st1', trial 2 '$st2', $pending pending"
cat reader.err cmd.err live.log | grep -qi "locked" && locked=1
[ $locked -eq 0 ] && ok no-database-locked || fail no-database-locked "$(grep -i locked reader.err cmd.err live.log | head -2)"

# --- a compute budget stops the study early --------------------------------
sed -e 's/^name = crash/name = budget/' -e 's/^checkpoint_every = 10/checkpoint_every = 10\nbudget = 1/' \
    -e 's/^workers = 2/workers = 1/' crash.ini >budget.ini
"$BIN" run --headless budget.ini >budget.log 2>&1; rc=$?
spent=$(sql budget.db 'SELECT count(*) FROM rungs')
trials=$(sql budget.db 'SELECT count(*) FROM trials')
if [ $rc -eq 0 ] && grep -q "budget: 1 full-fidelity epochs" budget.log && [ "$trials" -lt 16 ]; then
	ok budget-stops-early
else
	fail budget-stops-early "exit $rc, $trials trials and $spent results with a budget of 1 epoch"
fi
# this ladder (z = 1, 2, 4) cannot reach its top within 1 epoch: the study
# says so, and says it only when the database has no top-rung result
top=$(sql budget.db 'SELECT count(*) FROM rungs WHERE rung = 2')
if [ "$top" = 0 ] && grep -q "NOTE: the budget (1 full-fidelity epochs) ran out before any trial reached the top rung (z=4" budget.log; then
	ok budget-below-top-says-so
else
	fail budget-below-top-says-so "$top top-rung results; log: $(grep NOTE budget.log)"
fi
if [ ! -s live.log ] || grep -q "NOTE: the budget" live.log; then
	fail budget-note-only-when-short "no live.log, or the study without a budget says its budget ran out"
else
	ok budget-note-only-when-short
fi

# --- promote by hand, continue mode, diverging trials -----------------------
cat > small.ini <<'INI'
[study]
name = small
seed = 5
[data]
source = synthetic
train_size = 4096
val_size = 256
[model]
spec = mlp:64,64
[space]
lr = log-float 0.01 0.3
[fidelity]
kind = frozen
epochs = 4
[scheduler]
kind = sh
max_trials = 4
mode = continue
[train]
batch = 32
threads = 1
INI
"$BIN" run --headless small.ini >small.log 2>&1
# a trial the scheduler left at rung 0, promoted by hand while the study is
# not running: the command applies when it runs again
lone=$(sql small.db "SELECT trial_id FROM rungs GROUP BY trial_id HAVING max(rung) = 0 ORDER BY 1 LIMIT 1")
"$BIN" cmd small.db promote "$lone" >cmd.out 2>&1
grep -q "not running" cmd.out || fail cmd-promote-message "$(cat cmd.out)"
"$BIN" run --headless small.ini >>small.log 2>&1; rc=$?
res=$(sql small.db "SELECT result FROM commands WHERE verb = 'promote'")
r1=$(sql small.db "SELECT count(*) FROM rungs WHERE trial_id = $lone AND rung = 1")
[ $rc -eq 0 ] && [ -n "$lone" ] && [ "$res" = ok ] && [ "$r1" = 1 ] && ok cmd-promote ||
	fail cmd-promote "exit $rc, trial '$lone', result '$res', $r1 rung-1 results"
grep -q "from the previous rung" small.log && ok mode-continue ||
	fail mode-continue "no rung continued from the previous one"

sed -e 's/^name = small/name = wild/' -e 's/^lr = log-float 0.01 0.3/lr = choice 0.05,1000/' \
    -e 's/^train_size = 4096/train_size = 1024/' \
    -e 's/^mode = continue/mode = restart/' -e 's/^kind = frozen/kind = epochs/' small.ini >wild.ini
printf 'momentum = 0.99\nweight-decay = 0\nschedule = constant\n' >>wild.ini
"$BIN" run --headless wild.ini >wild.log 2>&1; rc=$?
div=$(sql wild.db "SELECT count(*) FROM trials WHERE state = 'diverged'")
fine=$(sql wild.db "SELECT count(*) FROM rungs WHERE val_acc IS NOT NULL")
[ $rc -eq 0 ] && [ "$div" -ge 1 ] && [ "$fine" -ge 1 ] && ok diverged-trials-study-goes-on ||
	fail diverged-trials-study-goes-on "exit $rc, $div of 4 trials diverged, $fine results: $(tail -2 wild.log)"

# --- a study file changed since its database was made is refused -----------
# The refusal names what changed, exits 2 and leaves the database and its
# -wal byte for byte as they were (no -wal or -shm appears either); what
# does not change a result's meaning may change.
sums() { for f in "$@"; do [ -e "$f" ] && sha256sum "$f" || echo "none $f"; done; }
sed -e 's/^name = small/name = fp\ndb = fp.db/' small.ini >fp.ini
"$BIN" run --headless fp.ini >fp.log 2>&1 || fail fp-made "$(tail -2 fp.log)"
fp=$(sql fp.db "SELECT fingerprint FROM studies")
printf '%s\n' "$fp" | grep -qx '\[space\] lr = log-float 0.01 0.3' &&
printf '%s\n' "$fp" | grep -qx '\[model\] spec = mlp:64,64' && ok fingerprint-stored ||
	fail fingerprint-stored "$fp"
refused() { # NAME SED-EXPRESSION EXPECTED-TEXT
	sed -e "$2" fp.ini >fp2.ini
	before=$(sums fp.db fp.db-wal fp.db-shm)
	"$BIN" run --headless fp2.ini >fp2.out 2>&1; rc=$?
	after=$(sums fp.db fp.db-wal fp.db-shm)
	if [ $rc -eq 2 ] && grep -qF -- "$3" fp2.out && grep -q "changed since .*fp.db was made" fp2.out &&
	   [ "$before" = "$after" ]; then ok "$1"; else
		fail "$1" "exit $rc, files $( [ "$before" = "$after" ] && echo same || echo changed): $(head -c 400 fp2.out)"
	fi
}
refused refuse-space 's/^lr = log-float 0.01 0.3/lr = log-float 0.001 0.3/' \
	'[space] lr: was log-float 0.01 0.3, now log-float 0.001 0.3'
refused refuse-space-added 's/^lr = log-float 0.01 0.3/&\nmomentum = float 0.5 0.9/' \
	'[space] momentum: was none, now float 0.5 0.9'
refused refuse-model 's/^spec = mlp:64,64/spec = mlp:32/' '[model] spec: was mlp:64,64, now mlp:32'
refused refuse-data 's/^train_size = 4096/train_size = 2048/' '[data] train_size: was 4096, now 2048'
refused refuse-train 's/^batch = 32/batch = 16/' '[train] batch: was 32, now 16'
refused refuse-ladder 's/^epochs = 4/epochs = 2/' '[fidelity] epochs: was 4, now 2'
refused refuse-seed 's/^seed = 5/seed = 6/' '[study] seed: was 5, now 6'
# the explorer's path (tunetop STUDY.ini in a terminal: script(1) gives it
# one) is refused the same way, before any screen
sed -e 's/^spec = mlp:64,64/spec = mlp:32/' fp.ini >fp2.ini
before=$(sums fp.db fp.db-wal fp.db-shm)
TERM=xterm script -qec "'$BIN' fp2.ini" /dev/null >fp2.out 2>&1; rc=$?
after=$(sums fp.db fp.db-wal fp.db-shm)
[ $rc -eq 2 ] && grep -qF '[model] spec: was mlp:64,64, now mlp:32' fp2.out &&
	[ "$before" = "$after" ] && ok refuse-explorer-path ||
	fail refuse-explorer-path "exit $rc: $(head -c 300 fp2.out)"

# a database left by kill -9, its -wal full of frames: refused, untouched
sed -e 's/^name = crash/name = walfp/' crash.ini >walfp.ini
"$BIN" run --headless walfp.ini >walfp.log 2>&1 &
pid=$!
n=0; while [ $n -lt 100 ]; do
	[ "$(sql walfp.db 'SELECT count(*) FROM rungs' 2>/dev/null)" -ge 1 ] 2>/dev/null && break
	sleep 0.1; n=$((n + 1))
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -s walfp.db-wal ]; then
	sed -e 's/^momentum = float 0.5 0.95/momentum = float 0.5 0.9/' walfp.ini >walfp2.ini
	sed -i -e 's/^name = walfp/name = walfp\ndb = walfp.db/' walfp2.ini
	before=$(sums walfp.db walfp.db-wal)
	"$BIN" run --headless walfp2.ini >walfp2.out 2>&1; rc=$?
	after=$(sums walfp.db walfp.db-wal)
	[ $rc -eq 2 ] && grep -qF '[space] momentum: was float 0.5 0.95, now float 0.5 0.9' walfp2.out &&
	[ "$before" = "$after" ] && ok refuse-after-crash-wal-untouched ||
		fail refuse-after-crash-wal-untouched "exit $rc: $(head -c 300 walfp2.out)"
else
	fail refuse-after-crash-wal-untouched "no -wal left by kill -9 to test with"
fi

# a database made before fingerprints (schema 3): checked against the study
# text it stored, not migrated when refused, given the fingerprint when not
# (and the tables of later schemas, which schema 3 did not have, dropped)
cp fp.db old.db
python3 - old.db <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("ALTER TABLE studies DROP COLUMN fingerprint")
for t in ("hyper", "forecasts", "task_acc"):
    c.execute("DROP TABLE IF EXISTS " + t)
c.execute("PRAGMA user_version = 3")
c.commit()
PY
sed -e 's/^db = fp.db/db = old.db/' -e 's/^spec = mlp:64,64/spec = mlp:32/' fp.ini >old2.ini
before=$(sums old.db old.db-wal old.db-shm)
"$BIN" run --headless old2.ini >old2.out 2>&1; rc=$?
after=$(sums old.db old.db-wal old.db-shm)
[ $rc -eq 2 ] && grep -qF '[model] spec: was mlp:64,64, now mlp:32' old2.out && [ "$before" = "$after" ] &&
	[ "$(sql old.db 'PRAGMA user_version')" = 3 ] && ok refuse-old-schema-untouched ||
	fail refuse-old-schema-untouched "exit $rc: $(head -c 300 old2.out)"
sed -e 's/^db = fp.db/db = old.db/' fp.ini >old3.ini
"$BIN" run --headless old3.ini >old3.out 2>&1; rc=$?
[ $rc -eq 0 ] && [ "$(sql old.db 'PRAGMA user_version')" = "$(sql fp.db 'PRAGMA user_version')" ] &&
	[ "$(sql old.db 'SELECT fingerprint IS NOT NULL FROM studies')" = 1 ] &&
	ok old-schema-migrated-and-fingerprinted ||
	fail old-schema-migrated-and-fingerprinted "exit $rc: $(tail -2 old3.out)"

# free to change: workers, budget, checkpoints, max_trials, threads
sed -e 's/^seed = 5/seed = 5\nworkers = 2\ncheckpoint_every = 7\nbudget = 100/' \
    -e 's/^max_trials = 4/max_trials = 5/' -e 's/^threads = 1/threads = 2/' fp.ini >fp3.ini
"$BIN" run --headless fp3.ini >fp3.out 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "resuming: 4 trials" fp3.out &&
	[ "$(sql fp.db 'SELECT count(*) FROM trials')" = 5 ] && ok free-changes-allowed ||
	fail free-changes-allowed "exit $rc: $(tail -3 fp3.out)"

# --- a resumed study reads each trial's parameters from trials.params --------
# A trial the scheduler left at rung 0 gets another batch size in the
# database, is promoted by hand, and its next rung runs with the stored
# batch: steps per epoch say which (4096 examples: 128 steps at 32, 64 at
# 64); the sampler would have redrawn the other one.
sed -e 's/^name = small/name = pdb/' -e 's/^lr = log-float 0.01 0.3/&\nbatch = choice 32,64/' \
    -e '/^batch = 32/d' -e 's/^epochs = 4/epochs = 1/' small.ini >pdb.ini
"$BIN" run --headless pdb.ini >pdb.log 2>&1
lone=$(sql pdb.db "SELECT trial_id FROM rungs GROUP BY trial_id HAVING max(rung) = 0 ORDER BY 1 LIMIT 1")
was=$(python3 - pdb.db "$lone" <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
p = json.loads(c.execute("SELECT params FROM trials WHERE id = ?", (sys.argv[2],)).fetchone()[0])
was = p["batch"]
p["batch"] = 96 - was
c.execute("UPDATE trials SET params = ? WHERE id = ?", (json.dumps(p), sys.argv[2]))
c.commit()
print(was)
PY
)
"$BIN" cmd pdb.db promote "$lone" >/dev/null 2>&1
"$BIN" run --headless pdb.ini >>pdb.log 2>&1; rc=$?
steps=$(sql pdb.db "SELECT max(step) FROM metrics WHERE trial_id = $lone AND rung = 1")
now=$((96 - was))
[ $rc -eq 0 ] && [ -n "$lone" ] && [ "$steps" = $((4096 / now)) ] && ok params-read-from-db ||
	fail params-read-from-db "exit $rc, trial '$lone' batch $was -> $now: $steps steps at rung 1"

# --- EvoGrad in a study: [train] turns it on, [space] searches the start ---
# The weight decay each trial starts from is searched; EvoGrad moves it
# inside the trial, and the runner keeps its path in the hyper table.
cp "$REPO_ROOT/examples/evograd-quick.ini" evo.ini
"$BIN" run --headless evo.ini >evo.log 2>&1; rc=$?
moved=$(python3 - evo.db <<'PY'
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
n = 0
for tid, params in c.execute("SELECT id, params FROM trials"):
    start = json.loads(params)["weight-decay"]
    pts = c.execute("SELECT step, value FROM hyper WHERE trial_id = ? AND rung = 0 "
                    "AND name = 'weight-decay' ORDER BY step", (tid,)).fetchall()
    # the path starts where [space] put it and moves from there
    if len(pts) >= 2 and abs(pts[-1][1] - start) > 1e-3 * start:
        n += 1
print(n)
PY
)
[ $rc -eq 0 ] && [ "$moved" = 3 ] && ok evograd-study-paths ||
	fail evograd-study-paths "exit $rc, $moved of 3 trials with a moving weight-decay path: $(tail -3 evo.log)"
