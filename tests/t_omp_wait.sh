#!/bin/sh
# tests/t_omp_wait.sh — tunetop's default for OpenMP's waiting
# (tui/main.c, omp_wait_default): with OMP_WAIT_POLICY and GOMP_SPINCOUNT
# unset, the running program has GOMP_SPINCOUNT=1000 in its environment
# (it ran itself again with it, under the same process id); a value the
# user set is left as it is.
#
# The process is caught while it reads its study file from a FIFO
# (`tunetop run --headless FIFO`): the test holds the FIFO open
# (read-write, so nobody blocks), waits until tunetop has it open too,
# reads /proc/PID/environ, then closes it, and tunetop ends with an error
# about the empty study file.  No sleep bounds
# anything: the wait ends when tunetop opens the FIFO or exits.
#
# Prints "ok NAME" or "FAIL NAME: why".  Env: TT_BIN (default build/tunetop).

TT_BIN=${TT_BIN:-build/tunetop}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
nfail=0

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }

if [ ! -r /proc/self/environ ]; then
	echo "ok omp-wait-default # skipped: no /proc"
	exit 0
fi
mkfifo "$T/study.ini" || exit 1

# environ_of ENV...: start tunetop with ENV (after unsetting both
# variables), print its GOMP_SPINCOUNT and OMP_WAIT_POLICY as it runs.
environ_of() {
	exec 3<>"$T/study.ini"
	env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$@" "$TT_BIN" run \
		--headless "$T/study.ini" >/dev/null 2>"$T/err" 3>&- &
	pid=$!
	# Until the forked shell has become tunetop, it still holds the test's
	# own descriptor on the FIFO: only tunetop's open counts.
	while kill -0 "$pid" 2>/dev/null &&
		! { readlink "/proc/$pid/exe" | grep -q 'tunetop$' &&
		    ls -l "/proc/$pid/fd" 2>/dev/null | grep -q study.ini; }; do
		sleep 0.05
	done
	tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
		grep -E '^(GOMP_SPINCOUNT|OMP_WAIT_POLICY)=' | sort | tr '\n' ' '
	exec 3>&-
	wait "$pid"
}

got=$(environ_of)
if [ "$got" = "GOMP_SPINCOUNT=1000 " ]; then
	ok omp-wait-default
else
	fail omp-wait-default "expected GOMP_SPINCOUNT=1000, the process had '$got' ($(head -c 300 "$T/err"))"
fi

got=$(environ_of GOMP_SPINCOUNT=77)
if [ "$got" = "GOMP_SPINCOUNT=77 " ]; then
	ok omp-wait-user-spincount
else
	fail omp-wait-user-spincount "expected GOMP_SPINCOUNT=77 kept, the process had '$got'"
fi

got=$(environ_of OMP_WAIT_POLICY=passive)
if [ "$got" = "OMP_WAIT_POLICY=passive " ]; then
	ok omp-wait-user-policy
else
	fail omp-wait-user-policy "expected OMP_WAIT_POLICY=passive alone, the process had '$got'"
fi

exit $((nfail > 0))
