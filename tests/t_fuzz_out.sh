#!/bin/sh
# t_fuzz_out.sh — random bytes in every text column of a real study
# database, then every way out over it (issue 16).
#
# A real study (examples/quick.ini, headless, with two commands queued) is
# copied once per iteration and tests/fuzz_db.py writes random bytes into
# every TEXT column of every table, seeded by iteration.  Then, over each
# copy: `status`, `export --format json`, `export --format csv`, the
# explorer read-only in tmux (private socket; the main screen, then the
# trial detail with its params and command history; capture-pane -e) and
# `run --headless` (it applies the queued commands and logs their verbs).
# tests/hostile_check.py asserts on each:
#   - no byte below 0x20 but newline (and tab in CSV), no DEL, no C1 control
#     and only valid UTF-8 reach the terminal (the tmux pane's title stays);
#   - the JSON parses;
#   - the CSV has the header's field count on every row;
# status and both exports answer (exit 0) and status lists every trial;
# a crash or a sanitizer report fails anywhere.
#
# One "ok NAME" / "FAIL NAME: why" per property over all iterations; a
# failure names the seed, which reproduces it:
#   TT_FUZZ_SEED=S TT_FUZZ_N=1 sh tests/t_fuzz_out.sh
# Env: TT_FUZZ_N iterations (default 3; 40 with TT_LONG=1), TT_FUZZ_SEED
# the first seed (default 1; iteration i uses seed + i).  Needs sqlite3,
# python3 and tmux (make deps).  Run from the repository root.

BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
REPO=$(pwd)
if [ "${TT_LONG:-0}" = 1 ]; then N=${TT_FUZZ_N:-40}; else N=${TT_FUZZ_N:-3}; fi
SEED=${TT_FUZZ_SEED:-1}

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }

for tool in tmux sqlite3 python3; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "FAIL fuzz-tools: $tool is not installed (make deps)"
		exit 1
	fi
done

T=$(mktemp -d) || exit 1
TMUX_TMPDIR=$T
export TMUX_TMPDIR
unset TMUX
SOCK=tt-fuzz-$$
TM() { tmux -u -L "$SOCK" -f /dev/null "$@"; }
trap 'TM kill-server 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP
cd "$T" || exit 1

mkdir base && cp "$REPO/examples/quick.ini" base/quick.ini
if ! (cd base && "$BIN" run --headless quick.ini >run.out 2>&1 &&
      "$BIN" cmd quick.db kill 5 >>run.out 2>&1 &&
      "$BIN" cmd quick.db promote 2 >>run.out 2>&1); then
	fail fuzz-setup "the quick study did not run: $(tail -c 500 base/run.out)"
	exit 1
fi
ntrials=$(sqlite3 base/quick.db 'SELECT count(*) FROM trials')

TM new-session -d -s keep -x 80 -y 24 'sleep 600'

# The first failure of each property, with its seed ("" while it holds).
f_status= f_json= f_csv= f_explorer= f_headless=

# note VAR SEED WHY: keep the first failure of a property
note() {
	eval "[ -n \"\$$1\" ]" && return
	eval "$1=\"seed \$2: \$3\""
}

# the program's exit status: a crash or a sanitizer report is a failure
# whatever the output (0, 1 and 2 are answers)
crashed() { [ "$1" -gt 2 ]; }

# wait_pane NAME ERE: until the pane shows a line matching ERE or the
# program has exited (a deadline only so that a broken build cannot hang)
wait_pane() {
	end=$(($(date +%s) + 60))
	while :; do
		TM capture-pane -p -t "$1" >"$1.plain" 2>/dev/null
		grep -qE -- "$2" "$1.plain" && return 0
		[ -s "$1.rc" ] || [ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# title_check NAME SEED: the pane's title is still the one tmux gave it
title_check() {
	title=$(TM display-message -p -t "$1" '#{pane_title}')
	case $title in
	*PWN*) note f_explorer "$2" "the pane's title became '$title'";;
	esac
}

# The checks of one iteration go to one hostile_check.py run (Python starts
# slowly on a loaded machine): "MODE FILE" pairs in $checks, and each
# file's name starts with the property it belongs to.
i=0
while [ $i -lt "$N" ]; do
	s=$((SEED + i))
	d=$T/it$s
	mkdir "$d" && cp base/quick.ini base/quick.db "$d/"
	cd "$d" || exit 1
	if ! python3 "$REPO/tests/fuzz_db.py" quick.db "$s" >fuzz.out 2>&1; then
		fail fuzz-setup "seed $s: $(tail -c 500 fuzz.out)"
		exit 1
	fi
	cp quick.db view.db
	checks=

	"$BIN" status quick.db >status.out 2>status.err
	rc=$?
	checks="$checks term-n status.out term-n status.err"
	# an answer for every row: nothing in a text column is a reason to
	# refuse the whole database
	if [ $rc -ne 0 ]; then
		note f_status "$s" "exit $rc: $(tail -c 300 status.err)"
	else
		k=1
		while [ $k -le "$ntrials" ]; do
			grep -qE "^ +$k " status.out || note f_status "$s" "trial $k not listed"
			k=$((k + 1))
		done
	fi

	for fmt in json csv; do
		"$BIN" export quick.db --format $fmt >$fmt.out 2>$fmt.err
		rc=$?
		checks="$checks term-n $fmt.err"
		checks="$checks $fmt $fmt.out"
		[ $rc -eq 0 ] || note f_$fmt "$s" "exit $rc: $(tail -c 300 $fmt.err)"
	done

	# the explorer: the main screen, then the selected trial's detail
	# (its params and command history), then quit
	name=explorer
	TM new-session -d -s "$name" -x 160 -y 50 -c "$d" \
		"env LANG=C.UTF-8 LC_ALL=C.UTF-8 '$BIN' attach view.db --readonly 2>$d/$name.err; echo \$? >$d/$name.rc; sleep 600"
	if wait_pane "$name" "^ +$ntrials "; then
		TM capture-pane -p -e -t "$name" >explorer-main.txt
		checks="$checks screen explorer-main.txt"
		# every trial in the table (rows by id, all fit in 50 lines)
		k=1
		while [ $k -le "$ntrials" ]; do
			grep -qE "^ +$k " "$name.plain" ||
				note f_explorer "$s" "trial $k not in the table: $(head -c 600 "$name.plain")"
			k=$((k + 1))
		done
		title_check "$name" "$s"
		TM send-keys -t "$name" Enter
		if wait_pane "$name" '^ Trial [0-9]+:'; then
			TM capture-pane -p -e -t "$name" >explorer-detail.txt
			checks="$checks screen explorer-detail.txt"
			title_check "$name" "$s"
		else
			note f_explorer "$s" "no trial detail: $(head -c 600 "$name.plain")"
		fi
		TM send-keys -t "$name" Escape q
	else
		note f_explorer "$s" "no trial table: $(head -c 600 "$name.plain") $(head -c 300 "$name.err")"
	fi
	end=$(($(date +%s) + 30))
	while [ ! -s "$name.rc" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
	rc=$(cat "$name.rc" 2>/dev/null)
	checks="$checks term-n $name.err"
	if [ -z "$rc" ]; then
		note f_explorer "$s" "did not quit on q"
	elif [ "$rc" -ne 0 ]; then
		note f_explorer "$s" "exit $rc: $(tail -c 300 "$name.err")"
	fi
	TM kill-session -t "$name" 2>/dev/null

	# the study log: resuming applies the queued commands, whatever their
	# verbs now are, and logs them
	"$BIN" run --headless quick.ini >headless.out 2>headless.err
	rc=$?
	checks="$checks term-n headless.out term-n headless.err"
	crashed $rc && note f_headless "$s" "exit $rc: $(tail -c 300 headless.err)"

	# shellcheck disable=SC2086
	python3 "$REPO/tests/hostile_check.py" $checks >check.out 2>&1
	while IFS= read -r line; do
		case $line in
		status.*) note f_status "$s" "$line";;
		json.*) note f_json "$s" "$line";;
		csv.*) note f_csv "$s" "$line";;
		explorer*) note f_explorer "$s" "$line";;
		headless.*) note f_headless "$s" "$line";;
		*) note f_status "$s" "hostile_check.py: $line";;
		esac
	done <check.out

	cd "$T" || exit 1
	rm -rf "$d"
	i=$((i + 1))
done

for p in status json csv explorer headless; do
	eval "why=\$f_$p"
	[ -z "$why" ] && ok "fuzz-$p ($N seeds from $SEED)" || fail "fuzz-$p" "$why"
done
exit 0
