#!/usr/bin/env python3
"""fuzz_db.py DB SEED — write random bytes into every text column of every
table of a study database (tests/t_fuzz_out.sh uses it).

Every column whose declared type is TEXT, in every row, gets a value drawn
from random.Random(SEED): most often random bytes 1..255 (no NUL: SQLite
text stops there for the C API), mixed with the pieces that break things
(ESC sequences, C1 controls as UTF-8 and as raw bytes, invalid UTF-8,
quotes, commas, newlines, formula starts, JSON fragments), now and then long
(up to 3000 bytes, past db_trial.params).  Values are stored as TEXT
(CAST of a blob), as a hostile writer with sqlite3 would.  The same seed
writes the same bytes.
"""
import random
import sqlite3
import sys

PIECES = [
    b"\x1b]2;PWN\x07", b"\x1b[2J", b"\x1b[31m", b"\x1bP", b"\x1b\\", b"\x07",
    b"\xc2\x9b", b"\x9b", b"\xc2\x9d", b"\x9d", b"\xc3(", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xff", b"\x7f", b"\r", b"\n", b"\t",
    b'"', b"'", b",", b";", b"\\", b"=", b"+", b"-", b"@", b"{", b"}", b"[",
    b"]", b":", b'{"lr":0.1},"state":"killed"', b'\\u0000', b'\\ud800',
    b"\xe2\x80\xae", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"done", b"running",
]


def value(rng):
    kind = rng.random()
    if kind < 0.05:
        return b""
    # now and then past db_trial.params (1023 bytes); mostly short, so that
    # most databases also reach the printing code with every row
    n = rng.randint(900, 3000) if rng.random() < 0.08 else rng.randint(1, 60)
    out = bytearray()
    while len(out) < n:
        if rng.random() < 0.3:
            out += rng.choice(PIECES)
        else:
            out += bytes(rng.randint(1, 255) for _ in range(rng.randint(1, 8)))
    if kind < 0.25:
        # a JSON-looking text with hostile bytes inside its string
        return b'{"k":"' + bytes(out[:n]) + b'"}'
    return bytes(out[:n])


def main():
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name")]
    cols = 0
    for t in tables:
        text = [r[1] for r in db.execute('PRAGMA table_info("%s")' % t)
                if r[2].upper() == "TEXT"]
        rowids = [r[0] for r in db.execute('SELECT rowid FROM "%s" ORDER BY rowid' % t)]
        for c in text:
            cols += 1
            for rid in rowids:
                db.execute('UPDATE OR IGNORE "%s" SET "%s" = CAST(? AS TEXT) WHERE rowid = ?' % (t, c),
                           (value(rng), rid))
    db.commit()
    db.close()
    if cols == 0:
        print("no text column in", path)
        sys.exit(1)


main()
