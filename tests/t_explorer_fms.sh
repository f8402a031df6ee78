#!/bin/sh
# t_explorer_fms.sh — the explorer on a freeze-thaw study (tests/t_explorer.sh's
# way: the real binary in tmux on a private socket, the pane captured, the
# database read with sqlite3).  The study is examples/fms-quick.ini, run
# headless first (a real fms sampler writing the forecasts table).
#
# Cases: the trial table shows the FORECAST (final accuracy, mean ± sd) and
# EI columns, each trial's row the values of its latest decision; the
# curves pane's legend names the selected trial's forecast and its band is
# drawn right of its last point; Enter lists the decisions that chose the
# selected trial, exactly those the database holds; a study without
# forecasts shows no such columns.
#
# Waits poll the screen with a generous deadline only so that a broken
# build cannot hang the suite; no assertion is about time.

. tests/explorer_lib.sh

# --- a freeze-thaw study, run to its end
mkdir -p "$T/s"
sed -e 's/^budget = .*/budget = 9/' -e 's/^max_trials = .*/max_trials = 5/' \
    "$REPO/examples/fms-quick.ini" > "$T/s/fms.ini"
sed -i 's/^name = .*/name = fms/' "$T/s/fms.ini"
if ! "$BIN" run --headless "$T/s/fms.ini" 2>"$T/run.err"; then
	fail explorer_fms_study "exit $?: $(tail -3 "$T/run.err")"
	exit 0
fi
DB=$T/s/fms.db

# --- the table: each trial's latest forecast and EI
start tab "$T/s" "" "$BIN" attach "$DB" --readonly
if wait_screen tab "^ +1 +done"; then
	bad=""
	grep -qE " FORECAST +EI " "$T/tab.txt" || bad="no FORECAST and EI headings; "
	for id in $(sql "$DB" "select distinct trial_id from forecasts where final_mu is not null"); do
		want=$(sql "$DB" "select printf('%.3f±%.3f', final_mu, final_sd) from forecasts
		                  where trial_id = $id and final_mu is not null order by at desc limit 1")
		grep -qE "^ +$id +done .*$want" "$T/tab.txt" || bad="$bad trial $id lacks $want;"
	done
	n=$(sql "$DB" "select count(distinct trial_id) from forecasts where final_mu is not null")
	if [ -z "$bad" ] && [ "$n" -ge 2 ]; then
		ok explorer_fms_table
	else
		fail explorer_fms_table "${bad:-only $n trials forecast}: $(head -12 "$T/tab.txt")"
	fi
else
	fail explorer_fms_table "no trial table: $(cat "$T/tab.err" "$T/tab.txt" | head -12)"
fi

# --- the curves pane: the selected trial (the first row, trial 1) and its
# band, when it is below the top budget; every case below selects it
top=$(sql "$DB" "select max(rung) from rungs where trial_id = 1")
fm=$(sql "$DB" "select printf('%.3f±%.3f', final_mu, final_sd) from forecasts
                where trial_id = 1 and final_mu is not null order by at desc limit 1")
row=$(grep -n " Curves " "$T/tab.txt" | head -1 | cut -d: -f1)
if [ -z "$fm" ] || [ "$top" -ge 3 ]; then
	fail explorer_fms_band "trial 1 has no forecast below the top (rung $top, '$fm')"
elif [ -z "$row" ]; then
	fail explorer_fms_band "no curves pane: $(cat "$T/tab.txt")"
elif ! grep -q "(sel) forecast $fm" "$T/tab.txt"; then
	fail explorer_fms_band "the legend lacks 'forecast $fm': $(sed -n "${row},$((row + 2))p" "$T/tab.txt")"
else
	# the band reaches the top budget: 4 epochs of 4 steps (256 images in
	# batches of 64), the x axis's end, and dots in the plot's last
	# columns; without it the axis would end at the furthest curve, which
	# is short of the top while no trial reached it
	reached=$(sql "$DB" "select count(*) from rungs where rung = 3")
	axis=$(sed -n "$((row + 2)),$((row + 12))p" "$T/tab.txt" | grep -o '[0-9]* steps' | head -1)
	plot=$(sed -n "$((row + 2)),$((row + 10))p" "$T/tab.txt" | cut -c1-72)
	last=$(printf '%s\n' "$plot" | cut -c66-71 | tr -d ' │└─0123456789.\n')
	if [ "$reached" != 0 ]; then
		fail explorer_fms_band "a trial reached the top: the band cannot be told apart"
	elif [ "$axis" != "16 steps" ] || [ -z "$last" ]; then
		fail explorer_fms_band "axis '$axis', last columns '$last': $plot"
	else
		ok explorer_fms_band
	fi
fi

# --- Enter: the decisions that chose trial 1
TM send-keys -t tab Enter
if wait_screen tab "Decisions that chose it"; then
	want=$(sql "$DB" "select at from forecasts where trial_id = 1 and chosen = 1 order by at" |
	       tr '\n' ' ')
	got=$(sed -n '/Decisions that chose it/,/^ *$/p' "$T/tab.txt" |
	      sed -n 's/^   \([0-9][0-9]*\)  .*/\1/p' | tr '\n' ' ')
	if [ -n "$want" ] && [ "$got" = "$want" ]; then
		ok explorer_fms_detail
	else
		fail explorer_fms_detail "decisions '$got', the database '$want': $(head -16 "$T/tab.txt")"
	fi
else
	fail explorer_fms_detail "no decisions section: $(head -16 "$T/tab.txt")"
fi
TM kill-session -t tab 2>/dev/null

# --- a study without forecasts: no forecast columns
mkdir -p "$T/q"
cp "$REPO/examples/quick.ini" "$T/q/quick.ini"
if "$BIN" run --headless "$T/q/quick.ini" 2>"$T/q.err"; then
	start q "$T/q" "" "$BIN" attach "$T/q/quick.db" --readonly
	if wait_screen q " ID STATE"; then
		if grep -qE "FORECAST|Decisions that chose" "$T/q.txt"; then
			fail explorer_no_forecasts "$(head -4 "$T/q.txt")"
		else
			ok explorer_no_forecasts
		fi
	else
		fail explorer_no_forecasts "no table: $(head -6 "$T/q.txt")"
	fi
else
	fail explorer_no_forecasts "quick.ini: $(tail -2 "$T/q.err")"
fi
