#!/usr/bin/env python3
"""hostile_check.py — the properties every way out of tunetop must keep,
whatever its study database holds (tests/t_hostile.sh, tests/t_fuzz_out.sh).

    hostile_check.py MODE FILE [MODE FILE ...]

    term, term-n, term-nt   terminal text: valid UTF-8, no C0 control but
                            newline (n) and tab (t) where named, no DEL, no
                            C1 control (U+0080..U+009F)
    json                    one JSON document (and term-n)
    csv                     RFC 4180 CSV whose every row has the header's
                            field count (and term-nt)
    screen                  a tmux capture-pane -e: as term-n, but the SGR
                            sequences tmux itself writes for attributes
                            (ESC [ ... m) are allowed, nothing else

Prints "FILE: why" (the first offending offset and bytes) for each file
that breaks its property and exits 1 if any did; else prints nothing and
exits 0.  One process checks many files: Python starts slowly on a loaded
machine.
"""
import csv
import io
import json
import re
import sys


def bad_term(data, allow):
    try:
        text = data.decode("utf-8", "strict")
    except UnicodeDecodeError as e:
        return "invalid UTF-8 at byte %d: %r" % (e.start, data[max(0, e.start - 8):e.start + 8])
    ok = set()
    if "n" in allow:
        ok.add("\n")
    if "t" in allow:
        ok.add("\t")
    for i, ch in enumerate(text):
        c = ord(ch)
        if (c < 0x20 and ch not in ok) or c == 0x7F or 0x80 <= c <= 0x9F:
            return "control U+%04X at character %d: %r" % (c, i, text[max(0, i - 12):i + 12])
    return None


def check(mode, path):
    data = open(path, "rb").read()
    if mode in ("term", "term-n", "term-nt"):
        return bad_term(data, mode[5:])
    if mode == "screen":
        # tmux writes SGR sequences for attributes; anything else is the
        # program's text reaching the pane
        return bad_term(re.sub(rb"\x1b\[[0-9;:]*m", b"", data), "n")
    if mode == "json":
        why = bad_term(data, "n")
        if not why:
            try:
                json.loads(data.decode("utf-8"))
            except ValueError as e:
                why = "not JSON: %s" % e
        return why
    if mode == "csv":
        why = bad_term(data, "nt")
        if why:
            return why
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        if not rows:
            return "no header"
        for k, r in enumerate(rows):
            if len(r) != len(rows[0]):
                return "row %d has %d fields, the header %d: %r" % (k, len(r), len(rows[0]), r)
        return None
    return "unknown mode " + mode


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print("usage: hostile_check.py MODE FILE [MODE FILE ...]")
        sys.exit(2)
    bad = 0
    for k in range(0, len(args), 2):
        why = check(args[k], args[k + 1])
        if why:
            print("%s: %s" % (args[k + 1], why))
            bad = 1
    sys.exit(bad)


main()
