# explorer_lib.sh — what the explorer's end-to-end tests share: the real
# binary in a real terminal (tmux on a private socket in a temporary
# directory, so nothing is shared with the user's tmux), keys sent, the
# pane captured, the study database read with sqlite3.  Sourced from the
# repository root by the tests/t_*explorer*.sh scripts (the name does not
# start with t_, so tests/run.sh does not run it).
#
# Sets BIN (TT_BIN, default build/tunetop, made absolute), REPO, GOLDEN,
# T (the temporary directory, removed on exit with the tmux server), UTF
# and esc; defines ok, fail, sql, start, screen, wait_screen, wait_gone,
# wait_sql, wait_rc and golden (see each); starts a session "keep" that
# holds the server up.  Needs tmux and sqlite3 (make deps): without them it
# prints "FAIL explorer-tools" and exits.
#
# Waits poll the screen or the database with a generous deadline, only so
# that a broken build cannot hang the suite; no assertion is about time.

BIN=${TT_BIN:-build/tunetop}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
REPO=$(pwd)
GOLDEN=$REPO/tests/golden

for tool in tmux sqlite3; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "FAIL explorer-tools: $tool is not installed (make deps)"
		exit 1
	fi
done

T=$(mktemp -d) || exit 1
# the socket lives in $T: nothing is shared with the user's tmux
TMUX_TMPDIR=$T
export TMUX_TMPDIR
unset TMUX
SOCK=tt$$
TM() { tmux -u -L "$SOCK" -f /dev/null "$@"; }
trap 'TM kill-server 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
sql() { sqlite3 -batch -cmd '.timeout 5000' "$1" "$2" 2>&1; }

# The UTF-8 locale every case runs in unless it says otherwise (Debian
# always has C.UTF-8).
UTF=C.UTF-8
esc=$(printf '\033')

# start NAME DIR ENV CMD...: run CMD in a new 120x40 session NAME in DIR
# with the environment ENV (a string of VAR=value words); its exit status
# goes to $T/NAME.rc and its stderr to $T/NAME.err.
start() {
	name=$1 dir=$2 envs=$3
	shift 3
	TM new-session -d -s "$name" -x 120 -y 40 -c "$dir" \
		"env -u NO_COLOR LANG=$UTF LC_ALL=$UTF $envs $* 2>$T/$name.err; echo \$? >$T/$name.rc; sleep 600"
}

# screen NAME [FLAGS]: the pane as text into $T/NAME.txt
screen() { TM capture-pane -p $2 -t "$1" >"$T/$1.txt" 2>/dev/null; }

# wait_screen NAME ERE [SECONDS]: until a line of the pane matches ERE;
# gives up at once when the program has exited (its screen is final)
wait_screen() {
	end=$(($(date +%s) + ${3:-60}))
	while :; do
		screen "$1"
		grep -qE -- "$2" "$T/$1.txt" && return 0
		[ -s "$T/$1.rc" ] || [ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# wait_gone NAME ERE [SECONDS]: until no line of the pane matches ERE
wait_gone() {
	end=$(($(date +%s) + ${3:-60}))
	while :; do
		screen "$1"
		grep -qE -- "$2" "$T/$1.txt" || return 0
		[ -s "$T/$1.rc" ] || [ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# wait_sql DB QUERY WANT [SECONDS]: until QUERY's output is WANT
wait_sql() {
	end=$(($(date +%s) + ${4:-60}))
	while :; do
		got=$(sql "$1" "$2")
		[ "$got" = "$3" ] && return 0
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# wait_rc NAME [SECONDS]: until the program in session NAME has exited;
# its status in $rc
wait_rc() {
	end=$(($(date +%s) + ${2:-30}))
	while [ ! -s "$T/$1.rc" ]; do
		[ "$(date +%s)" -ge "$end" ] && { rc=timeout; return 1; }
		sleep 0.1
	done
	rc=$(cat "$T/$1.rc")
}

# golden CASE SESSION NAME: compare the last capture of SESSION with
# tests/golden/NAME.txt
golden() {
	if [ "${TT_GOLDEN_UPDATE:-0}" = 1 ]; then
		mkdir -p "$GOLDEN" && cp "$T/$2.txt" "$GOLDEN/$3.txt"
		ok "$1 (golden file rewritten)"
	elif diff -u "$GOLDEN/$3.txt" "$T/$2.txt" >"$T/$3.diff" 2>&1; then
		ok "$1"
	else
		fail "$1" "differs from tests/golden/$3.txt: $(head -c 1500 "$T/$3.diff")"
	fi
}

# a session that keeps the server up while the cases start and end theirs
TM new-session -d -s keep -x 80 -y 24 'sleep 600'
TM set-option -g default-terminal tmux-256color
TM set-option -g history-limit 0
