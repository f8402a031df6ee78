#!/bin/sh
# t_man.sh — the man page and --help describe the same options.
# Every option that `tunetop train --help` lists must be in man/tunetop.1
# and every train option in the man page must be in --help.
BIN=${TT_BIN:-build/tunetop}
help=$("$BIN" train --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
man=$(sed -n '/^\.SH TRAIN OPTIONS/,/^\.SH EXIT/p' man/tunetop.1 |
      grep -o -- '\\-\\-[a-z][a-z-]*' | sed 's/\\-/-/g' | sort -u)
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
