#!/bin/sh
# t_man.sh — the man pages say what the program does and name what ships.
#  1. man/tunetop.1's TRAIN OPTIONS block is the text the options table
#     generates (`tunetop help-options --man`, engine/trainopt.c);
#     TT_WRITE_MAN=1 rewrites the block from the table.
#  2. Every option that `tunetop train --help` lists is in the man page and
#     every train option in the man page is in --help.
#  3. The pages name no file of the source tree that `make install` does not
#     install (examples/, bench/, tests/, *.md), and every installed path they
#     name (PREFIX/share/tunetop/...) exists in the tree and is installed by
#     the Makefile.
BIN=${TT_BIN:-build/tunetop}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
PAGE=man/tunetop.1
BEGIN='.\" BEGIN TRAIN OPTIONS'
END='.\" END TRAIN OPTIONS'
export BEGIN END   # awk reads them from ENVIRON: no escape processing

# ---- 1. the generated block ------------------------------------------------
if ! "$BIN" help-options --man >"$T/gen" 2>"$T/err" || [ ! -s "$T/gen" ]; then
	echo "FAIL man-train-generated: help-options --man: $(head -c 200 "$T/err")"
elif ! grep -qF "$BEGIN" "$PAGE" || ! grep -qF "$END" "$PAGE"; then
	echo "FAIL man-train-generated: $PAGE has no BEGIN/END TRAIN OPTIONS markers"
else
	# the lines strictly between the markers, the comment lines after BEGIN
	# excepted
	awk 'index($0, ENVIRON["END"]) == 1 { on = 0 }
		on && !/^\.\\"/ { print }
		index($0, ENVIRON["BEGIN"]) == 1 { on = 1 }' "$PAGE" >"$T/page"
	if cmp -s "$T/gen" "$T/page"; then
		echo "ok man-train-generated"
	elif [ "${TT_WRITE_MAN:-0}" = 1 ]; then
		awk -v g="$T/gen" '
			index($0, ENVIRON["END"]) == 1 { while ((getline l < g) > 0) print l; skip = 0 }
			skip && !/^\.\\"/ { next }
			{ print }
			index($0, ENVIRON["BEGIN"]) == 1 { skip = 1 }' "$PAGE" >"$T/new" &&
			cat "$T/new" >"$PAGE"
		echo "ok man-train-generated (rewritten from the table)"
	else
		echo "FAIL man-train-generated: $PAGE's TRAIN OPTIONS differ from the table" \
			"(engine/trainopt.c); rerun with TT_WRITE_MAN=1:"
		diff "$T/page" "$T/gen" | head -20
	fi
fi

# ---- 2. --help and the page ------------------------------------------------
help=$("$BIN" train --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
man=$(sed -n '/^\.SH TRAIN OPTIONS/,/^\.SH EXIT/p' "$PAGE" | grep -v '^\.\\"' |
      grep -o -- '\\-\\-[a-z]\([a-z]\|\\-\)*' | sed 's/\\-/-/g' | sort -u)
missing=$(printf '%s\n' "$help" | while read -r o; do
	printf '%s\n' "$man" | grep -qx -- "$o" || echo "$o"; done)
extra=$(printf '%s\n' "$man" | while read -r o; do
	printf '%s\n' "$help" | grep -qx -- "$o" || echo "$o"; done)
if [ -z "$help" ]; then
	echo "FAIL man-help-options: --help listed no options"
elif [ -n "$missing" ]; then
	echo "FAIL man-help-options: in --help but not in the man page:" $missing
else
	echo "ok man-help-options"
fi
if [ -n "$extra" ]; then
	echo "FAIL man-no-stale-options: in the man page but not in --help:" $extra
else
	echo "ok man-no-stale-options"
fi

# ---- 3. files that ship ------------------------------------------------------
# The pages without roff comments, '\-' read as '-'.
for p in man/tunetop.1 man/tunetop-study.5; do
	grep -v '^\.\\"' "$p" | sed 's/\\-/-/g' | sed "s|^|$p: |"
done >"$T/text"
stale=$(grep -E '(^|[^/A-Za-z_.-])(examples|bench|tests|engine|tui|db|base)/|[A-Za-z_]+\.md([^A-Za-z]|$)' "$T/text")
if [ -n "$stale" ]; then
	echo "FAIL man-files-ship: the pages name files that are not installed:"
	printf '%s\n' "$stale" | head -10
else
	echo "ok man-files-ship"
fi
why=
for ref in $(grep -o 'PREFIX/share/tunetop/[A-Za-z0-9_./-]*' "$T/text" |
             sed 's|^PREFIX/share/tunetop/||; s|[.,;)]*$||' | sort -u); do
	[ -e "$ref" ] || why="$why $ref: not in the source tree;"
	dir=${ref%%/*}
	grep -q "share/tunetop/$dir/" Makefile || why="$why $ref: the Makefile does not install $dir/;"
done
if [ -z "$(grep -o 'PREFIX/share/tunetop/' "$T/text")" ]; then
	echo "FAIL man-installed-paths: the pages name no installed file (examples, themes)"
elif [ -n "$why" ]; then
	echo "FAIL man-installed-paths:$why"
else
	echo "ok man-installed-paths"
fi
