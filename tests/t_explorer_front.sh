#!/bin/sh
# t_explorer_front.sh — the Masks pane's front, end to end: a real gated
# study (synthetic data, mlp:64,64, gate-strength searched from 0.2 to 4,
# a few seconds) run with the explorer open in a real terminal (tmux on a
# private socket, tests/explorer_lib.sh), the pane captured and checked
# against what tests/explorer_front.py works out from the SQLite file on
# its own: the front's trials in the heading, every mark in its cell with
# its glyph (front, other, selected), the accuracy labels and the selected
# trial's numbers.
#
# Cases: the front while the study runs and once it is done (the explorer
# follows it); Up and Down in the Masks pane walk the selection along the
# front, and the Memory pane and the plot follow; LANG=C draws it in ASCII;
# NO_COLOR marks the selected trial in reverse; narrow and wide terminals
# (the front above the masks, beside them, or only the heading's list at
# 80x24); copies of the database edited to give no gated result, a trial
# whose result has no FLOPs kept, one gated trial, and 3000 trials.
#
# Env: TT_BIN (default build/tunetop; build-san/tunetop under SAN=1).  Run
# from the repository root.  Needs tmux, sqlite3 and python3.
. tests/explorer_lib.sh
PY="python3 $REPO/tests/explorer_front.py"

# front_ok CASE NAME DB COLS MODE: the heading names the database's front
# (cut where the pane ends) and the plot checks out
front_ok() {
	want=$($PY expect "$3" | sed -n 1p)
	got=$(grep -o 'front [0-9]*/[0-9]*:[ #0-9]*' "$T/$2.txt" | head -1 | sed 's/ *$//')
	why=
	case $want in "$got"*) [ -n "$got" ] || why="no front heading;" ;;
		*) why="heading '$got', expected '$want';" ;; esac
	bad=$($PY plot "$3" "$T/$2.txt" "$4" "$5")
	[ -z "$bad" ] || why="$why $bad"
	if [ -z "$why" ]; then ok "$1"; else fail "$1" "$why
$(cat "$T/$2.txt")"; fi
}

# resize NAME COLS ROWS: resize the terminal and wait until the explorer
# has drawn itself at the new size (not the old screen in a new frame)
resize() {
	TM resize-window -t "$1" -x "$2" -y "$3"
	end=$(($(date +%s) + 10))
	while :; do
		screen "$1"
		$PY layout "$T/$1.txt" "$2" "$3" && return 0
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# quit NAME: q, then wait for the program to exit (so that its sanitizer
# report, if any, is written before the last case reads the .err files)
quit() {
	TM send-keys -t "$1" q
	wait_rc "$1" 60
	[ "$rc" = 0 ] || fail "front-quit-$1" "exit $rc: $(tail -5 "$T/$1.err")"
}

# caption_id NAME: the trial the front's caption names (the selected one)
caption_id() { grep -o '[◉@]#[0-9]*' "$T/$1.txt" | head -1 | tr -d '◉@#'; }

S=$T/front
mkdir -p "$S"
cat >"$S/front.ini" <<'EOF'
[study]
name = front
seed = 5
workers = 1

[data]
source = synthetic
train_size = 2048
val_size = 256

[model]
spec = mlp:64,64

[space]
lr = log-float 0.02 0.2
gate-strength = log-float 0.2 4

[fidelity]
kind = epochs
eta = 2
epochs = 6

[scheduler]
kind = asha
max_trials = 12
sampler = halton

[train]
threads = 1
EOF
DB=$S/front.db

# --- live: the explorer opens on an empty database and follows the study ---
start live "$S" "" "$BIN" front.ini
# watch it while it runs: a front in the heading before the engine ends
seen_live=0 end=$(($(date +%s) + 120))
while [ ! -s "$T/live.rc" ] && [ "$(date +%s)" -lt "$end" ]; do
	screen live
	grep -q 'engine finished' "$T/live.txt" && break
	grep -q 'front [0-9]*/[0-9]*:' "$T/live.txt" && grep -q '\[running\]' "$T/live.txt" &&
		seen_live=1
	sleep 0.1
done
if wait_screen live 'engine finished' 120 && wait_screen live '^ +12 done' 30; then
	# a poll may lag the engine's last commit: look again before judging
	want=$($PY expect "$DB" | sed -n 1p)
	wait_screen live "$(printf '%s' "$want" | cut -c1-18)" 10
	front_ok front-live-done live "$DB" 120 utf
	[ $seen_live = 1 ] && ok front-while-running ||
		fail front-while-running "no front heading before the engine finished"
else
	fail front-live "the study did not finish: $(cat "$T/live.txt" "$T/live.err")"
fi
quit live

# --- keys: Up and Down in the Masks pane walk the front ---------------------
set -- $($PY expect "$DB" | sed -n 2p)
NF=$#
start keys "$S" "" "$BIN" attach front.db --readonly
if wait_screen keys 'front [0-9]+/' 30 && wait_screen keys '◉#1 ' 10; then
	TM send-keys -t keys Tab Tab Tab Tab
	why= sel=1 i=0
	for dir in 1 $(seq 2 "$NF" | sed 's/.*/1/') -1 $(seq 1 "$NF" | sed 's/.*/-1/'); do
		next=$($PY step "$DB" "$sel" "$dir")
		[ "$dir" = 1 ] && k=Up || k=Down
		TM send-keys -t keys $k
		if ! wait_screen keys "◉#$next[ :]" 10 || ! grep -q "Memory  trial $next," "$T/keys.txt"; then
			why="$why $k from #$sel: expected #$next, caption #$(caption_id keys);"
			break
		fi
		sel=$next i=$((i + 1))
	done
	last=$(eval echo \${$NF})
	[ -z "$why" ] && [ "$sel" != "$1" ] && why="ended on #$sel, not the front's first #$1;"
	bad=$($PY plot "$DB" "$T/keys.txt" 120 utf)
	[ -n "$bad" ] && why="$why $bad"
	if [ -z "$why" ]; then ok "front-up-down ($i steps along the front $*)"
	else fail front-up-down "$why $(cat "$T/keys.txt")"; fi
	# Up reaches the front's top end and stays there
	for _ in $(seq 1 $((NF + 1))); do TM send-keys -t keys Up; done
	if wait_screen keys "◉#$last " 10 && grep -q "Memory  trial $last," "$T/keys.txt"; then
		ok front-up-stops-at-end
	else
		fail front-up-stops-at-end "expected #$last: $(grep -o '[◉]#[0-9]*' "$T/keys.txt")"
	fi
else
	fail front-up-down "no front on screen: $(cat "$T/keys.txt" "$T/keys.err")"
fi

# --- sizes: above the masks, beside them, only the heading ---------------------
for size in 100x30 160x50 260x50; do
	if resize keys "${size%x*}" "${size#*x}" && wait_screen keys 'FLOPs kept 100%' 10; then
		front_ok "front-at-$size" keys "$DB" "${size%x*}" utf
	else
		fail "front-at-$size" "no front drawn: $(cat "$T/keys.txt")"
	fi
done
# at 260 columns the masks stand beside the plot: a stage row and a plot row
# share a line
if grep -qE 's0 +[█▓▒░· ]+ *[0-9]+/[0-9]+ +([0-9.]{5})?│' "$T/keys.txt"; then
	ok front-beside-masks
else
	fail front-beside-masks "$(cat "$T/keys.txt")"
fi
if resize keys 80 24 && ! grep -q 'FLOPs kept 100%' "$T/keys.txt" && grep -q 'front [0-9]' "$T/keys.txt" &&
   grep -qE '│s0 ' "$T/keys.txt" && ! grep -q 'too small' "$T/keys.txt"; then
	ok front-80x24-heading-only
else
	fail front-80x24-heading-only "$(cat "$T/keys.txt")"
fi
resize keys 120 40
quit keys

# --- LANG=C: ASCII marks --------------------------------------------------------
start ascii "$S" "LANG=C LC_ALL=C" "$BIN" attach front.db --readonly
if wait_screen ascii 'FLOPs kept 100%' 30 && wait_screen ascii '@#1 ' 10; then
	nonascii=$(LC_ALL=C tr -d '\000-\177' <"$T/ascii.txt" | wc -c)
	[ "$nonascii" -eq 0 ] || fail front-ascii "$nonascii non-ASCII bytes"
	front_ok front-ascii ascii "$DB" 120 ascii
else
	fail front-ascii "$(cat "$T/ascii.txt" "$T/ascii.err")"
fi
quit ascii

# --- NO_COLOR: the selected trial's mark in reverse ----------------------------
start mono "$S" "NO_COLOR=1" "$BIN" attach front.db --readonly
if wait_screen mono '◉#1 ' 30; then
	screen mono -e
	# the last SGR before the mark in the plot (the caption's mark follows
	# the axis row)
	sgr=$(grep -v 'FLOPs' "$T/mono.txt" | grep -o "$esc\\[[0-9;]*m◉" | sed -n 1p)
	case ";$(printf '%s' "$sgr" | sed "s/^$esc\\[//; s/m◉\$//");" in
	*";7;"*) ok front-no-color-reverse ;;
	*) fail front-no-color-reverse "the plot's ◉ drawn with '$(printf '%s' "$sgr" | tr -d "$esc")'" ;;
	esac
else
	fail front-no-color-reverse "$(cat "$T/mono.txt")"
fi
quit mono

# --- edited copies: no gated result, no FLOPs kept, one trial, many -----------
edit() { # NAME SQL: a copy of the database with SQL applied
	mkdir -p "$T/$1" && cp "$DB" "$T/$1/front.db" && sql "$T/$1/front.db" "$2" >/dev/null
}
attach_case() { # CASE NAME ERE [COLS]: attach to the copy NAME, wait for ERE
	start "$2" "$T/$2" "" "$BIN" attach front.db --readonly
	wait_screen "$2" "$3" 30
}

edit nogated "UPDATE rungs SET macs_kept = NULL, params_kept = NULL"
if attach_case front-no-gated nogated 'no gated results yet' &&
   ! grep -q 'front [0-9]' "$T/nogated.txt" && grep -qE '│s0 ' "$T/nogated.txt"; then
	ok front-no-gated-results
else
	fail front-no-gated-results "$(cat "$T/nogated.txt")"
fi
quit nogated

# trial 1's best result loses its FLOPs kept (as if that rung trained
# ungated): left out of the count, its caption says why
edit nokept "UPDATE rungs SET macs_kept = NULL WHERE trial_id = 1 AND
             rung = (SELECT max(rung) FROM rungs WHERE trial_id = 1)"
r1=$(sql "$DB" "SELECT max(rung) FROM rungs WHERE trial_id = 1")
if attach_case front-no-kept nokept "◉#1: no FLOPs kept at r$r1"; then
	front_ok front-trial-without-flops nokept "$T/nokept/front.db" 120 utf
else
	fail front-trial-without-flops "$(cat "$T/nokept.txt")"
fi
quit nokept

ONE=$($PY expect "$DB" | sed -n 2p | cut -d' ' -f1)
edit one "DELETE FROM rungs WHERE trial_id != $ONE"
if attach_case front-one one "front 1/1: #$ONE"; then
	front_ok front-one-trial one "$T/one/front.db" 120 utf
else
	fail front-one-trial "$(cat "$T/one.txt")"
fi
quit one

# 3000 more trials at rung 1, FLOPs kept and accuracy spread by a fixed
# pseudo-random sequence
edit many "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
           INSERT INTO trials (id, study_id, params, state, rung, created_at, updated_at)
           SELECT 1000 + i, (SELECT study_id FROM trials WHERE id = 1), '{\"lr\":0.1}',
                  'done', 1, 0, 0 FROM n;
           INSERT INTO rungs (trial_id, rung, trainable, epochs, val_loss, val_acc,
                              macs_kept, params_kept)
           SELECT id, 1, 3, 3, 1, ((id * 7919) % 1000) / 1000.0,
                  ((id * 104729) % 997 + 1) / 998.0, 0.5 FROM trials WHERE id > 1000"
if attach_case front-many many 'front [0-9]+/3012:'; then
	front_ok front-3000-trials many "$T/many/front.db" 120 utf
else
	fail front-3000-trials "$(cat "$T/many.txt")"
fi
quit many

# --- under SAN=1: no sanitizer report from any run ------------------------------
reports=$(grep -lE 'runtime error:|ERROR: [A-Za-z]*Sanitizer|LeakSanitizer' "$T"/*.err 2>/dev/null)
if [ -z "$reports" ]; then
	ok front-no-sanitizer-reports
else
	fail front-no-sanitizer-reports "$(for f in $reports; do echo "== $f"; head -20 "$f"; done)"
fi
