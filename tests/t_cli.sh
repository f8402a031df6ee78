#!/bin/sh
# tests/t_cli.sh — `tunetop train` from the outside: exit statuses, error
# messages, --help, the JSON result, determinism and divergence.
#
# Prints "ok NAME" or "FAIL NAME: why" per case (tests/run.sh counts them).
# Every bad-input case asserts exit status 2, an empty stdout, and a stderr
# that names the offending value or file and what was expected.  IDX files
# are written by python3 into a mktemp directory removed at the end.
#
# Env: TT_BIN (default build/tunetop).  Run from the repository root (for
# the option table in tui/main.c; a fixed list is checked regardless).

TT_BIN=${TT_BIN:-build/tunetop}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
nfail=0

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; nfail=$((nfail + 1)); }

# run ARGS...: run `tunetop train ARGS`, stdout to $T/out, stderr to $T/err,
# status to $rc.
# A sanitizer report on stderr is remembered for the last case.
sanreports=
run() {
	"$TT_BIN" train "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if grep -qE 'runtime error:|ERROR: [A-Za-z]*Sanitizer|LeakSanitizer' "$T/err"; then
		sanreports="$sanreports [train $*]"
	fi
}

# has WORD...: every WORD occurs (fixed string) in stderr; else sets $why.
has() {
	for w in "$@"; do
		if ! grep -qF -- "$w" "$T/err"; then
			why="stderr lacks '$w': $(head -c 400 "$T/err" | tr '\n' ' ')"
			return 1
		fi
	done
	return 0
}

# bad NAME "WORD|WORD|..." ARGS...: expect status 2, nothing on stdout, and
# every WORD in stderr.
bad() {
	name=$1 words=$2
	shift 2
	run "$@"
	if [ "$rc" -ne 2 ]; then
		fail "$name" "exit status $rc, expected 2 (stderr: $(head -c 300 "$T/err" | tr '\n' ' '))"
		return
	fi
	if [ -s "$T/out" ]; then
		fail "$name" "stdout not empty: $(head -c 200 "$T/out")"
		return
	fi
	oldifs=$IFS
	IFS='|'
	set -f
	set -- $words
	set +f
	IFS=$oldifs
	if ! has "$@"; then
		fail "$name" "$why"
		return
	fi
	ok "$name"
}

if [ ! -x "$TT_BIN" ]; then
	fail cli-binary "$TT_BIN is not an executable (build it first)"
	exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
	fail cli-python3 "python3 is needed to write IDX files and parse JSON"
	exit 1
fi

SYN="--data synthetic --train-size 256 --val-size 64"
SPECFORMS="mlp:W,W"

# ---- model specs ------------------------------------------------------------

bad model-unknown-kind "'foo'|foo:1|expected|$SPECFORMS" --model foo:1
bad model-bad-number "resnet:2,x|'x'|expected a number" --model resnet:2,x
bad model-empty-list "cnn:|expected a number" --model cnn:
bad model-trailing "mlp:16;|unexpected|expected" --model "mlp:16;"
bad model-zero-width "mlp:0|0 is out of range|expected" --model mlp:0
bad model-bad-resnet-width "resnet:1:wq|bad width|expected :wN" --model resnet:1:wq
# five pooling blocks on 28x28: 28 -> 14 -> 7 -> 3 -> 1 -> no room
bad model-cnn-too-deep "block 5|1x1|expected at most 4 blocks|28x28" \
	--model cnn:8,8,8,8,8 $SYN --steps 1

# ---- out-of-range values ------------------------------------------------------

bad lr-negative "--lr|'-1'|expected a number in" --lr -1
bad lr-nan "--lr|'nan'|expected a number in" --lr nan
# the command line reads numbers as a study file does: decimal only
bad lr-hex "--lr|'0x1p-4'|expected a number in" --lr 0x1p-4
bad batch-blank "--batch|' 8'|expected an integer in" --batch ' 8'
bad batch-zero "--batch|'0'|expected an integer in 1..65536" --batch 0
bad epochs-zero "--epochs|'0'|expected an integer in 1..100000" --epochs 0
bad epochs-not-a-number "--epochs|'3x'|expected an integer" --epochs 3x
bad trainable-99 "--trainable|'99'|expected|all" --trainable 99 --model mlp:16
bad trainable-more-than-stages "--trainable 5|mlp:16|2 stages|expected 1..2 or all" \
	--trainable 5 --model mlp:16
bad trainable-zero "--trainable|'0'|expected|all" --trainable 0
bad momentum-2 "--momentum|'2'|expected a number in [0, 0.9999]" --momentum 2
bad weight-decay-negative "--weight-decay|'-0.1'|expected a number in" --weight-decay -0.1
bad threads-zero "--threads|'0'|expected an integer in 1..1024" --threads 0

# ---- usage --------------------------------------------------------------------

bad unknown-option "unknown option|'--bogus'|--help" --bogus 1
bad missing-value "--lr|needs a value" --model mlp:16 --lr
bad missing-value-model "--model|needs a value|SPEC" --model
bad flag-with-value "--nesterov|takes no value" --nesterov=1
bad stray-argument "unexpected argument|'stray'" stray
bad unknown-optimizer "--optimizer|'adam'|expected one of sgd|adamw" --optimizer adam
bad unknown-schedule "--schedule|'linear'|expected one of constant|step|cosine" \
	--schedule linear
bad unknown-backend "backend|'nosuch'|expected one of" --backend nosuch $SYN --steps 1 --model mlp:8
bad gates-not-number "--gates 'x'|strength 'x' is not a number|STRENGTH[,BALANCE[,FLOPS_SHARE]]" \
	--gates x $SYN --steps 1 --model mlp:8
bad gates-balance-range "--gates '1,2'|balance 2 is out of range|0..1" --gates 1,2 $SYN --steps 1 --model mlp:8
bad gates-too-many "more than three values" --gates 1,0.5,0.5,1 $SYN --steps 1 --model mlp:8
bad gates-negative "strength -1 is out of range" --gates=-1 $SYN --steps 1 --model mlp:8

# EvoGrad and its experiments' options: every bad value exits 2 naming
# the option and what was expected.
bad evograd-what "--evograd|'foo'|WHAT one of off|wd|mwn|rotate" --evograd foo $SYN --steps 1 --model mlp:8
bad evograd-k "--evograd|'wd,1'|K an integer in 2..1024" --evograd wd,1 $SYN --steps 1 --model mlp:8
bad evograd-sigma "--evograd|SIGMA a number in [1e-09, 1]|found 'x'" --evograd wd,2,x $SYN --steps 1 --model mlp:8
bad evograd-tau "--evograd|TAU a number in [1e-06, 1000]|found '0'" --evograd wd,2,0.001,0 $SYN --steps 1 --model mlp:8
bad evograd-too-many "--evograd|more than four values" --evograd wd,2,0.001,0.05,1 $SYN --steps 1 --model mlp:8
bad evograd-every "--evograd-every|'0'|an integer in 1..1000000" --evograd wd --evograd-every 0 $SYN --steps 1 --model mlp:8
bad evograd-noise "--evograd-noise|'uniform'|one of rademacher|gaussian" --evograd wd --evograd-noise uniform $SYN --steps 1 --model mlp:8
bad evograd-opt "--evograd-opt|'rmsprop'|one of adam|sgd|nesterov" --evograd wd --evograd-opt rmsprop $SYN --steps 1 --model mlp:8
bad evograd-lr "--evograd-lr|'-1'|a number in [0, 100]" --evograd wd --evograd-lr -1 $SYN --steps 1 --model mlp:8
bad rotate-range "--rotate|'200'|a number in [-180, 180]" --rotate 200 $SYN --steps 1 --model mlp:8
bad rotate-alone "--rotate 30|--evograd rotate" --rotate 30 --evograd wd $SYN --steps 1 --model mlp:8
bad label-noise "--label-noise|'1.5'|a number in [0, 1]" --label-noise 1.5 $SYN --steps 1 --model mlp:8
bad clean-val-range "--clean-val|'-3'|an integer in 0..10000000" --clean-val -3 $SYN --steps 1 --model mlp:8
bad clean-val-more "--clean-val 500|only|validation examples|expected 0.." --evograd wd --clean-val 500 $SYN --steps 1 --model mlp:8 --val-size 100
bad val-rotate "--val-rotate|'nan'|a number in [-180, 180]" --val-rotate nan $SYN --steps 1 --model mlp:8
bad evograd-wd-zero "--evograd wd|--weight-decay|above 0" --evograd wd --weight-decay 0 $SYN --steps 1 --model mlp:8
bad evograd-gates "--evograd with --gates" --evograd wd --gates 1 $SYN --steps 1 --model mlp:8,8
bad evograd-rotate-frozen "input_grad needs every stage trained|trainable" --evograd rotate --trainable 1 $SYN --steps 1 --model mlp:8
bad evograd-no-val "--evograd needs validation examples|--val-size is 0" --evograd mwn $SYN --val-size 0 --steps 1 --model mlp:8

# An EvoGrad run: its JSON object, with the path starting at step 0.
run --evograd wd --evograd-every 2 $SYN --steps 6 --model mlp:8
if [ "$rc" -ne 0 ]; then fail evograd-json "exit status $rc: $(tail -2 "$T/err")"
elif ! grep -q '"evograd":{"what":"wd","values":{"weight-decay":' "$T/out" ||
     ! grep -q '"path":\[\[0,0.0005\],' "$T/out" || ! grep -q '"meta_steps":3,' "$T/out" ||
     ! grep -q '"method":[1-9]' "$T/out"; then
	fail evograd-json "$(head -c 600 "$T/out")"
else ok evograd-json; fi

# --gates on a run whose only trainable stage is the head: it says so.
run --gates 1 $SYN --steps 1 --model mlp:8 --trainable 1
if [ "$rc" -ne 0 ]; then fail gates-nothing-to-gate "exit status $rc: $(tail -2 "$T/err")"
elif ! has "--gates" "no unit or layer to gate" "ungated"; then fail gates-nothing-to-gate "$why"
else ok gates-nothing-to-gate; fi
run --gates 1 $SYN --steps 1 --model mlp:8 --trainable 2
if grep -qF "no unit or layer to gate" "$T/err"; then
	fail gates-something-to-gate "notice on a gated fc1: $(tail -2 "$T/err")"
else ok gates-something-to-gate; fi

"$TT_BIN" bogus-command >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -ne 2 ]; then fail unknown-command "exit status $rc, expected 2"
elif [ -s "$T/out" ]; then fail unknown-command "stdout not empty"
elif ! has "unknown command" "'bogus-command'" "usage"; then fail unknown-command "$why"
else ok unknown-command; fi

# ---- data ---------------------------------------------------------------------

bad data-missing-dir "/nonexistent/dir|cannot open data directory|expected an MNIST-layout directory|train-images-idx3-ubyte" \
	--data /nonexistent/dir
if grep -qF dataset-fashion-mnist "$T/err"; then
	fail data-missing-dir-no-package "a bogus dir's message names the Debian package: $(cat "$T/err")"
else
	ok data-missing-dir-no-package
fi
: >"$T/plainfile"
bad data-not-a-dir "$T/plainfile|not a directory|expected" --data "$T/plainfile"

# IDX sets: mkidx DIR GZ N [fault], fault one of
#   ok, magic (images magic 0x0804), truncated (pixels 100 bytes short),
#   count (one label fewer than images), label (a label of 10),
#   trailing (3 extra bytes after the labels), ltype (labels of type 0x0d)
mkidx() {
	mkdir -p "$1" && python3 - "$1" "$2" "$3" "$4" <<'EOF'
import gzip, struct, sys
d, gz, n, fault = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
pix = bytes((i * 37 + (i // 784) * 11) % 256 for i in range(n * 28 * 28))
lab = bytes(i % 10 for i in range(n))
imagic, lmagic = 0x803, 0x801
if fault == "magic": imagic = 0x804
if fault == "ltype": lmagic = 0xd01
if fault == "truncated": pix = pix[:-100]
if fault == "count": lab = lab[:-1]
if fault == "label": lab = lab[:5] + bytes([10]) + lab[6:]
img = struct.pack(">IIII", imagic, n, 28, 28) + pix
lb = struct.pack(">II", lmagic, len(lab)) + lab
if fault == "trailing": lb += b"xyz"
op = gzip.open if gz else open
sfx = ".gz" if gz else ""
with op(d + "/train-images-idx3-ubyte" + sfx, "wb") as f: f.write(img)
with op(d + "/train-labels-idx1-ubyte" + sfx, "wb") as f: f.write(lb)
with op(d + "/t10k-images-idx3-ubyte" + sfx, "wb") as f: f.write(img)
with op(d + "/t10k-labels-idx1-ubyte" + sfx, "wb") as f: f.write(lb)
EOF
}

IDXRUN="--model mlp:8 --train-size 30 --val-size 10 --batch 16 --steps 2"
for gz in 0 1; do
	sfx=; kind=raw
	[ "$gz" = 1 ] && sfx=.gz kind=gz
	d=$T/good-$kind
	if ! mkidx "$d" $gz 40 ok; then
		fail "idx-$kind-setup" "python3 could not write IDX files"
		continue
	fi
	run --data "$d" $IDXRUN --test
	if [ "$rc" -ne 0 ]; then
		fail "idx-$kind-valid-runs" "status $rc: $(head -c 300 "$T/err")"
	elif ! grep -q '"test_acc"' "$T/out"; then
		fail "idx-$kind-valid-runs" "no test_acc in $(cat "$T/out")"
	else
		ok "idx-$kind-valid-runs"
	fi

	img=train-images-idx3-ubyte$sfx lab=train-labels-idx1-ubyte$sfx
	mkidx "$T/magic-$kind" $gz 40 magic
	bad "idx-$kind-bad-magic" "$T/magic-$kind/$img|bad magic 0x00000804|expected 0x00000803" \
		--data "$T/magic-$kind" $IDXRUN
	mkidx "$T/ltype-$kind" $gz 40 ltype
	bad "idx-$kind-label-type" "$T/ltype-$kind/$lab|bad magic|expected 0x00000801|not u8" \
		--data "$T/ltype-$kind" $IDXRUN
	mkidx "$T/trunc-$kind" $gz 40 truncated
	bad "idx-$kind-truncated-pixels" "$T/trunc-$kind/$img|truncated|expected 31360 bytes of pixels|found 31260" \
		--data "$T/trunc-$kind" $IDXRUN
	mkidx "$T/count-$kind" $gz 40 count
	bad "idx-$kind-count-mismatch" "$T/count-$kind/$img|40 images|$T/count-$kind/$lab|39 labels" \
		--data "$T/count-$kind" $IDXRUN
	mkidx "$T/label-$kind" $gz 40 label
	bad "idx-$kind-label-range" "$T/label-$kind/$lab|label 10|index 5|expected 0..9" \
		--data "$T/label-$kind" $IDXRUN
	mkidx "$T/trail-$kind" $gz 40 trailing
	bad "idx-$kind-trailing" "$T/trail-$kind/$lab|3 trailing bytes|expected none" \
		--data "$T/trail-$kind" $IDXRUN
done

# a directory with only the images
mkdir -p "$T/half"
cp "$T/good-raw/train-images-idx3-ubyte" "$T/half/"
bad idx-missing-labels "$T/half/train-labels-idx1-ubyte|not found" --data "$T/half" $IDXRUN
# --test needs the t10k half as well
mkdir -p "$T/notest"
cp "$T/good-raw/train-"* "$T/notest/"
bad idx-missing-test-half "$T/notest/t10k-images-idx3-ubyte|not found" \
	--data "$T/notest" $IDXRUN --test

# 40 examples cannot give 35 + 10
bad split-too-large "--train-size 35|--val-size 10|40 training examples" --data "$T/good-raw" --model mlp:8 \
	--train-size 35 --val-size 10 --steps 1

# The packaged Fashion-MNIST: its message names the package when missing.
FASHION=/usr/share/datasets/fashion-mnist
if [ -d "$FASHION" ]; then
	ok "fashion-missing-names-package (skipped: $FASHION is installed)"
	run --data fashion-mnist --model mlp:8 --train-size 256 --val-size 64 --steps 2
	if [ "$rc" -ne 0 ]; then
		fail fashion-small-run "status $rc: $(head -c 300 "$T/err")"
	elif ! python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["steps"] == 2' <"$T/out"; then
		fail fashion-small-run "bad JSON: $(cat "$T/out")"
	else
		ok fashion-small-run
	fi
else
	bad fashion-missing-names-package "$FASHION|dataset-fashion-mnist|apt-get install" \
		--data fashion-mnist --model mlp:8
	ok "fashion-small-run (skipped: $FASHION is not installed)"
fi

# ---- --help --------------------------------------------------------------------

"$TT_BIN" train --help >"$T/out" 2>"$T/err"
rc=$?
opts="--model --data --train-size --val-size --trainable --epochs --steps --batch
--optimizer --lr --momentum --nesterov --weight-decay --schedule --warmup
--label-smoothing --augment --test --seed --threads --backend --gates --evograd
--evograd-every --evograd-noise --evograd-opt --evograd-lr --rotate --label-noise
--clean-val --val-rotate --help"
# (--help prints every row of the options table, engine/trainopt.c; t_man.sh
# checks that the man page is that table's text)
missing=
for o in $opts; do
	grep -qE -- "^ +(-h, )?$o( |$)" "$T/out" || missing="$missing $o"
done
if [ "$rc" -ne 0 ]; then
	fail help-lists-options "exit status $rc"
elif [ -s "$T/err" ]; then
	fail help-lists-options "stderr not empty: $(head -c 200 "$T/err")"
elif [ -n "$missing" ]; then
	fail help-lists-options "missing from --help:$missing"
elif ! grep -q 'default: resnet:2,2,2:w16' "$T/out"; then
	fail help-lists-options "no default shown for --model"
else
	ok help-lists-options
fi

"$TT_BIN" --help >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 0 ] && grep -q 'tunetop train' "$T/out"; then ok top-help
else fail top-help "status $rc, stdout: $(head -c 200 "$T/out")"; fi
"$TT_BIN" >"$T/out" 2>"$T/err"
rc=$?
if [ "$rc" -eq 2 ] && [ ! -s "$T/out" ] && grep -q usage "$T/err"; then ok no-command
else fail no-command "status $rc, expected 2 with usage on stderr"; fi

# ---- a tiny synthetic run ------------------------------------------------------

# check_json NAME PYTHON-ASSERTIONS: stdout is exactly one line of JSON
# (loaded as r) and the assertions hold.
check_json() {
	name=$1
	lines=$(wc -l <"$T/out")
	if [ "$lines" -ne 1 ]; then
		fail "$name" "stdout has $lines lines, expected exactly 1 JSON line"
		return 1
	fi
	if ! msg=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
def need(obj, keys, where):
    miss = [k for k in keys if k not in obj]
    assert not miss, "missing %s in %s" % (miss, where)
need(r, ["model", "stages", "trainable", "epochs", "steps", "train_loss",
         "val_loss", "val_acc", "seconds", "samples_per_s", "diverged",
         "memory"], "the result")
m = r["memory"]
need(m, ["params", "grads", "optim", "activations", "workspace", "total",
         "peak", "per_stage"], "memory")
assert len(m["per_stage"]) == r["stages"], "per_stage has %d entries" % len(m["per_stage"])
for s in m["per_stage"]:
    need(s, ["name", "frozen", "params", "grads", "optim", "activations"], "a stage")
assert m["peak"] >= m["total"], "peak below total"
assert m["total"] == sum(m[k] for k in ("params", "grads", "optim", "activations", "workspace")), "kinds do not add up to total"
for k in ("params", "grads", "optim", "activations"):
    assert sum(s[k] for s in m["per_stage"]) <= m[k], "per-stage %s exceed the total" % k
'"$2"'
' "$T/out" 2>&1); then
		fail "$name" "$(echo "$msg" | tail -n 1) in $(head -c 300 "$T/out")"
		return 1
	fi
	return 0
}

run $SYN --steps 3 --model mlp:16
if [ "$rc" -ne 0 ]; then
	fail synthetic-run-json "status $rc: $(head -c 300 "$T/err")"
elif check_json synthetic-run-json '
assert r["model"] == "mlp:16" and r["stages"] == 2 and r["trainable"] == 2, "model/stages/trainable"
assert r["steps"] == 3 and r["diverged"] is False, "steps/diverged"
assert "test_acc" not in r, "test_acc without --test"
assert 0 <= r["val_acc"] <= 1 and r["val_loss"] > 0 and r["train_loss"] > 0, "losses"
assert all(not s["frozen"] and s["grads"] == s["params"] for s in r["memory"]["per_stage"]), "all trainable"
'; then
	ok synthetic-run-json
fi
cp "$T/out" "$T/run1"

run $SYN --steps 3 --model mlp:16 --test
if [ "$rc" -ne 0 ]; then
	fail synthetic-run-test-acc "status $rc"
elif check_json synthetic-run-test-acc '
assert "test_acc" in r and 0 <= r["test_acc"] <= 1, "test_acc"
'; then
	ok synthetic-run-test-acc
fi

# the same run twice: the same result, timings aside
run $SYN --steps 3 --model mlp:16
if [ "$rc" -ne 0 ]; then
	fail deterministic "second run: status $rc"
elif ! msg=$(python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for r in (a, b):
    del r["seconds"], r["samples_per_s"]
assert a["val_loss"] == b["val_loss"], "val_loss %r vs %r" % (a["val_loss"], b["val_loss"])
assert a == b, "results differ: %r vs %r" % (a, b)
' "$T/run1" "$T/out" 2>&1); then
	fail deterministic "$(echo "$msg" | tail -n 1)"
else
	ok deterministic
fi

# a different seed gives a different run (so the check above can fail)
run $SYN --steps 3 --model mlp:16 --seed 2
if [ "$rc" -eq 0 ] && python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(a["val_loss"] == b["val_loss"])
' "$T/run1" "$T/out"; then
	ok seed-matters
else
	fail seed-matters "status $rc, or seeds 1 and 2 gave the same val_loss"
fi

# --trainable 1: every stage but the head frozen, with no grads
run $SYN --steps 3 --model mlp:16,16,16 --trainable 1
if [ "$rc" -ne 0 ]; then
	fail trainable-1-per-stage "status $rc: $(head -c 300 "$T/err")"
elif check_json trainable-1-per-stage '
st = r["memory"]["per_stage"]
assert r["stages"] == 4 and r["trainable"] == 1, "stages %d trainable %d" % (r["stages"], r["trainable"])
assert [s["frozen"] for s in st] == [True, True, True, False], "frozen flags %r" % [s["frozen"] for s in st]
for s in st[:-1]:
    assert s["grads"] == 0 and s["optim"] == 0 and s["activations"] == 0, "frozen %s owns %r" % (s["name"], s)
    assert s["params"] > 0, "frozen %s has no params" % s["name"]
h = st[-1]
assert h["name"] == "head" and h["grads"] == h["params"] == 4 * (16 * 10 + 10), "head %r" % h
assert h["optim"] == h["grads"] and h["activations"] > 0, "head %r" % h
assert r["memory"]["grads"] == h["grads"], "grads total %d" % r["memory"]["grads"]
'; then
	ok trainable-1-per-stage
fi

# ---- divergence --------------------------------------------------------------------

run $SYN --model mlp:64 --steps 50 --lr 1000 --momentum 0.99 --weight-decay 0 \
	--schedule constant
if [ "$rc" -ne 1 ]; then
	fail diverged "exit status $rc, expected 1 (stderr: $(tail -n 2 "$T/err" | tr '\n' ' '))"
elif ! has diverged "loss became"; then
	fail diverged "$why"
elif check_json diverged '
assert r["diverged"] is True, "diverged %r" % r["diverged"]
assert r["steps"] < 50, "ran all %d steps" % r["steps"]
assert r["val_loss"] is None, "val_loss %r after divergence" % r["val_loss"]
'; then
	ok diverged
fi

# ---- the end ----------------------------------------------------------------------

if [ -n "$sanreports" ]; then
	fail no-sanitizer-reports "sanitizer output in:$sanreports"
else
	ok no-sanitizer-reports
fi

[ "$nfail" -eq 0 ]
