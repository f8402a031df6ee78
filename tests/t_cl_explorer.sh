#!/bin/sh
# t_cl_explorer.sh — the explorer on a continual study, end to end: a real
# continual study (synthetic data, naive against hn, rungs = experiences)
# run headless into a real SQLite file, then `tunetop attach` in a real
# terminal (tmux on a private socket, keys sent, the pane captured).
#
# Cases: the Continual pane takes the Ladder's place; it shows the
# selected trial's accuracy matrix from task_acc cell by cell (percent,
# one decimal), the forgetting of each task and the ACA; the trial table
# has ACA and FORGET columns with every trial's numbers; moving the
# selection shows the next trial's matrix; the cells are coloured (heat
# roles) while NO_COLOR keeps attributes only; the help lists the pane.
#
# Waits poll the screen with a generous deadline, only so that a broken
# build cannot hang the suite; no assertion is about time.  Needs tmux.
. tests/explorer_lib.sh

cat > "$T/cl.ini" <<'EOF'
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
cl-strategy = choice naive,hn
lr = log-float 3e-3 3e-2

[fidelity]
eta = 2
epochs = 6

[scheduler]
kind = asha
max_trials = 4

[train]
continual-tasks = 5
cl-split = 1
cl-order = 3
optimizer = adamw
weight-decay = 0
batch = 16
threads = 1
EOF
if ! (cd "$T" && "$BIN" run --headless cl.ini >/dev/null 2>run.err); then
	fail cl-study "exit $?: $(tail -3 "$T/run.err")"
	exit 1
fi

# expect TRIAL: the pane's lines for TRIAL from task_acc, as the pane
# prints them ("after3 " then "%5.1f " per task; "forget " then each
# task's best before the last row less the last row; "ACA ..."), and
# the trial table's "ACA FORGET" cells, one per line, into $T/want.txt
expect() {
	python3 - "$T/cl.db" "$1" >"$T/want.txt" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
a = {}
for e, t, v in c.execute("select experience, task, acc from task_acc where trial_id = ?",
                         (int(sys.argv[2]),)):
    a[e, t] = v
rows = 0
while all((rows, j) in a for j in range(rows + 1)):
    rows += 1
for i in range(rows):
    # (the capture drops trailing blanks)
    print(("after%-2d" % (i + 1) + "".join("%5.1f " % (100 * a[i, j])
                                            for j in range(i + 1))).rstrip())
fg = [max(a[k, j] for k in range(j, rows - 1)) - a[rows - 1, j] if rows > 1 else 0
      for j in range(rows - 1)]
if rows > 1:
    print(("forget " + "".join("%5.1f " % (100 * f) for f in fg)).rstrip())
aca = sum(a[rows - 1, j] for j in range(rows)) / rows
mf = sum(fg) / len(fg) if fg else 0.0
print("ACA %.1f%%  forgetting %.1f points  (%d of 5)" % (100 * aca, 100 * mf, rows))
print("TABLE %6.1f %6.1f" % (100 * aca, 100 * mf))
EOF
}

# matches TRIAL: every expected line on the screen (cells in the pane;
# the table's cells on the trial's row)
matches() {
	why=
	grep -qE "^#$1 +T1 +T2 +T3 +T4 +T5" "$T/pane.txt" || why="$why no matrix header for #$1;"
	while IFS= read -r l; do
		case $l in
		TABLE*)
			cells=${l#TABLE }
			grep -qE "^ +$1 done .* $cells " "$T/v.txt" ||
				why="$why table row $1 lacks ACA/FORGET '$cells';" ;;
		*)
			grep -qF -- "$l" "$T/pane.txt" || why="$why pane lacks '$l';" ;;
		esac
	done <"$T/want.txt"
}

# the right-hand side of the middle band: the Continual pane's columns
pane() { sed -n 's/^.*│//p' "$T/v.txt" >"$T/pane.txt"; }

start v "$T" "" "$BIN" attach cl.db
if wait_screen v '^ +4 done' 60 && wait_screen v 'after1 ' 10; then
	why=
	grep -q ' Continual ' "$T/v.txt" || why="$why no Continual heading;"
	grep -q ' Ladder ' "$T/v.txt" && why="$why the Ladder is still drawn;"
	grep -qE 'ID STATE .* ACA +FORGET ' "$T/v.txt" || why="$why no ACA, FORGET columns;"
	if [ -z "$why" ]; then ok continual-pane-replaces-ladder; else
		fail continual-pane-replaces-ladder "$why $(cat "$T/v.txt")"; fi

	# the selection starts on trial 1 (sorted by id); then trial 2
	for id in 1 2; do
		[ "$id" = 2 ] && { TM send-keys -t v Down; wait_screen v "^ .*│#2 " 10; }
		expect "$id"
		pane
		matches "$id"
		n=$(grep -c . "$T/want.txt")
		if [ -z "$why" ] && [ "$n" -ge 3 ]; then ok "matrix-of-trial-$id"; else
			fail "matrix-of-trial-$id" "$why (want: $(cat "$T/want.txt")) $(cat "$T/v.txt")"; fi
	done

	# heat roles colour the cells (a background colour right before a
	# number), NO_COLOR below keeps only attributes
	screen v -e
	if grep -qE "$esc\\[([0-9;]*;)?(4[0-7]|48;5;[0-9]+|10[0-7])m($esc\\[[0-9;]*m)* *[0-9]+\\.[0-9]" "$T/v.txt"
	then ok heat-cells-coloured; else fail heat-cells-coloured "no background before a cell"; fi

	TM send-keys -t v F1
	if wait_screen v '^ tunetop help' 10 && grep -q 'Continual  in place of the Ladder' "$T/v.txt"
	then ok help-lists-continual; else fail help-lists-continual "$(cat "$T/v.txt")"; fi
	TM send-keys -t v Escape
	TM send-keys -t v q
else
	fail continual-pane-replaces-ladder "no finished study on screen: $(cat "$T/v.txt" "$T/v.err")"
fi

start nc "$T" "NO_COLOR=1" "$BIN" attach cl.db
if wait_screen nc 'after1 ' 60; then
	screen nc -e
	if grep -qE "$esc\\[([0-9;]*;)?(3[0-7]|38;5;[0-9]+|4[0-7]|48;5;[0-9]+|9[0-7]|10[0-7])[;m]" "$T/nc.txt"
	then fail no-colour-heat "a colour escape under NO_COLOR"
	elif grep -qE "$esc\\[([0-9;]*;)?(1|4|7)m($esc\\[[0-9;]*m)* *[0-9]+\\.[0-9]" "$T/nc.txt"
	then ok no-colour-heat
	else fail no-colour-heat "no attribute before a cell: $(head -c 2000 "$T/nc.txt")"; fi
	TM send-keys -t nc q
else
	fail no-colour-heat "no matrix: $(cat "$T/nc.txt" "$T/nc.err")"
fi
