#!/usr/bin/env python3
"""hostile_check.py — the properties every way out of tunetop must keep,
whatever its study database holds (tests/t_hostile.sh uses it).

    hostile_check.py term FILE [ALLOW]   terminal text: valid UTF-8, no C0
                                         control but those named in ALLOW
                                         ("n" newline, "t" tab), no DEL,
                                         no C1 control (U+0080..U+009F)
    hostile_check.py json FILE           one JSON document (and term n)
    hostile_check.py csv FILE            RFC 4180 CSV whose every row has
                                         the header's field count (and
                                         term nt)
    hostile_check.py screen FILE         a tmux capture-pane -e: as term n,
                                         but the ESC sequences tmux itself
                                         writes for colours (ESC [ ... m)
                                         are allowed, nothing else

Prints nothing and exits 0 when the file keeps the property; else prints
why (the first offending offset and bytes) and exits 1.
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


def main():
    mode, path = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    why = None
    if mode == "term":
        why = bad_term(data, sys.argv[3] if len(sys.argv) > 3 else "")
    elif mode == "screen":
        # tmux writes SGR sequences for attributes; anything else is the
        # program's text reaching the pane
        why = bad_term(re.sub(rb"\x1b\[[0-9;:]*m", b"", data), "n")
    elif mode == "json":
        why = bad_term(data, "n")
        if not why:
            try:
                json.loads(data.decode("utf-8"))
            except ValueError as e:
                why = "not JSON: %s" % e
    elif mode == "csv":
        why = bad_term(data, "nt")
        if not why:
            rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
            if not rows:
                why = "no header"
            else:
                for k, r in enumerate(rows):
                    if len(r) != len(rows[0]):
                        why = "row %d has %d fields, the header %d: %r" % (k, len(r), len(rows[0]), r)
                        break
    else:
        why = "unknown mode " + mode
    if why:
        print(why)
        sys.exit(1)


main()
