#!/bin/sh
# tests/t_profile.sh — TUNETOP_PROFILE: the timing wrapper around the
# backend (engine/backend_prof.c) from the outside.
#
# Prints "ok NAME" or "FAIL NAME: why" per case (tests/run.sh counts them).
#   profile-off        no TUNETOP_PROFILE (and TUNETOP_PROFILE=0): no
#                      profile line on stderr
#   profile-line       TUNETOP_PROFILE=1: one {"profile":...,
#                      "profile_calls":...} line on stderr, every kind
#                      present, seconds >= 0, counts whole numbers
#   profile-counts     an mlp: gemm and optimizer calls, one loss per step
#                      (no validation set), no convolution
#   profile-conv       a resnet: convolution and batch norm calls
#   profile-same-result  the JSON result on stdout is the same with and
#                      without the wrapper (it times, it changes nothing)
# No timing is asserted.  Env: TT_BIN (default build/tunetop).

TT_BIN=${TT_BIN:-build/tunetop}
PY=${PY:-python3}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
nfail=0

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }

# train TAG MODEL STEPS: `tunetop train` on a small synthetic set, one
# thread (the same result every time), stdout to $T/TAG.out, stderr to
# $T/TAG.err, status to $rc; the environment is the caller's.
train() {
	"$TT_BIN" train --model "$2" --data synthetic --train-size 96 \
		--val-size 0 --steps "$3" --batch 32 --threads 1 --seed 3 \
		>"$T/$1.out" 2>"$T/$1.err"
	rc=$?
	return $rc
}

# check TAG CONDITION...: the profile line of $T/TAG.err as p (seconds)
# and n (calls), steps as s; prints what is wrong, nothing when all hold.
check() {
	tag=$1
	shift
	$PY - "$T/$tag.err" "$@" <<-'EOF'
	import json, sys
	lines = [l for l in open(sys.argv[1]) if l.startswith('{"profile"')]
	if len(lines) != 1:
	    print("%d profile lines on stderr, expected 1" % len(lines))
	    sys.exit(0)
	d = json.loads(lines[0])
	p, n = d["profile"], d["profile_calls"]
	kinds = ("gemm conv bn elementwise pool zero_copy optimizer loss data "
	         "gates other alloc").split()
	for k in kinds:
	    if k not in p or k not in n:
	        print("kind %s missing from %s" % (k, lines[0].strip()))
	        sys.exit(0)
	    if not p[k] >= 0 or n[k] != int(n[k]) or n[k] < 0:
	        print("kind %s: %r seconds, %r calls" % (k, p[k], n[k]))
	        sys.exit(0)
	for c in sys.argv[2:]:
	    if not eval(c, {"p": p, "n": n}):
	        print("%s does not hold: calls %s" % (c, n))
	EOF
}

# profile-off
unset TUNETOP_PROFILE
if ! train off mlp:16 2; then
	fail profile-off "tunetop train exited $rc: $(tail -n 2 "$T/off.err")"
elif grep -q '"profile"' "$T/off.err"; then
	fail profile-off "a profile line without TUNETOP_PROFILE"
elif ! TUNETOP_PROFILE=0 train off0 mlp:16 2; then
	fail profile-off "TUNETOP_PROFILE=0: exited $rc: $(tail -n 2 "$T/off0.err")"
elif grep -q '"profile"' "$T/off0.err"; then
	fail profile-off "a profile line with TUNETOP_PROFILE=0"
else
	ok profile-off
fi

# profile-line, profile-counts
if ! TUNETOP_PROFILE=1 train mlp mlp:16 3; then
	fail profile-line "tunetop train exited $rc: $(tail -n 2 "$T/mlp.err")"
	fail profile-counts "no run"
else
	why=$(check mlp)
	if [ -n "$why" ]; then fail profile-line "$why"; else ok profile-line; fi
	why=$(check mlp 'n["gemm"] > 0' 'n["optimizer"] > 0' 'n["loss"] == 3' \
		'n["conv"] == 0' 'n["bn"] == 0' 'n["data"] > 0' 'n["alloc"] > 0')
	if [ -n "$why" ]; then fail profile-counts "$why"; else ok profile-counts; fi
fi

# profile-conv
if ! TUNETOP_PROFILE=1 train res resnet:1,1,1:w4 1; then
	fail profile-conv "tunetop train exited $rc: $(tail -n 2 "$T/res.err")"
else
	why=$(check res 'n["conv"] > 0' 'n["bn"] > 0' 'n["loss"] == 1')
	if [ -n "$why" ]; then fail profile-conv "$why"; else ok profile-conv; fi
fi

# profile-same-result: everything but the timings, at the same steps as
# the run without the wrapper
if TUNETOP_PROFILE=1 train on2 mlp:16 2; then
	same=$($PY - "$T/off.out" "$T/on2.out" <<-'EOF'
	import json, sys
	def res(path):
	    d = json.loads([l for l in open(path) if l.startswith("{")][-1])
	    for k in ("seconds", "samples_per_s", "profile", "profile_calls"):
	        d.pop(k, None)
	    return d
	a, b = res(sys.argv[1]), res(sys.argv[2])
	print("same" if a == b else "differ: %s / %s" % (a, b))
	EOF
	)
	if [ "$same" = same ]; then ok profile-same-result; else fail profile-same-result "$same"; fi
else
	fail profile-same-result "tunetop train exited $rc: $(tail -n 2 "$T/on2.err")"
fi

exit $((nfail > 0))
