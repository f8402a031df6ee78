"""explorer_front.py — what the Masks pane's front must show, worked out from
the study database on its own, for tests/t_explorer_front.sh.

    python3 explorer_front.py expect DB
        the heading ("front F/N: #a #b ..."), then the front's ids in order
    python3 explorer_front.py step DB SEL DIR
        the trial Up (DIR 1) or Down (DIR -1) selects from trial SEL
    python3 explorer_front.py layout SCREEN COLS ROWS
        exit 0 when the screen is the explorer laid out for COLS x ROWS (its
        Masks heading where tui/ui.c puts it): a resize has been drawn
    python3 explorer_front.py plot DB SCREEN COLS MODE
        check a captured screen (COLS wide; MODE utf or ascii): every mark
        in its cell with its glyph, no other mark, the axis labels and the
        selected trial's caption; prints what is wrong, one line each, and
        nothing when all is right

A trial's point is its validation accuracy at its highest rung with a
result, against the FLOPs kept stored with that result (rungs.macs_kept);
a result without FLOPs kept leaves the trial out.  The front is found by
brute force (no other point as accurate with at most as many FLOPs, better
in one), independent of the explorer's sweep.  Values go through float32
because the explorer keeps them as floats.
"""
import math
import sqlite3
import struct
import sys


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def load(db):
    con = sqlite3.connect(db)
    best = {}
    for t, r, acc, kept in con.execute(
            "SELECT trial_id, rung, val_acc, macs_kept FROM rungs "
            "WHERE val_acc IS NOT NULL ORDER BY trial_id, rung"):
        best[t] = (r, kept, acc)
    pts = {t: (f32(k), f32(a)) for t, (r, k, a) in best.items() if k is not None}
    front = [t for t, (x, y) in pts.items()
             if not any(x2 <= x and y2 >= y and (x2 < x or y2 > y)
                        for x2, y2 in pts.values())]
    front.sort(key=lambda t: (pts[t][0], -pts[t][1], t))
    return best, pts, front


def heading(pts, front):
    return "front %d/%d:" % (len(front), len(pts)) + "".join(" #%d" % t for t in front)


def step(pts, front, sel, d):
    if sel in front:
        k = front.index(sel) + d
        return front[k] if 0 <= k < len(front) else sel
    if sel in pts:
        xs = pts[sel][0]
        return min(front, key=lambda t: (abs(pts[t][0] - xs), front.index(t)))
    return front[0] if d > 0 else front[-1]


def lround(v):
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def pad(y0, y1):
    # ui_pane.c's pad_range
    if y1 - y0 < 1e-9 * (abs(y0) + abs(y1)) or y1 - y0 < 1e-300:
        d = abs(y0) * 0.05 if abs(y0) > 1e-300 else 0.5
        return y0 - d, y1 + d
    p = 0.05 * (y1 - y0)
    return y0 - p, y1 + p


def plot(db, screen, cols, mode):
    best, pts, front = load(db)
    lines = [l.rstrip("\n") for l in open(screen, encoding="utf-8")]
    x0, w = cols * 2 // 5 + 1, cols // 4       # tui/ui.c's layout()
    pane = [l[x0:x0 + w].ljust(w) for l in lines]
    glyph = {"utf": "•◆◉", "ascii": "o*@"}[mode]
    corner, bar = ("└", "│") if mode == "utf" else ("+", "|")
    sx, sy = (2, 4) if mode == "utf" else (1, 2)
    why = []
    axis = [i for i, l in enumerate(pane) if corner in l]
    if not axis:
        return ["no x axis ('%s') in the Masks pane" % corner]
    ay = axis[0]
    ax = pane[ay].index(corner)
    ch = 0
    while ay - ch - 1 >= 0 and pane[ay - ch - 1][ax] == bar:
        ch += 1
    cw = w - ax - 1
    if ch < 2 or cw < 8:
        return ["plot of %dx%d cells" % (cw, ch)]
    if not pane[ay][ax + 1:].startswith("0%") or not pane[ay].rstrip().endswith("100%"):
        why.append("x axis labels: '%s'" % pane[ay])
    # the caption starts where the front does (its label column), right of
    # the masks when they are beside it
    cap = pane[ay + 1][ax - 5:] if ay + 1 < len(pane) else ""
    if not cap.startswith(glyph[2] + "#"):
        return why + ["no caption '%s#ID' under the axis: '%s'" % (glyph[2], cap)]
    sel = int(cap[2:].split()[0].rstrip(":"))
    if sel in pts:
        want = "%s#%d acc %.4f FLOPs %.1f%%" % (glyph[2], sel, pts[sel][1], 100.0 * pts[sel][0])
    elif sel in best:
        want = "%s#%d: no FLOPs kept at r%d" % (glyph[2], sel, best[sel][0])
    else:
        want = "%s#%d: no result yet" % (glyph[2], sel)
    if cap.rstrip() != want[:len(cap)].rstrip():
        why.append("caption '%s', expected '%s'" % (cap.rstrip(), want))
    # where each mark must be
    ys = [y for _, y in pts.values()]
    y0, y1 = pad(min(ys), max(ys))
    if y0 < 0 and y1 > 0:
        y0 = 0.0
    if y1 > 1 and y0 < 1:
        y1 = 1.0
    W, H = cw * sx - 1, ch * sy - 1
    expect = {}
    dots = {}
    for t, (x, y) in pts.items():
        X = lround(min(max(x, 0.0), 1.0) * W)
        Y = lround((1 - (y - y0) / (y1 - y0)) * H)
        dots[t] = (X, Y)
        cell = (Y // sy, X // sx)
        m = 2 if t == sel else 1 if t in front else 0
        expect[cell] = max(expect.get(cell, -1), m)
    got = {}
    for r in range(ch):
        row = pane[ay - ch + r]
        for c in range(cw):
            g = row[ax + 1 + c]
            if g in glyph:
                got[(r, c)] = glyph.index(g)
    for cell, m in sorted(expect.items()):
        if got.get(cell) != m:
            why.append("cell %s: '%s', expected '%s'" % (
                cell, glyph[got[cell]] if cell in got else " ", glyph[m]))
    for cell in sorted(set(got) - set(expect)):
        why.append("cell %s: a mark '%s' where no trial is" % (cell, glyph[got[cell]]))
    # accuracy labels: top, middle (five rows or more), bottom
    for r in [0, ch - 1] + ([ch // 2] if ch >= 5 else []):
        val = y1 - (y1 - y0) * (r / (ch - 1))
        lab = pane[ay - ch + r][ax - 5:ax]
        if lab != "%5.3f" % val:
            why.append("row %d label '%s', expected '%5.3f'" % (r, lab, val))
    # the staircase joining the front: across at each point's height to the
    # next one's FLOPs, then up to it; a cell on it that no mark covers
    # holds a dot glyph
    line = "".join(chr(c) for c in range(0x2801, 0x2900)) if mode == "utf" else "'.:"
    stair = set()
    for a, b in zip(front, front[1:]):
        (xa, ya), (xb, yb) = dots[a], dots[b]
        stair |= {(ya // sy, c) for c in range(xa // sx, xb // sx + 1)}
        stair |= {(r, xb // sx) for r in range(min(ya, yb) // sy, max(ya, yb) // sy + 1)}
    for r, c in sorted(stair - set(expect)):
        g = pane[ay - ch + r][ax + 1 + c]
        if g not in line:
            why.append("cell %s on the front's staircase: '%s'" % ((r, c), g))
    return why


def main(a):
    if a[0] == "expect":
        _, pts, front = load(a[1])
        print(heading(pts, front))
        print(" ".join(map(str, front)))
    elif a[0] == "step":
        _, pts, front = load(a[1])
        print(step(pts, front, int(a[2]), int(a[3])))
    elif a[0] == "layout":
        lines = open(a[1], encoding="utf-8").read().split("\n")
        x = int(a[2]) * 2 // 5 + 1
        ok = len(lines) >= int(a[3]) and any(
            l[x - 1:x + 7] in ("\u2502 Masks ", "| Masks ") for l in lines)
        sys.exit(0 if ok else 1)
    elif a[0] == "plot":
        for line in plot(a[1], a[2], int(a[3]), a[4]):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
