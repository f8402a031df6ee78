#!/bin/sh
# t_explorer.sh — the explorer end to end: the real binary in a real
# terminal (tmux on a private socket), keys sent, the pane captured and the
# study database checked with sqlite3.
#
# Cases: every pane's heading and content at 120x40; tag two trials and
# kill them (with the confirmation), promote one, pause and resume one, on
# a live study; the help screen and the "terminal too small" screen
# against golden files (tests/golden/) and the way back from a resize;
# LANG=C draws ASCII only; NO_COLOR=1 draws attributes but no colour;
# --readonly refuses k, p and z and writes no command; attach to a
# finished study; a theme file with an error; `tunetop STUDY.ini` without
# a terminal runs headless; learned hyperparameters in the trial table
# and, after e, in the curves pane (a study run by tests/test_hyper.c).
#
# Prints "ok NAME" or "FAIL NAME: why" per case (tests/run.sh counts them).
# Waits poll the screen or the database with a generous deadline, only so
# that a broken build cannot hang the suite; no assertion is about time.
#
# Env: TT_BIN (default build/tunetop); TT_GOLDEN_UPDATE=1 rewrites the
# golden files from this run (then review the diff).  Run from the
# repository root.  Needs tmux and sqlite3 (make deps).

. tests/explorer_lib.sh

# a fresh copy of a study file in its own directory, so its database
# (NAME.db beside it) is private
study_dir() {
	mkdir -p "$T/$1" && cp "$REPO/examples/quick.ini" "$T/$1/quick.ini"
	echo "$T/$1"
}

# check_panes: what the main screen lacks, in $why ("" when complete)
check_panes() {
	s=$T/main.txt
	why=
	for h in ' Trials ' ' Curves ' ' Ladder ' ' Memory ' ' Masks ' ' Ranks '; do
		grep -q -- "$h" "$s" || why="$why no heading '$h';"
	done
	grep -qE '^ tunetop . quick \[done\] 6 trials: 6 done' "$s" || why="$why title;"
	grep -qE 'ID +STATE +CMD +RUNG +DEPTH +lr +momentum +optimizer +batch +ACC@0' "$s" ||
		why="$why trial table header;"
	# every trial of the database in its row, with its state and rung
	for row in $(sql "$D/quick.db" "SELECT id || ':' || state || ':' || rung FROM trials"); do
		id=${row%%:*} st=${row#*:} rg=${st#*:} st=${st%%:*}
		grep -qE "^ +$id $st +$rg " "$s" || why="$why no row for trial $id ($st, rung $rg);"
	done
	# and its result at rung 0 (ACC@0)
	for row in $(sql "$D/quick.db" "SELECT trial_id || ':' || printf('%.4f', val_acc)
	                               FROM rungs WHERE rung = 0"); do
		grep -qE "^ +${row%%:*} .* ${row#*:} " "$s" || why="$why trial ${row%%:*} lacks ACC@0 ${row#*:};"
	done
	# the numbers come from the database, not from this machine's run:
	# trial 1 (the first row) is selected, the curves show it first
	r1=$(sql "$D/quick.db" "SELECT max(rung) FROM rungs WHERE trial_id = 1")
	grep -qE 'val acc vs steps, braille' "$s" || why="$why curves heading;"
	# braille is U+2800..U+28FF: e2 a0..a3 xx in UTF-8
	LC_ALL=C grep -q "$(printf '\342[\240-\243]')" "$s" || why="$why no braille in the curves;"
	grep -qE "#1 r$r1 0\\.[0-9]+ \\(sel\\)" "$s" || why="$why curve legend (trial 1 at r$r1);"
	grep -qE '[0-9]+ steps' "$s" || why="$why curve x axis;"
	# the ladder: a row per rung, depth z/3, 3 epochs, trials at the rung
	for r in 0 1 2; do
		n=$(sql "$D/quick.db" "SELECT count(*) FROM rungs WHERE rung = $r")
		grep -qE "r$r +$((r + 1))/3 +3 +$n/[0-9]+ " "$s" || why="$why ladder rung $r ($n trials);"
	done
	grep -q "Memory  trial 1, rung $r1" "$s" || why="$why memory heading;"
	for st in fc1 fc2 head; do
		grep -qE "^$st .*[0-9.]+ KiB" "$s" || why="$why memory bar $st;"
	done
	grep -q 'total .* KiB' "$s" || why="$why memory total;"
	# the workspace, stored for the whole model, is a bar of its own
	grep -qE "^workspace .*[0-9.]+ [KM]iB" "$s" || why="$why memory workspace row;"
	grep -q 'no gates in this study' "$s" || why="$why masks pane;"
	grep -qE 'rungs +n +spearman +kendall' "$s" || why="$why rank table header;"
	for rc_ in $(sql "$D/quick.db" "SELECT rung_a || ':' || rung_b || ':' || n || ':' ||
	                               printf('%.3f', spearman) || ':' || printf('%.3f', kendall)
	                               FROM rank_corr"); do
		a=$(echo "$rc_" | cut -d: -f1) b=$(echo "$rc_" | cut -d: -f2)
		n=$(echo "$rc_" | cut -d: -f3) sp=$(echo "$rc_" | cut -d: -f4)
		kd=$(echo "$rc_" | cut -d: -f5)
		grep -qE "r$a-r$b +$n +$sp +$kd" "$s" || why="$why rank row $rc_;"
	done
	grep -q 'F1Help' "$s" || why="$why key bar;"
}

# --- every pane at 120x40 -------------------------------------------------
D=$(study_dir main)
start main "$D" "" "$BIN" quick.ini
# quick.ini finishes in about a second: wait for its end so the content
# is final, then for trial rows
if wait_screen main 'engine finished' && wait_screen main '^ +6 done'; then
	# a poll or two may lag behind the engine's last commit: look again
	# for a few seconds before judging (rows lost for good stay lost)
	end=$(($(date +%s) + 10))
	while check_panes; [ -n "$why" ] && [ "$(date +%s)" -lt "$end" ]; do
		sleep 0.2
		screen main
	done
	if [ -z "$why" ]; then ok panes-120x40; else fail panes-120x40 "$why $(cat "$s")"; fi

	# colour is on by default (so that the NO_COLOR case below can fail)
	screen main -e
	if grep -qE "$esc\\[([0-9;]*;)?(3[0-7]|38;5;[0-9]+|4[0-7]|48;5;[0-9]+|9[0-7])[;m]" "$T/main.txt"
	then ok colour-by-default; else fail colour-by-default "no colour escape in the capture"; fi
else
	fail panes-120x40 "no finished study on screen: $(cat "$T/main.txt" "$T/main.err")"
fi

# --- help: a golden screen --------------------------------------------------
TM send-keys -t main F1
if wait_screen main '^ tunetop help' 10; then
	golden help-screen main help-120x40
	# the title says it scrolls; PgDn reaches the end, and the title says so
	TM send-keys -t main NPage
	if wait_screen main 'lines [0-9]+-([0-9]+) of \1 *$' 10 &&
	   grep -q '  X  diverged' "$T/main.txt" && ! grep -q 'more below' "$T/main.txt"
	then ok help-scrolls; else fail help-scrolls "after PgDn: $(cat "$T/main.txt")"; fi
	TM send-keys -t main Escape
	if wait_screen main ' Trials ' 10; then ok help-closes; else fail help-closes "$(cat "$T/main.txt")"; fi
else
	fail help-screen "F1 showed no help: $(cat "$T/main.txt")"
fi

# --- terminal too small, and back --------------------------------------------
TM resize-window -t main -x 60 -y 15
if wait_screen main 'terminal too small' 10; then
	golden too-small main too-small-60x15
	grep -q ' Trials ' "$T/main.txt" && fail too-small-no-layout "panes drawn below the minimum" ||
		ok too-small-no-layout
else
	fail too-small "no 'terminal too small' at 60x15: $(cat "$T/main.txt")"
fi
TM resize-window -t main -x 120 -y 40
if wait_screen main ' Ranks ' 10 && ! grep -q 'too small' "$T/main.txt" &&
   grep -q ' Trials ' "$T/main.txt" && grep -q 'F1Help' "$T/main.txt"; then
	ok resize-back
else
	fail resize-back "$(cat "$T/main.txt")"
fi

TM send-keys -t main q
if wait_rc main && [ "$rc" = 0 ]; then ok quit; else fail quit "exit $rc: $(cat "$T/main.err")"; fi

# --- attach to a finished study, read-only ----------------------------------
n0=$(sql "$D/quick.db" "SELECT count(*) FROM commands")
s0=$(sql "$D/quick.db" "SELECT group_concat(state || rung) FROM trials")
start ro "$D" "" "$BIN" attach quick.db --readonly
if wait_screen ro '^ +6 done' 30; then
	why=
	grep -q 'READ-ONLY' "$T/ro.txt" || why="$why no READ-ONLY in the title;"
	for k in k:kill p:promote z:pause/resume; do
		TM send-keys -t ro "${k%%:*}"
		wait_screen ro "read-only \\(--readonly\\): ${k#*:} refused" 10 ||
			why="$why ${k%%:*}: no refusal on screen;"
		grep -q 'y = kill' "$T/ro.txt" && { why="$why k asked for a confirmation;"; TM send-keys -t ro n; }
	done
	TM send-keys -t ro Space k
	wait_screen ro 'kill refused' 10 || why="$why k on a tagged trial: no refusal;"
	n1=$(sql "$D/quick.db" "SELECT count(*) FROM commands")
	s1=$(sql "$D/quick.db" "SELECT group_concat(state || rung) FROM trials")
	[ "$n1" = "$n0" ] || why="$why $n0 command rows before, $n1 after;"
	[ "$s1" = "$s0" ] || why="$why trials changed: $s0 -> $s1;"
	if [ -z "$why" ]; then ok readonly-refuses; else fail readonly-refuses "$why"; fi
else
	fail readonly-refuses "attach --readonly showed no trials: $(cat "$T/ro.txt" "$T/ro.err")"
fi
TM send-keys -t ro q
wait_rc ro; [ "$rc" = 0 ] || fail readonly-quit "exit $rc: $(cat "$T/ro.err")"

# --- attach to a study finished by run --headless ---------------------------
D2=$(study_dir attach)
(cd "$D2" && "$BIN" run --headless quick.ini >/dev/null 2>"$T/headless.err")
start at "$D2" "" "$BIN" attach quick.db
if wait_screen at '^ +6 done' 30; then
	why=
	grep -qE '\[done\] 6 trials: 6 done' "$T/at.txt" || why="$why title;"
	grep -q 'attached every' "$T/at.txt" || why="$why not shown as attached;"
	grep -q 'READ-ONLY' "$T/at.txt" && why="$why READ-ONLY without --readonly;"
	best=$(sql "$D2/quick.db" "SELECT trial_id || ' r' || rung FROM rungs ORDER BY rung DESC, val_acc DESC LIMIT 1")
	grep -qE "#$best " "$T/at.txt" || why="$why best trial ($best) not in the legend;"
	TM send-keys -t at Enter
	if wait_screen at '^ Trial 1: ' 10; then
		for h in Parameters 'Rung results' Commands; do
			grep -q "$h" "$T/at.txt" || why="$why detail lacks '$h';"
		done
		grep -q '"lr"\|lr' "$T/at.txt" || why="$why detail lacks the parameters;"
		TM send-keys -t at Escape
		wait_screen at ' Trials ' 10 || why="$why Esc did not close the detail;"
	else
		why="$why Enter showed no detail;"
	fi
	if [ -z "$why" ]; then ok attach-finished; else fail attach-finished "$why $(cat "$T/at.txt")"; fi
else
	fail attach-finished "no trials: $(cat "$T/at.txt" "$T/at.err")"
fi
# a command to a stopped study stays pending on screen; the study's next
# run applies it
ID4=$(sql "$D2/quick.db" "SELECT id FROM trials WHERE rung = 0 ORDER BY id LIMIT 1")
set -- Home
i=1; while [ $i -lt "$ID4" ]; do set -- "$@" Down; i=$((i + 1)); done
TM send-keys -t at "$@" p
if wait_sql "$D2/quick.db" "SELECT count(*) FROM commands WHERE trial_id = $ID4 AND
                             verb = 'promote' AND done_at IS NULL" 1 10 &&
   wait_screen at "^ +$ID4 done +promote[^ ]* +0 " 10 && grep -q '1 pending' "$T/at.txt"; then
	ok command-pending
else
	fail command-pending "$(sql "$D2/quick.db" 'SELECT * FROM commands') $(cat "$T/at.txt")"
fi
TM send-keys -t at q
if wait_rc at && [ "$rc" = 0 ]; then ok attach-quit; else fail attach-quit "exit $rc"; fi
(cd "$D2" && "$BIN" run --headless quick.ini >/dev/null 2>"$T/rerun.err")
if [ "$(sql "$D2/quick.db" "SELECT count(*) FROM rungs WHERE trial_id = $ID4 AND rung = 1")" = 1 ] &&
   [ "$(sql "$D2/quick.db" "SELECT result FROM commands WHERE trial_id = $ID4")" = ok ]; then
	ok pending-promote-applied
else
	fail pending-promote-applied "$(sql "$D2/quick.db" "SELECT * FROM commands") $(tail -3 "$T/rerun.err")"
fi

# --- LANG=C: ASCII only -------------------------------------------------------
D3=$(study_dir ascii)
start ascii "$D3" "LANG=C LC_ALL=C" "$BIN" quick.ini
if wait_screen ascii 'engine finished' && wait_screen ascii '^ +6 done'; then
	why=
	nonascii=$(LC_ALL=C tr -d '\000-\177' <"$T/ascii.txt" | wc -c)
	[ "$nonascii" -eq 0 ] || why="$why $nonascii non-ASCII bytes;"
	grep -q 'val acc vs steps, ascii' "$T/ascii.txt" || why="$why curves not in ascii mode;"
	grep -q '^ tunetop - quick' "$T/ascii.txt" || why="$why title;"
	for h in ' Trials ' ' Curves ' ' Ladder ' ' Memory ' ' Masks ' ' Ranks '; do
		grep -q -- "$h" "$T/ascii.txt" || why="$why no heading '$h';"
	done
	if [ -z "$why" ]; then ok lang-c-ascii; else fail lang-c-ascii "$why $(cat "$T/ascii.txt")"; fi
	TM resize-window -t ascii -x 60 -y 15
	if wait_screen ascii 'terminal too small: 60x15, needs 80x24' 10; then
		ok lang-c-too-small
	else
		fail lang-c-too-small "$(cat "$T/ascii.txt")"
	fi
else
	fail lang-c-ascii "$(cat "$T/ascii.txt" "$T/ascii.err")"
fi
TM send-keys -t ascii q

# --- NO_COLOR: attributes, no colour --------------------------------------------
D4=$(study_dir nocolor)
start nocolor "$D4" "NO_COLOR=1" "$BIN" quick.ini
if wait_screen nocolor 'engine finished' && wait_screen nocolor '^ +6 done'; then
	screen nocolor -e
	# every SGR parameter list, one parameter a line
	grep -oE "$esc\\[[0-9;]*m" "$T/nocolor.txt" | sed "s/^$esc\\[//; s/m\$//" |
		tr ';' '\n' >"$T/sgr"
	colours=$(grep -cE '^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$' "$T/sgr")
	if [ "$colours" -eq 0 ] && grep -qx 1 "$T/sgr" && grep -qx 7 "$T/sgr"; then
		ok no-color
	else
		fail no-color "$colours colour parameters; bold $(grep -cx 1 "$T/sgr"), reverse $(grep -cx 7 "$T/sgr")"
	fi
else
	fail no-color "$(cat "$T/nocolor.txt" "$T/nocolor.err")"
fi
TM send-keys -t nocolor q

# --- a theme with an error ------------------------------------------------------
printf '# a theme\nnormal = none\nstate.killed = fg=redd\n' >"$T/bad.theme"
"$BIN" attach "$D2/quick.db" --theme "$T/bad.theme" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "$T/bad.theme:3: state.killed: unknown colour 'redd', expected default" "$T/err"
then ok theme-error-attach; else fail theme-error-attach "exit $rc: $(cat "$T/err")"; fi
mkdir -p "$T/xdg/tunetop/themes"
printf 'normal = none\ntitle = bold\ntitel = bold\n' >"$T/xdg/tunetop/themes/mine.theme"
D5=$(study_dir theme)
start theme "$D5" "XDG_CONFIG_HOME=$T/xdg" "$BIN" quick.ini --theme mine
if wait_rc theme 20 && [ "$rc" = 2 ] &&
   grep -q "$T/xdg/tunetop/themes/mine.theme:3: unknown role 'titel'" "$T/theme.err"; then
	ok theme-error-in-terminal
else
	fail theme-error-in-terminal "exit $rc: $(cat "$T/theme.err")"
fi
[ -e "$D5/quick.db" ] && fail theme-error-before-study "the study ran despite the bad theme" ||
	ok theme-error-before-study
"$BIN" attach "$D2/quick.db" --theme nosuch >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "theme 'nosuch' not found (looked in .*nosuch.theme and the built-in themes: default, light, mono, projector)" "$T/err"
then ok theme-not-found; else fail theme-not-found "exit $rc: $(cat "$T/err")"; fi

# --- no terminal: headless ---------------------------------------------------------
D6=$(study_dir headless)
(cd "$D6" && "$BIN" quick.ini >"$T/hl.out" 2>"$T/hl.err" </dev/null)
rc=$?
n=$(sql "$D6/quick.db" "SELECT count(*) FROM trials WHERE state = 'done'")
if [ $rc -eq 0 ] && [ "$n" = 6 ] && grep -q '^best trial' "$T/hl.err" &&
   ! grep -q "$esc" "$T/hl.out" "$T/hl.err"; then
	ok headless-without-terminal
else
	fail headless-without-terminal "exit $rc, $n done trials: $(tail -3 "$T/hl.err")"
fi

# --- a live study: kill two tagged trials, promote one, pause and resume one -------
# Slow enough (about half a second a job, one worker) to still be running
# while the keys arrive; the test ends it by quitting.
L=$T/live
mkdir -p "$L"
cat >"$L/live.ini" <<'EOF'
[study]
name = live
seed = 11
workers = 1

[data]
source = synthetic
train_size = 16384
val_size = 256

[model]
spec = mlp:128,128,128

[space]
lr = log-float 0.001 0.5
momentum = float 0.5 0.95

[fidelity]
kind = frozen
min_trainable = 1
eta = 2
epochs = 4

[scheduler]
kind = asha
max_trials = 200

[train]
batch = 64
threads = 1
EOF
DB=$L/live.db
start live "$L" "" "$BIN" live.ini

# select trial ID: the table is sorted by id and ids start at 1, so trial
# ID is row ID-1 below Home
select_keys() {
	set -- Home
	i=1
	while [ $i -lt "$ID" ]; do set -- "$@" Down; i=$((i + 1)); done
	TM send-keys -t live "$@"
}

# the rung-0 trials waiting for a promotion, worst first (ASHA promotes the
# best, so the worst stay put while the test acts on them)
waiting="SELECT t.id FROM trials t JOIN rungs r ON r.trial_id = t.id AND r.rung = 0
         WHERE t.state = 'done' AND t.rung = 0 ORDER BY r.val_acc, t.id"
if wait_sql "$DB" "SELECT count(*) >= 5 FROM ($waiting)" 1 90 &&
   wait_screen live '^ +5 ' 20; then
	set -- $(sql "$DB" "$waiting")
	A=$1 B=$2 P=$3 Z=$4

	# kill: tag A and B, k, the confirmation names both, y
	ID=$A; select_keys; TM send-keys -t live Space
	ID=$B; select_keys; TM send-keys -t live Space
	TM send-keys -t live k
	lo=$A hi=$B
	[ "$A" -gt "$B" ] && lo=$B hi=$A
	if wait_screen live "Kill 2 trials \\(#$lo #$hi\\)\\? .*y = kill" 10; then
		TM send-keys -t live y
		if wait_sql "$DB" "SELECT group_concat(state) FROM trials WHERE id IN ($A, $B)" \
		   "killed,killed" 30 &&
		   wait_sql "$DB" "SELECT count(*) FROM commands WHERE verb = 'kill' AND
		                   trial_id IN ($A, $B) AND result = 'ok'" 2 30; then
			ok kill-tagged
		else
			fail kill-tagged "trials $A $B: $(sql "$DB" "SELECT id, state FROM trials WHERE id IN ($A, $B)"); commands: $(sql "$DB" 'SELECT * FROM commands')"
		fi
		if wait_screen live "^ +$A killed " 10 && wait_screen live "^ +$B killed " 10; then
			ok kill-shown
		else
			fail kill-shown "$(grep -E "^ +($A|$B) " "$T/live.txt")"
		fi
	else
		fail kill-tagged "no confirmation for #$lo #$hi: $(tail -2 "$T/live.txt")"
	fi

	# promote P: it runs at rung 1 (a result there, or running there now)
	ID=$P; select_keys; TM send-keys -t live p
	if wait_sql "$DB" "SELECT count(*) FROM commands WHERE verb = 'promote' AND trial_id = $P AND result = 'ok'" 1 30 &&
	   wait_sql "$DB" "SELECT (SELECT count(*) FROM rungs WHERE trial_id = $P AND rung = 1) +
	                   (SELECT count(*) FROM trials WHERE id = $P AND state = 'running' AND rung = 1) > 0" 1 60; then
		ok promote-runs-next-rung
	else
		fail promote-runs-next-rung "trial $P: $(sql "$DB" "SELECT state, rung FROM trials WHERE id = $P"); commands: $(sql "$DB" "SELECT verb, result FROM commands WHERE trial_id = $P")"
	fi

	# pause Z: paused in the database and loudly on screen; z again resumes
	ID=$Z; select_keys; TM send-keys -t live z
	if wait_sql "$DB" "SELECT state FROM trials WHERE id = $Z" paused 30 &&
	   wait_screen live "^ +$Z [^ ]*PAUSED " 10; then
		ok pause
	else
		fail pause "trial $Z: $(sql "$DB" "SELECT state FROM trials WHERE id = $Z"); row: $(grep -E "^ +$Z " "$T/live.txt")"
	fi
	ID=$Z; select_keys; TM send-keys -t live z
	if wait_sql "$DB" "SELECT state != 'paused' FROM trials WHERE id = $Z" 1 30 &&
	   wait_sql "$DB" "SELECT count(*) FROM commands WHERE trial_id = $Z AND verb = 'resume' AND result = 'ok'" 1 30 &&
	   wait_gone live "^ +$Z [^ ]*PAUSED " 10; then
		ok resume
	else
		fail resume "trial $Z: $(sql "$DB" "SELECT state FROM trials WHERE id = $Z"); row: $(grep -E "^ +$Z " "$T/live.txt")"
	fi
	# no command left pending
	if wait_sql "$DB" "SELECT count(*) FROM commands WHERE done_at IS NULL" 0 30; then
		ok commands-applied
	else
		fail commands-applied "$(sql "$DB" 'SELECT * FROM commands WHERE done_at IS NULL')"
	fi
else
	fail live-study "not enough waiting trials: $(sql "$DB" 'SELECT id, state, rung FROM trials') $(cat "$T/live.err")"
fi
# quitting stops the embedded study cleanly
TM send-keys -t live q
if wait_rc live 60 && [ "$rc" = 0 ] &&
   [ "$(sql "$DB" "SELECT count(*) FROM trials WHERE state = 'running'")" = 0 ]; then
	ok live-quit
else
	fail live-quit "exit $rc: $(cat "$T/live.err")"
fi

# --- column headers never run into each other -------------------------------------
# gate-strength (13 letters) is wider than a parameter column (at most 12):
# it is cut with a marker and the column's last cell stays blank, in UTF-8
# (…) and in ASCII (~); before, the header read "gate-strengtACC@0".
H=$T/headers
mkdir -p "$H"
cat >"$H/hdr.ini" <<'EOF'
[study]
name = hdr
seed = 3
[data]
source = synthetic
train_size = 256
val_size = 64
[model]
spec = mlp:8
[space]
gate-strength = float 0 1
label-smoothing = float 0 0.1
[fidelity]
min_trainable = 2
epochs = 1
[scheduler]
max_trials = 2
[train]
threads = 1
EOF
if (cd "$H" && "$BIN" run --headless hdr.ini >/dev/null 2>"$T/hdr-run.err"); then
	for loc in utf ascii; do
		if [ $loc = utf ]; then envs= mark='…'; else envs="LANG=C LC_ALL=C" mark='~'; fi
		start hdr-$loc "$H" "$envs" "$BIN" attach hdr.db
		if wait_screen hdr-$loc ' +ID +STATE ' 30; then
			head=$(grep -E '^ +ID +STATE ' "$T/hdr-$loc.txt")
			why=
			printf '%s\n' "$head" | grep -qE '[^ ]ACC@|[^ ]#[0-9]' && why="$why names run together;"
			printf '%s\n' "$head" | grep -qF "gate-stren$mark " || why="$why no 'gate-stren$mark ';"
			printf '%s\n' "$head" | grep -qF "label-smoo$mark " || why="$why no 'label-smoo$mark ';"
			if [ -z "$why" ]; then ok "headers-apart-$loc"
			else fail "headers-apart-$loc" "$why header: '$head'"; fi
		else
			fail "headers-apart-$loc" "no trial table: $(cat "$T/hdr-$loc.txt" "$T/hdr-$loc.err")"
		fi
		TM send-keys -t hdr-$loc q
	done
else
	fail headers-apart "the study did not run: $(tail -3 "$T/hdr-run.err")"
fi

# --- learned hyperparameters: their columns, and e in the curves pane ---------------
# The hyper rows are written by the real runner: test_hyper DIR runs a
# study whose training method (registered by that program, as EvoGrad will
# be) reports weight-decay and angle as they move.  The table shows each
# trial's latest value under ~NAME; e turns the curves pane to the selected
# trial's paths and back; at 80x24 the columns stay apart.
HY=$T/hyper
mkdir -p "$HY"
HBIN=$(dirname "$BIN")/tests/test_hyper
if "$HBIN" "$HY" 2>"$T/hyper-run.err" &&
   [ "$(sql "$HY/hyper.db" 'SELECT count(DISTINCT name) FROM hyper')" = 2 ]; then
	latest() {
		sql "$HY/hyper.db" "SELECT printf('%.3g', value) FROM hyper WHERE trial_id = $1
		                    AND name = '$2' ORDER BY rung DESC, step DESC LIMIT 1"
	}
	start hyper "$HY" "" "$BIN" attach hyper.db --readonly
	if wait_screen hyper '^ +ID +STATE .*~angle' 30 && wait_screen hyper '^ +4 done' 10; then
		why=
		head=$(grep -E '^ +ID +STATE ' "$T/hyper.txt")
		printf '%s\n' "$head" | grep -qE ' ~angle +~weight-de' || why="$why header '$head';"
		for id in 1 2 3 4; do
			a=$(latest $id angle) w=$(latest $id weight-decay)
			grep -qE "^ +$id done .* $a +$w +0\.[0-9]{4}" "$T/hyper.txt" ||
				why="$why trial $id lacks angle $a, weight-decay $w;"
		done
		grep -q 'val acc vs steps' "$T/hyper.txt" || why="$why curves do not start on val acc;"
		TM send-keys -t hyper e
		if wait_screen hyper 'learned hyperparameters of #1 vs steps' 10; then
			a=$(latest 1 angle)
			grep -qE "angle $a \[" "$T/hyper.txt" || why="$why no angle $a in the legend;"
			grep -qE "weight-decay $(latest 1 weight-decay) \[" "$T/hyper.txt" ||
				why="$why no weight-decay in the legend;"
			grep -qE '^ +max ' "$T/hyper.txt" || why="$why no max label;"
			LC_ALL=C grep -q "$(printf '\342[\240-\243]')" "$T/hyper.txt" ||
				why="$why no braille in the paths;"
			grep -q 'val acc vs steps' "$T/hyper.txt" && why="$why val acc still shown;"
		else
			why="$why e did not switch the curves: $(grep Curves "$T/hyper.txt");"
		fi
		TM send-keys -t hyper e
		wait_screen hyper 'val acc vs steps' 10 || why="$why a second e did not switch back;"
		TM send-keys -t hyper e v
		wait_screen hyper 'val acc vs steps' 10 || why="$why v did not go back to the metric;"
		TM resize-window -t hyper -x 80 -y 24
		if wait_screen hyper 'Trials .*4 of 4' 10 && ! grep -q 'too small' "$T/hyper.txt"; then
			head=$(grep -E '^ +ID +STATE ' "$T/hyper.txt")
			printf '%s\n' "$head" | grep -qE '[^ ]~|[^ ]ACC@' && why="$why 80x24: names run together;"
			printf '%s\n' "$head" | grep -qE ' ~angle +~weight-de' || why="$why 80x24 header '$head';"
		else
			why="$why no table at 80x24;"
		fi
		if [ -z "$why" ]; then ok learned-hyperparameters; else
			fail learned-hyperparameters "$why $(cat "$T/hyper.txt")"; fi
	else
		fail learned-hyperparameters "no ~angle column: $(cat "$T/hyper.txt" "$T/hyper.err")"
	fi
	TM send-keys -t hyper q
else
	fail learned-hyperparameters "the study did not run: $(tail -3 "$T/hyper-run.err")"
fi

# --- EvoGrad for real: a study learning its weight decay ---------------------
# The runner stores what the real method reports; the table shows the
# current value, and the memory pane gives the method's own buffers (one
# weight copy and one gradient of the 26506 trainable floats of
# mlp:32,32) a bar of their own, as the database has them.
EV=$T/evo
mkdir -p "$EV"
sed 's/^max_trials = 3/max_trials = 2/' "$REPO/examples/evograd-quick.ini" >"$EV/evo.ini"
if (cd "$EV" && "$BIN" run --headless evo.ini 2>"$T/evo-run.err"); then
	mb=$(sql "$EV/evo.db" "SELECT bytes FROM layer_memory WHERE trial_id = 1 AND rung = 1
	                       AND kind = 'method'")
	w=$(sql "$EV/evo.db" "SELECT printf('%.3g', value) FROM hyper WHERE trial_id = 1
	                      AND name = 'weight-decay' ORDER BY rung DESC, step DESC LIMIT 1")
	start evo "$EV" "" "$BIN" attach evo.db --readonly
	why=
	[ "$mb" = $((2 * 26506 * 4)) ] || why="$why method bytes '$mb' in layer_memory;"
	if wait_screen evo '^ +2 done' 30 && wait_screen evo '^method +' 10; then
		grep -qE '^ +ID +STATE .*~weight-de' "$T/evo.txt" || why="$why no ~weight-decay column;"
		grep -qE "^ +1 done .* $w " "$T/evo.txt" || why="$why trial 1 lacks weight-decay $w;"
		grep -qE '^method +▀+ +207\.1 KiB' "$T/evo.txt" || why="$why method bar: $(grep '^method' "$T/evo.txt");"
		grep -qE '^workspace +▄+ ' "$T/evo.txt" || why="$why no workspace bar;"
	else
		why="$why no method row in the memory pane;"
	fi
	if [ -z "$why" ]; then ok evograd-study-explorer; else
		fail evograd-study-explorer "$why $(cat "$T/evo.txt")"; fi
	TM send-keys -t evo q
else
	fail evograd-study-explorer "the study did not run: $(tail -3 "$T/evo-run.err")"
fi

# --- under SAN=1: no sanitizer report from any run ------------------------------
reports=$(grep -lE 'runtime error:|ERROR: [A-Za-z]*Sanitizer|LeakSanitizer' "$T"/*.err 2>/dev/null)
if [ -z "$reports" ]; then
	ok no-sanitizer-reports
else
	fail no-sanitizer-reports "$(for f in $reports; do echo "== $f"; head -20 "$f"; done)"
fi
