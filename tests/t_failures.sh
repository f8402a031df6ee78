#!/bin/sh
# t_failures.sh — failures that must not read as success, and odd
# environments: a study whose trials all fail, an outside write lock held
# past the busy timeout, a database in a read-only directory, an unreadable
# $HOME, duplicate curve points after kill -9, small input checks, and
# checkpoint pruning.  Every kill here comes at a moment the test has seen
# in the database, never after a fixed sleep.
BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
T=$(mktemp -d); trap 'kill -9 $(jobs -p) 2>/dev/null; chmod -R u+rwx "$T"; rm -rf "$T"' EXIT
# other users (the read-only checks below run as nobody) must reach $T
chmod 755 "$T"
cd "$T" || exit 1

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); [print("|".join(map(str,r))) for r in c.execute(sys.argv[2])]' "$@"; }

# Run a command as a user that file permissions apply to: root ignores
# them, so as root the command runs as nobody.
as_user() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
	else
		"$@"
	fi
}
if [ "$(id -u)" = 0 ] && ! as_user "$BIN" --version >/dev/null 2>&1; then
	echo "t_failures: cannot run $BIN as nobody (setpriv); the permission checks will fail"
fi

cat > q.ini <<'EOF'
[study]
name = q
seed = 7
checkpoint_every = 8
[data]
source = synthetic
train_size = 1024
val_size = 128
[model]
spec = mlp:64,64
[space]
lr = log-float 0.01 0.3
[fidelity]
kind = frozen
eta = 2
epochs = 2
[scheduler]
kind = asha
max_trials = 4
[train]
batch = 64
threads = 1
EOF

# --- 6: a model the data cannot take is refused before any trial ----------
sed -e 's/^name = q/name = bad/' -e 's/^spec = .*/spec = cnn:1,1,1,1,1/' q.ini >bad.ini
"$BIN" run --headless bad.ini >bad.log 2>&1; rc=$?
n=$( [ -f bad.db ] && sql bad.db 'SELECT count(*) FROM trials' || echo 0)
if [ $rc -eq 2 ] && grep -q "bad.ini.*\[model\] spec" bad.log && grep -q "pool" bad.log &&
   [ "$n" = 0 ]; then
	ok study-bad-spec-refused
else
	fail study-bad-spec-refused "exit $rc, $n trials: $(tail -2 bad.log)"
fi

# --- 6: every trial fails at run time: exit 1, the count said --------------
# (out of memory under ulimit -v; a sanitizer build cannot run there)
sed -e 's/^name = q/name = oom/' -e 's/^spec = .*/spec = cnn:128,128/' \
    -e 's/^batch = 64/batch = 1024/' -e 's/^kind = frozen/kind = epochs/' q.ini >oom.ini
if (ulimit -v 600000 && "$BIN" --version >/dev/null 2>&1) 2>/dev/null; then
	(ulimit -v 600000; OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	 "$BIN" run --headless oom.ini >oom.log 2>&1); rc=$?
	"$BIN" status oom.db >oom.st 2>&1
	if [ $rc -eq 1 ] && grep -q "4 of 4 trials failed" oom.log &&
	   grep -q "no trial succeeded" oom.log && grep -q "4 failed" oom.st &&
	   ! grep -q "(done)" oom.st; then
		ok study-all-failed-exit-1
	else
		fail study-all-failed-exit-1 "exit $rc: $(tail -2 oom.log) / $(head -1 oom.st)"
	fi
else
	ok "study-all-failed-exit-1 # skip: cannot run under ulimit -v (sanitizer build)"
fi

# --- reference runs, uninterrupted ----------------------------------------
"$BIN" run --headless q.ini >ref.log 2>&1 || fail reference "$(tail -2 ref.log)"
cp q.db ref.db
# k: steps slow enough (a few ms) that a kill lands where the test saw it
sed -e 's/^name = q/name = k/' -e 's/^spec = .*/spec = mlp:256,256/' \
    -e 's/^train_size = 1024/train_size = 4096/' -e 's/^checkpoint_every = 8/checkpoint_every = 100/' \
    -e 's/^epochs = 2/epochs = 4/' -e 's/^max_trials = 4/max_trials = 3/' q.ini >k.ini
"$BIN" run --headless k.ini >kref.log 2>&1 || fail reference "$(tail -2 kref.log)"
cp k.db kref.db
ref_rows=$(sql k.db 'SELECT count(*) FROM metrics')
ref_rungs=$(sql k.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')

# --- 10: kill -9 after a curve point past the last checkpoint; no point twice
rm -f k.db*
kills=0; tries=0
while [ $tries -lt 30 ] && [ $kills -lt 4 ]; do
	tries=$((tries + 1))
	"$BIN" run --headless k.ini >>kill.log 2>&1 &
	pid=$!
	# wait until the database shows a point written after the trial's
	# checkpoint: a resume from that checkpoint trains over it again
	python3 - k.db $pid <<'PY'
import sqlite3, sys, time, os
db, pid = sys.argv[1], int(sys.argv[2])
q = ("SELECT count(*) FROM metrics m JOIN checkpoints c ON m.trial_id = c.trial_id"
     " AND m.rung = c.rung AND m.step > c.step JOIN trials t ON t.id = m.trial_id"
     " AND t.state = 'running'")
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=0.05)
        n = c.execute(q).fetchone()[0]
        c.close()
        if n:
            os.kill(pid, 9)
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.002)
PY
	[ $? -eq 0 ] && kills=$((kills + 1))
	wait $pid 2>/dev/null
done
"$BIN" run --headless k.ini >>kill.log 2>&1 || fail resume-after-kill "$(tail -2 kill.log)"
rows=$(sql k.db 'SELECT count(*) FROM metrics')
dups=$(sql k.db 'SELECT count(*) FROM (SELECT 1 FROM metrics GROUP BY trial_id, rung, step, split HAVING count(*) > 1)')
got_rungs=$(sql k.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
if [ $kills -ge 1 ] && [ "$dups" = 0 ] && [ "$rows" = "$ref_rows" ] && [ "$got_rungs" = "$ref_rungs" ]; then
	ok resume-no-duplicate-points
else
	fail resume-no-duplicate-points "$kills kills, $rows metric rows (uninterrupted: $ref_rows), $dups points stored twice"
fi

# --- 12: checkpoints nothing needs are pruned; promotion and resume work ---
sed -e 's/^name = q/name = qp/' -e 's/^max_trials = 4/max_trials = 10/' q.ini >qp.ini
sed -e 's/^name = qp/name = qa/' -e 's/^seed = 7/seed = 7\nkeep_checkpoints = all/' qp.ini >qa.ini
"$BIN" run --headless qp.ini >qp.log 2>&1 || fail reference "$(tail -2 qp.log)"
"$BIN" run --headless qa.ini >qa.log 2>&1 || fail reference "$(tail -2 qa.log)"
sz_all=$(sql qa.db 'PRAGMA page_count'); sz=$(sql qp.db 'PRAGMA page_count')
n_all=$(sql qa.db 'SELECT count(*) FROM checkpoints'); n=$(sql qp.db 'SELECT count(*) FROM checkpoints')
# kept: the best result's of each rung (ties too), nothing else once done
best=$(sql qp.db 'SELECT count(*) FROM rungs r WHERE val_acc = (SELECT max(val_acc) FROM rungs b WHERE b.rung = r.rung)')
if [ "$n" = "$best" ] && [ "$n" -lt "$n_all" ] && [ $((sz * 10)) -lt $((sz_all * 7)) ] &&
   [ "$(sql qa.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')" = \
     "$(sql qp.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')" ]; then
	ok checkpoints-pruned
else
	fail checkpoints-pruned "$n checkpoints ($best best) in $sz pages kept, $n_all in $sz_all with keep_checkpoints = all"
fi
n=$(sql ref.db 'SELECT count(*) FROM checkpoints')
"$BIN" status ref.db >st.out 2>&1
grep -q "^database: [0-9.]* [KM]iB, checkpoints [0-9.]* [KM]iB in $n" st.out && ok status-database-size ||
	fail status-database-size "$(head -3 st.out)"
# continue mode: a promotion starts from the previous rung's checkpoint,
# also after kill -9 at a moment when the trial is running its next rung
sed -e 's/^name = k/name = kc/' -e 's/^kind = asha/kind = asha\nmode = continue/' k.ini >kc.ini
sed -e 's/^name = kc/name = kca/' -e 's/^seed = 7/seed = 7\nkeep_checkpoints = all/' kc.ini >kca.ini
"$BIN" run --headless kca.ini >kca.log 2>&1 || fail reference "$(tail -2 kca.log)"
want=$(sql kca.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
kills=0; tries=0
while [ $tries -lt 10 ] && [ $kills -lt 2 ]; do
	tries=$((tries + 1))
	"$BIN" run --headless kc.ini >>kc.log 2>&1 &
	pid=$!
	# kill once a promoted trial has stored a checkpoint of its new rung
	python3 - kc.db $pid <<'PY'
import sqlite3, sys, time, os
db, pid = sys.argv[1], int(sys.argv[2])
q = ("SELECT count(*) FROM checkpoints c JOIN trials t ON t.id = c.trial_id"
     " WHERE c.rung >= 1 AND t.state = 'running' AND t.rung = c.rung"
     " AND NOT EXISTS (SELECT 1 FROM rungs r WHERE r.trial_id = c.trial_id AND r.rung = c.rung)")
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=0.05)
        n = c.execute(q).fetchone()[0]
        c.close()
        if n:
            os.kill(pid, 9)
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.002)
PY
	[ $? -eq 0 ] && kills=$((kills + 1))
	wait $pid 2>/dev/null
done
"$BIN" run --headless kc.ini >>kc.log 2>&1; rc=$?
got=$(sql kc.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
if [ $rc -eq 0 ] && [ $kills -ge 1 ] && [ "$got" = "$want" ] && grep -q "from the previous rung" kc.log &&
   grep -q "from its checkpoint" kc.log; then
	ok checkpoints-pruned-continue-resume
else
	fail checkpoints-pruned-continue-resume "exit $rc, $kills kills, results equal: $([ "$got" = "$want" ] && echo yes || echo no): $(grep -c 'from' kc.log) resumed"
fi

# --- 7: an outside write lock held past the busy timeout -------------------
# hold BEGIN IMMEDIATE for $2 s once the study has written its first trial
hold_lock() {
	python3 - "$1" "$2" <<'PY'
import sqlite3, sys, time
db, secs = sys.argv[1], float(sys.argv[2])
for _ in range(3000):
    try:
        c = sqlite3.connect("file:%s?mode=rw" % db, uri=True, timeout=0.05, isolation_level=None)
        if c.execute("SELECT count(*) FROM trials").fetchone()[0] > 0:
            break
        c.close()
    except sqlite3.Error:
        pass
    time.sleep(0.01)
# the study may hold the write lock at this instant: try until it is ours
for _ in range(3000):
    try:
        c.execute("BEGIN IMMEDIATE")
        break
    except sqlite3.OperationalError:
        time.sleep(0.01)
time.sleep(secs)
c.execute("COMMIT")
PY
}
# lock_timeout 8: one try waits 2 s; a 6 s lock (past the 5 s busy timeout
# and its retries) is waited out, with a word on stderr
sed -e 's/^name = k/name = lk/' -e 's/^seed = 7/seed = 7\nlock_timeout = 8/' k.ini >lk.ini
"$BIN" run --headless lk.ini >lk.log 2>&1 &
pid=$!
hold_lock lk.db 6
wait $pid; rc=$?
rows=$(sql lk.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
if [ $rc -eq 0 ] && grep -q "database locked by another process, retrying in [0-9]*s" lk.log &&
   [ "$rows" = "$(sql kref.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')" ]; then
	ok lock-waited-out
else
	fail lock-waited-out "exit $rc: $(grep -m1 -i lock lk.log) $(tail -1 lk.log)"
fi
# lock_timeout 1: the same lock ends the study (exit 1); a rerun finishes
sed -e 's/^lock_timeout = 8/lock_timeout = 1/' lk.ini >lk1.ini
rm -f lk.db*
"$BIN" run --headless lk1.ini >lk1.log 2>&1 &
pid=$!
hold_lock lk.db 6
wait $pid; rc=$?
"$BIN" run --headless lk1.ini >>lk1.log 2>&1; rc2=$?
rows=$(sql lk.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')
if [ $rc -eq 1 ] && grep -q "database is locked" lk1.log && [ $rc2 -eq 0 ] &&
   [ "$rows" = "$(sql kref.db 'SELECT trial_id, rung, val_acc FROM rungs ORDER BY 1, 2')" ]; then
	ok lock-timeout-gives-up
else
	fail lock-timeout-gives-up "exit $rc then $rc2: $(grep -m1 -i lock lk1.log)"
fi

# --- 11: small input checks ------------------------------------------------
sed -e 's/^seed = 7/seed = 9200000000000000001/' q.ini >seed.ini
"$BIN" run --headless seed.ini >seed.log 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "seed" seed.log && ok seed-above-maximum ||
	fail seed-above-maximum "exit $rc: $(tail -1 seed.log)"
"$BIN" cmd ref.db kill 99999999999999999999 >cmd.out 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "99999999999999999999" cmd.out && ! grep -q 9223372036854775807 cmd.out &&
	ok cmd-trial-overflow || fail cmd-trial-overflow "exit $rc: $(cat cmd.out)"
sed -e 's/^lr = .*/nesterov = choice off,on,yes/' q.ini >dup.ini
"$BIN" run --headless dup.ini >dup.log 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "'yes'" dup.log && ok choice-duplicate-value ||
	fail choice-duplicate-value "exit $rc: $(tail -1 dup.log)"
mkdir dir.ini
"$BIN" run --headless dir.ini >dir.log 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "is a directory" dir.log && ok study-file-directory ||
	fail study-file-directory "exit $rc: $(tail -1 dir.log)"
mkdir -p idx/train-images-idx3-ubyte
sed -e 's/^source = synthetic/source = idx/' -e 's/^name = q/name = idx/' q.ini >idx.ini
"$BIN" run --headless idx.ini >idx.log 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "train-images-idx3-ubyte: is a directory" idx.log && ok idx-file-directory ||
	fail idx-file-directory "exit $rc: $(tail -1 idx.log)"
# /dev/null as the database: refused, and no /dev/null-journal beside it
had=0; [ -e /dev/null-journal ] && had=1
sed -e 's|^seed = 7|seed = 7\ndb = /dev/null|' q.ini >null.ini
"$BIN" run --headless null.ini >null.log 2>&1; rc=$?
left=0; [ $had = 0 ] && [ -e /dev/null-journal ] && { left=1; rm -f /dev/null-journal; }
[ $rc -eq 2 ] && [ $left = 0 ] && grep -q "regular file" null.log && ok db-not-a-regular-file ||
	fail db-not-a-regular-file "exit $rc, journal left: $left: $(tail -1 null.log)"
# a damaged database (no trials table) is bad input for every command
cp ref.db drop.db; sql drop.db 'DROP TABLE trials'
codes=""
for c in "status drop.db" "export drop.db --format csv" "cmd drop.db kill 1"; do
	"$BIN" $c >/dev/null 2>&1; codes="$codes $?"
done
[ "$codes" = " 2 2 2" ] && ok damaged-db-exit-2 || fail damaged-db-exit-2 "exit statuses$codes"

# --- 8: a finished study in a read-only directory can be read --------------
mkdir ro; cp q.ini ro/; (cd ro && "$BIN" run --headless q.ini >/dev/null 2>&1)
chmod 555 ro
as_user "$BIN" status ro/q.db >ro.st 2>&1; r1=$?
as_user "$BIN" export ro/q.db --format json >ro.json 2>&1; r2=$?
if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && grep -q "study q (done)" ro.st &&
   python3 -c 'import json,sys; json.load(open(sys.argv[1]))' ro.json; then
	ok readonly-dir-status-export
else
	fail readonly-dir-status-export "exit $r1/$r2: $(head -1 ro.st)"
fi
ls ro | grep -q -- '-shm\|-wal' && fail readonly-dir-untouched "$(ls ro)" || ok readonly-dir-untouched
# writing there is refused with exit 2 from every command that writes
as_user "$BIN" cmd ro/q.db kill 1 >/dev/null 2>ro.err; r1=$?
as_user "$BIN" run --headless ro/q.ini >/dev/null 2>>ro.err; r2=$?
[ $r1 -eq 2 ] && [ $r2 -eq 2 ] && ok readonly-dir-write-exit-2 || fail readonly-dir-write-exit-2 "exit $r1/$r2: $(cat ro.err)"
chmod 755 ro
# rows left in a -wal (a writer killed) with no -shm: said exactly, exit 2
python3 - ro/q.db <<'PY'
import sqlite3, sys, os
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA wal_autocheckpoint = 0")
c.execute("UPDATE studies SET name = 'q2'")
c.commit()
os._exit(0)  # no close: the -wal keeps the row
PY
rm -f ro/q.db-shm; chmod 555 ro
as_user "$BIN" status ro/q.db >/dev/null 2>ro.err; rc=$?
[ $rc -eq 2 ] && grep -q "q.db-wal holds rows" ro.err && grep -q "q.db-shm" ro.err &&
	ok readonly-dir-wal-said || fail readonly-dir-wal-said "exit $rc: $(cat ro.err)"
chmod 755 ro

# --- 9: an unreadable $HOME does not stop the explorer ---------------------
mkdir home; chmod 000 home
HOME=$T/home XDG_CONFIG_HOME= as_user "$BIN" attach ref.db </dev/null >home.out 2>&1; rc=$?
if grep -q "needs a terminal" home.out && ! grep -q "cannot read the theme" home.out &&
   grep -q "cannot read the user theme directory.*skipped" home.out; then
	ok unreadable-home-theme-skipped
else
	fail unreadable-home-theme-skipped "exit $rc: $(cat home.out)"
fi
