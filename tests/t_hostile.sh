#!/bin/sh
# t_hostile.sh — text from the study database never steers a terminal nor
# breaks an export (issue 16, items 1-5).
#
# A real study (examples/quick.ini, headless) gets hostile text written into
# it with sqlite3: OSC title and ED escape sequences, C1 controls (U+009B as
# UTF-8 and as the raw byte 0x9B), invalid UTF-8, NUL-free binary, quotes,
# commas and newlines, a spreadsheet formula, params that try to forge a
# trial's JSON, a params row of 2000 bytes, a command verb with an escape.
# Then `status`, both exports, `run --headless` (which applies the command
# and logs its verb), the explorer (tmux on a private socket) and a study
# run under the explorer (its STUDY.log) run over it;
# tests/hostile_check.py checks each output:
#   - terminal text: valid UTF-8, no C0 control but newline, no DEL, no C1;
#   - the JSON parses, the CSV has the header's field count on every row;
#   - every trial is still listed, the long params whole.
#
# Prints "ok NAME" / "FAIL NAME: why" per case.  Needs sqlite3, python3 and
# tmux (make deps).  Run from the repository root.

BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
REPO=$(pwd)
CHECK="python3 $REPO/tests/hostile_check.py"

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }

for tool in tmux sqlite3 python3; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "FAIL hostile-tools: $tool is not installed (make deps)"
		exit 1
	fi
done

T=$(mktemp -d) || exit 1
TMUX_TMPDIR=$T
export TMUX_TMPDIR
unset TMUX
SOCK=tt-hostile-$$
TM() { tmux -u -L "$SOCK" -f /dev/null "$@"; }
trap 'TM kill-server 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP
cd "$T" || exit 1

# --- a real study, then hostile text in it ---------------------------------
mkdir base && cp "$REPO/examples/quick.ini" base/quick.ini
if ! (cd base && "$BIN" run --headless quick.ini >run.out 2>&1); then
	fail hostile-setup "the quick study did not run: $(tail -c 500 base/run.out)"
	exit 1
fi

# Trials 1..6 of quick.ini, each given something else:
#   1 state: OSC 2 (set the window title) ... BEL
#   2 state: ESC [2J (clear the screen); params that try to forge the JSON
#   3 params: 2000 bytes (a valid object), between two normal trials
#   4 state: a quote, a comma and a newline; params: a valid object whose
#     string holds ESC, the raw byte 0x9B, invalid UTF-8 and an escaped quote
#   5 state: a spreadsheet formula; params: NUL-free binary
#   6 state: U+009B as UTF-8 and as the raw byte; params with a bare quote
# The study's name: U+009B, the raw byte, invalid UTF-8 and ESC [2J.
# A command for trial 2 whose verb sets the window title.
long=$(python3 -c 'print("x" * 1990)')
cp base/quick.db h.db
if ! sqlite3 h.db "
UPDATE studies SET name = 'q' || char(155) || CAST(x'9b' AS TEXT) || CAST(x'c328' AS TEXT)
                          || char(27) || '[2J' || char(27) || ']2;NAMEPWN' || char(7);
UPDATE trials SET state = char(27) || ']2;OWNED' || char(7) WHERE id = 1;
UPDATE trials SET state = char(27) || '[2J',
                  params = '{\"lr\":0.1},\"state\":\"killed\",\"p2\":{\"a\":1}' WHERE id = 2;
UPDATE trials SET state = 'a\"b,c' || char(10) || 'd',
                  params = '{\"s\":\"' || char(27) || '[2J' || CAST(x'9bc328' AS TEXT)
                           || '\\\"q\"}' WHERE id = 4;
UPDATE trials SET state = '=cmd|'' /C calc''!A0',
                  params = CAST(x'01fe9b1b5d323b07ff0a0d22c0af7f' AS TEXT) WHERE id = 5;
UPDATE trials SET state = char(155) || CAST(x'9b' AS TEXT) || 'x',
                  params = '{\"a\":\"b\"c\"}' WHERE id = 6;
INSERT INTO commands (trial_id, verb, issued_at)
       VALUES (2, char(27) || ']2;VERBPWN' || char(7), 0);
" >sql.err 2>&1; then
	fail hostile-setup "sqlite3: $(cat sql.err)"
	exit 1
fi
# The runner's cases get a database of their own with only the hostile
# study name and command verb: a resumed study reads every trial's params
# back and refuses params that are not its own JSON (exit 2, nothing
# written), which is right, and would stop it before it logs the verb.
cp base/quick.db v.db
if ! sqlite3 v.db "
UPDATE studies SET name = 'q' || char(155) || CAST(x'9b' AS TEXT) || CAST(x'c328' AS TEXT)
                          || char(27) || '[2J' || char(27) || ']2;NAMEPWN' || char(7);
INSERT INTO commands (trial_id, verb, issued_at)
       VALUES (2, char(27) || ']2;VERBPWN' || char(7), 0);
" >sql.err 2>&1; then
	fail hostile-setup "sqlite3: $(cat sql.err)"
	exit 1
fi
# the long row alone in a database of its own, so that each item fails
# or holds by itself
cp base/quick.db l.db
sqlite3 l.db "UPDATE trials SET params = '{\"k\":\"$long\"}' WHERE id = 3" >sql.err 2>&1
[ "$(sqlite3 l.db 'SELECT length(params) FROM trials WHERE id = 3')" = 1998 ] ||
	{ fail hostile-setup "trial 3's params are not 1998 bytes: $(cat sql.err)"; exit 1; }

# --- status ------------------------------------------------------------------
"$BIN" status h.db >status.out 2>status.err
rc=$?
if [ $rc -ne 0 ]; then
	fail hostile-status-runs "exit $rc: $(head -c 300 status.err | od -c | head -5)"
else
	ok hostile-status-runs
fi
why=$($CHECK term-n status.out) && why=$($CHECK term-n status.err) &&
	ok hostile-status-terminal || fail hostile-status-terminal "$why"
# listed: a row per trial, by id
listed() {
	miss=
	for id in 1 2 3 4 5 6; do
		grep -qE "^ +$id " "$1" || miss="$miss $id"
	done
	[ -z "$miss" ]
}
listed status.out && ok hostile-status-lists-all || fail hostile-status-lists-all "trials$miss not listed"

# --- a params row over 1023 bytes ------------------------------------------------
"$BIN" status l.db >lstatus.out 2>lstatus.err
rc=$?
if [ $rc -ne 0 ]; then
	fail hostile-long-status "exit $rc: $(head -c 300 lstatus.err)"
elif ! listed lstatus.out; then
	fail hostile-long-status "trials$miss not listed"
elif ! grep -q "\"k\":\"$long\"" lstatus.out; then
	fail hostile-long-status "trial 3's 1998-byte params not shown whole"
else
	ok hostile-long-status
fi
for fmt in json csv; do
	"$BIN" export l.db --format $fmt >long.$fmt 2>long.err
	rc=$?
	if [ $rc -ne 0 ]; then
		fail hostile-long-$fmt "exit $rc: $(head -c 300 long.err)"
	elif ! why=$($CHECK $fmt long.$fmt); then
		fail hostile-long-$fmt "$why"
	elif ! why=$(python3 - long.$fmt $fmt "$long" <<'PY' 2>&1
import csv, json, sys
path, fmt, long = sys.argv[1:4]
if fmt == "json":
    t = {x["id"]: x["params"] for x in json.load(open(path))["trials"]}
    assert t.get(3) == {"k": long}, "trial 3's params not whole"
else:
    t = {int(r["trial"]): r["params"] for r in csv.DictReader(open(path, newline=""))}
    assert long in t.get(3, ""), "trial 3's params not whole"
assert sorted(t) == [1, 2, 3, 4, 5, 6], "trials %s" % sorted(t)
PY
); then
		fail hostile-long-$fmt "$why"
	else
		ok hostile-long-$fmt
	fi
done

# --- export --format json ----------------------------------------------------
"$BIN" export h.db --format json >json.out 2>json.err
rc=$?
[ $rc -eq 0 ] && ok hostile-json-runs || fail hostile-json-runs "exit $rc: $(head -c 300 json.err)"
why=$($CHECK json json.out) && ok hostile-json-valid || fail hostile-json-valid "$why"
why=$($CHECK term-n json.err) && ok hostile-json-stderr || fail hostile-json-stderr "$why"
# what the values read back as: the forged params are not a state, the
# long params are whole, every trial is there
why=$(python3 - json.out <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
t = {x["id"]: x for x in d["trials"]}
assert sorted(t) == [1, 2, 3, 4, 5, 6], "trials %s" % sorted(t)
assert t[1]["state"] == "\x1b]2;OWNED\x07", repr(t[1]["state"])
assert t[2]["state"] == "\x1b[2J", "trial 2's state is %r" % t[2]["state"]
assert "p2" not in t[2], "params forged a key of trial 2"
assert isinstance(t[2]["params"], str), "trial 2's params %r" % t[2]["params"]
assert t[4]["params"]["s"].startswith("\x1b[2J") and t[4]["params"]["s"].endswith('"q'), \
    repr(t[4]["params"])
assert t[4]["state"] == 'a"b,c\nd', repr(t[4]["state"])
assert "\x9b" in d["study"] and "\x1b[2J" in d["study"], repr(d["study"])
PY
) && ok hostile-json-values || fail hostile-json-values "$why"

# --- export --format csv -----------------------------------------------------
"$BIN" export h.db --format csv >csv.out 2>csv.err
rc=$?
[ $rc -eq 0 ] && ok hostile-csv-runs || fail hostile-csv-runs "exit $rc: $(head -c 300 csv.err)"
why=$($CHECK csv csv.out) && ok hostile-csv-valid || fail hostile-csv-valid "$why"
why=$(python3 - csv.out <<'PY' 2>&1
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8", newline="")))
t = {}
for r in rows:
    t.setdefault(int(r["trial"]), r)
assert sorted(t) == [1, 2, 3, 4, 5, 6], "trials %s" % sorted(t)
assert t[4]["state"] == 'a"b,c\nd', repr(t[4]["state"])
assert t[5]["state"].startswith("'="), "formula not neutralised: %r" % t[5]["state"]
for k, r in t.items():
    for v in r.values():
        assert v is None or not v[:1] in ("=", "+", "-", "@"), "trial %d: %r" % (k, v)
PY
) && ok hostile-csv-values || fail hostile-csv-values "$why"

# --- run --headless: the command's verb in the progress lines -------------------
mkdir run && cp base/quick.ini run/quick.ini && cp v.db run/quick.db
(cd run && "$BIN" run --headless quick.ini >run.out 2>run.err)
if ! grep -q 'VERBPWN' run/run.err; then
	fail hostile-headless-verb "the command was not logged: $(tail -c 300 run/run.err)"
else
	why=$($CHECK term-n run/run.err) && why=$($CHECK term-n run/run.out) &&
		ok hostile-headless-verb || fail hostile-headless-verb "$why"
fi

# --- the explorer and status in a real terminal ---------------------------------
TM new-session -d -s keep -x 80 -y 24 'sleep 600'
# run NAME CMD...: CMD in a 200x50 pane that stays after it exits
run_pane() {
	name=$1
	shift
	TM new-session -d -s "$name" -x 200 -y 50 -c "$T" \
		"env LANG=C.UTF-8 LC_ALL=C.UTF-8 $* 2>$T/$name.err; echo \$? >$T/$name.rc; sleep 600"
}
run_pane st "$BIN" status h.db
end=$(($(date +%s) + 30))
while [ ! -s st.rc ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
title=$(TM display-message -p -t st '#{pane_title}')
TM capture-pane -p -e -t st >st.txt
case $title in
*PWN*|*OWNED*) fail hostile-status-tmux "the pane's title became '$title'";;
*) why=$($CHECK screen st.txt) && ok hostile-status-tmux || fail hostile-status-tmux "$why";;
esac

# explore NAME DB: the explorer read-only on a copy of DB; every trial
# row 1 to 6 in its table, the pane's title untouched, no control
# character in the pane
explore() {
	cp "$2" "$1.db"
	run_pane "$1" "$BIN" attach "$1.db" --readonly
	end=$(($(date +%s) + 60))
	while :; do
		TM capture-pane -p -e -t "$1" >"$1.txt" 2>/dev/null
		TM capture-pane -p -t "$1" >"$1.plain" 2>/dev/null
		listed "$1.plain" || [ -s "$1.rc" ] || [ "$(date +%s)" -ge "$end" ] || { sleep 0.2; continue; }
		break
	done
	listed "$1.plain" && ok "hostile-explorer-$1-lists-all" ||
		fail "hostile-explorer-$1-lists-all" "trials$miss not in the table: $(head -c 800 "$1.plain")"
	title=$(TM display-message -p -t "$1" '#{pane_title}')
	case $title in
	*PWN*|*OWNED*) fail "hostile-explorer-$1-terminal" "the pane's title became '$title'";;
	*) why=$($CHECK screen "$1.txt") && ok "hostile-explorer-$1-terminal" ||
		fail "hostile-explorer-$1-terminal" "$why";;
	esac
	TM send-keys -t "$1" q
}
explore text h.db
explore long l.db

# the study log (STUDY.log beside the database) while the explorer shows
# the study: the engine applies the command and logs its verb there
mkdir logged && cp base/quick.ini logged/quick.ini && cp v.db logged/quick.db
TM new-session -d -s logged -x 200 -y 50 -c "$T/logged" \
	"env LANG=C.UTF-8 LC_ALL=C.UTF-8 $BIN quick.ini 2>$T/logged.err; echo \$? >$T/logged.rc; sleep 600"
end=$(($(date +%s) + 60))
until grep -q VERBPWN logged/quick.log 2>/dev/null || [ -s logged.rc ] ||
      [ "$(date +%s)" -ge "$end" ]; do
	sleep 0.2
done
TM send-keys -t logged q
if ! grep -q VERBPWN logged/quick.log 2>/dev/null; then
	fail hostile-study-log "the command was not logged: $(tail -c 300 logged/quick.log 2>&1)"
else
	why=$($CHECK term-n logged/quick.log) && ok hostile-study-log || fail hostile-study-log "$why"
fi
exit 0
