#!/bin/sh
# bench/explorer.sh — what the explorer costs on a study of 10,000 trials.
#
#   BUILD=build sh bench/explorer.sh [TRIALS]
#
# Builds a synthetic study database (the schema from a real one-trial run,
# then TRIALS trials with rung results, memory rows, curve points and rank
# correlations inserted through python3's sqlite3), attaches the real
# binary in tmux at 120x40 on a private socket, and reports from
# /proc/PID/stat the explorer's CPU while idle, while scrolling (Down 20
# times a second, then PgDn) and while a writer changes trials and adds
# points every 100 ms; and from the explorer's own counters (TUNETOP_STATS)
# the rows and bytes it reads from the database per refresh.  Nothing here
# is a test: the numbers depend on the machine.
BUILD=${BUILD:-build}
N=${1:-10000}
BIN=$(pwd)/$BUILD/tunetop
[ -x "$BIN" ] || { echo "bench/explorer.sh: build $BIN first (make BUILD=$BUILD)"; exit 2; }
command -v tmux >/dev/null || { echo "bench/explorer.sh: needs tmux"; exit 2; }
T=$(mktemp -d); SOCK=tt-bench-$$
trap 'tmux -L $SOCK kill-server 2>/dev/null; kill $WPID 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1

cat > big.ini <<'EOF'
[study]
name = big
seed = 1
[data]
source = synthetic
train_size = 128
val_size = 64
[model]
spec = mlp:32,32,32
[space]
lr = log-float 0.001 0.5
momentum = float 0.5 0.95
batch = choice 32,64
[fidelity]
kind = frozen
eta = 3
epochs = 1
[scheduler]
kind = asha
max_trials = 1
[train]
threads = 1
EOF
"$BIN" run --headless big.ini >/dev/null 2>&1 || { echo "schema run failed"; exit 1; }

python3 - "$N" <<'EOF'
import json, math, random, sqlite3, sys, time
n = int(sys.argv[1])
c = sqlite3.connect("big.db")
for t in ["rungs", "metrics", "layer_memory", "masks", "commands", "checkpoints",
          "rank_corr", "trials"]:
    c.execute("DELETE FROM " + t)
cfg = c.execute("SELECT config FROM studies").fetchone()[0]
c.execute("UPDATE studies SET config = ?, state = 'running'",
          (cfg.replace("max_trials = 1", "max_trials = %d" % n),))
sid = c.execute("SELECT id FROM studies").fetchone()[0]
rnd = random.Random(1)
now = time.time()
states = ["done"] * 6 + ["killed", "queued", "paused", "diverged"]
trials, rungs, mem = [], [], []
for i in range(1, n + 1):
    p = {"lr": round(math.exp(rnd.uniform(math.log(1e-3), math.log(0.5))), 6),
         "momentum": round(rnd.uniform(0.5, 0.95), 6), "batch": rnd.choice([32, 64])}
    top = 0 if i > n // 9 else (1 if i > n // 27 else 2)
    trials.append((i, sid, json.dumps(p, separators=(",", ":")), rnd.choice(states),
                   top, now - n + i, now - n + i))
    for r in range(top + 1):
        acc = 0.5 + 0.4 * rnd.random() * (1 + r) / 3
        rungs.append((i, r, [1, 3, 4][r], 1.0, 1 - acc, acc, 1.0, int(r < top), 1e9))
c.executemany("INSERT INTO trials VALUES (?,?,?,?,?,?,?)", trials)
c.executemany("INSERT INTO rungs (trial_id, rung, trainable, epochs, val_loss, val_acc,"
              " seconds, promoted, train_macs) VALUES (?,?,?,?,?,?,?,?,?)", rungs)
for i in range(1, 201):
    for r in range(3):
        for s, name in enumerate(["fc1", "fc2", "fc3", "head"]):
            fz = int(s < 4 - [1, 3, 4][r])
            for k, b in zip(["params", "grads", "optim", "activations"],
                            [4096, 0 if fz else 4096, 0 if fz else 4096, 0 if fz else 8192]):
                mem.append((i, r, s, name, k, b, fz))
c.executemany("INSERT INTO layer_memory VALUES (?,?,?,?,?,?,?)", mem)
pts = []
for i in range(1, 201):
    for st in range(0, 400, 10):
        pts.append((i, 0, st, st / 100, "train", 2.3 * math.exp(-st / 150), None, st / 10))
    for e in range(1, 5):
        pts.append((i, 0, e * 100, e, "val", 2 * math.exp(-e / 3), 0.5 + e / 10, e))
c.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?)", pts)
c.executemany("INSERT INTO rank_corr VALUES (?,?,?,?,?,?)",
              [(sid, 0, 1, n // 9, 0.71, 0.55), (sid, 0, 2, n // 27, 0.62, 0.47),
               (sid, 1, 2, n // 27, 0.84, 0.66)])
c.commit()
EOF
echo "study: $N trials, $(du -k big.db | cut -f1) KiB"

tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU % of pid over $2 seconds while "$3" runs (a shell snippet)
measure() {
	a=$(cpu "$1"); t0=$(date +%s.%N)
	eval "$3"
	b=$(cpu "$1"); t1=$(date +%s.%N)
	awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" -v hz="$tick" \
	    'BEGIN { printf "%.2f%%", 100 * (b - a) / hz / (t1 - t0) }'
}
start() {
	tmux -L $SOCK kill-server 2>/dev/null
	tmux -L $SOCK new-session -d -s b -x 120 -y 40 \
	    "TUNETOP_STATS=$T/$1 exec $BIN attach big.db -d 2"
	sleep 3
	PID=$(tmux -L $SOCK display -p -t b '#{pane_pid}')
	tmux -L $SOCK capture-pane -p -t b | grep -q Trials || { echo "explorer not up"; exit 1; }
}
stop() {
	tmux -L $SOCK send-keys -t b q
	i=0; while kill -0 "$PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}
stat() { awk -v k="$2" '$1 == k { print $2 }' "$T/$1"; }

start idle.stats
idle=$(measure "$PID" 10 "sleep 10")
scroll=$(measure "$PID" 10 'i=0; while [ $i -lt 200 ]; do tmux -L $SOCK send-keys -t b Down; sleep 0.05; i=$((i + 1)); done')
page=$(measure "$PID" 5 'i=0; while [ $i -lt 50 ]; do tmux -L $SOCK send-keys -t b NPage; sleep 0.1; i=$((i + 1)); done')
stop
echo "idle: CPU $idle; $(stat idle.stats polls) polls, $(stat idle.stats polls_read) found changes"
echo "scrolling (Down x20/s): CPU $scroll;  paging (PgDn x10/s): CPU $page"
echo "first refresh (the whole study): $(stat idle.stats rows_first) rows, $(stat idle.stats rchar_first) bytes read()"
echo "idle+scroll, after it: $(stat idle.stats rchar_per_poll) bytes read() and $(stat idle.stats rows_per_poll) rows per refresh"

# a writer: a trial changes state and a point is added every 100 ms
start live.stats
python3 - <<'EOF' &
import sqlite3, time, random
c = sqlite3.connect("big.db", timeout=5)
rnd = random.Random(2)
t_end = time.time() + 10
step = 1000
while time.time() < t_end:
    i = rnd.randint(1, 200)
    c.execute("UPDATE trials SET state = ?, updated_at = ? WHERE id = ?",
              (rnd.choice(["running", "done"]), time.time(), i))
    c.execute("INSERT INTO metrics VALUES (?,0,?,?,'train',?,NULL,0)", (1, step, step / 100, 0.5))
    step += 10
    c.commit()
    time.sleep(0.1)
EOF
WPID=$!
live=$(measure "$PID" 10 "sleep 10")
wait $WPID 2>/dev/null
stop
p=$(stat live.stats polls); pr=$(stat live.stats polls_read)
echo "live (a write every 100 ms): CPU $live; $p polls, $pr read rows;" \
     "$(stat live.stats rchar_per_poll) bytes read() and $(stat live.stats rows_per_poll) rows per refresh;" \
     "$(stat live.stats scans) scans of the trials table;" \
     "$(stat live.stats poll_s) s polling, $(stat live.stats draws) frames in $(stat live.stats draw_s) s"
