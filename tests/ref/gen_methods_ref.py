#!/usr/bin/python3
"""gen_methods_ref.py - PyTorch references for the methods' numerical cores.

Writes tests/ref/methods_ref.txt, read by tests/test_methods_ref.c: the
outputs and gradients of independent PyTorch implementations (autograd,
float64) of what these engine modules compute, on inputs both sides build
from the same closed-form formulas (no random generator is shared):

  rotate    engine/transform.c  bilinear rotation and d out / d degrees
  mwn       engine/mwn.c        Meta-Weight-Net weighted loss, its weights
                                and the gradient in its parameters
  gmn       engine/gmn.c        graph metanetwork output and parameter grads
  hypernet  engine/hypernet.c   generated weights and the gradient back
  gp        engine/gp.c         GP negative log likelihood, its gradients,
                                posterior mean and sd

Line format: NAME INDEX VALUE (repr of a double).  Deterministic: a rerun
rewrites the file byte for byte.

  /usr/bin/python3 tests/ref/gen_methods_ref.py
"""
import math
import os
import sys

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "methods_ref.txt")
lines = []


def emit(name, t):
    for i, v in enumerate(t.detach().reshape(-1).tolist()):
        lines.append("%s %d %r" % (name, i, float(v)))


# ---- rotate ---------------------------------------------------------------
def rotate_ref():
    N, H, W, C, deg = 1, 7, 5, 2, 23.0
    n = N * H * W * C
    x = torch.tensor([math.sin(0.7 * i) + 0.3 * math.cos(0.13 * i) for i in range(n)])
    x = x.reshape(N, H, W, C)
    d = torch.tensor(deg, requires_grad=True)
    a = d * math.pi / 180
    cy, cx = (H - 1) / 2, (W - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                            torch.arange(W, dtype=torch.float64), indexing="ij")
    dx, dy = xs - cx, ys - cy
    u = cx + torch.cos(a) * dx - torch.sin(a) * dy
    v = cy + torch.sin(a) * dx + torch.cos(a) * dy
    x0, y0 = torch.floor(u).detach(), torch.floor(v).detach()
    fx, fy = u - x0, v - y0

    def pix(yy, xx):
        inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
        yc = yy.clamp(0, H - 1).long()
        xc = xx.clamp(0, W - 1).long()
        val = x[0][yc, xc]  # (H, W, C)
        return torch.where(inside[..., None], val, torch.zeros_like(val))

    p00, p01 = pix(y0, x0), pix(y0, x0 + 1)
    p10, p11 = pix(y0 + 1, x0), pix(y0 + 1, x0 + 1)
    top = p00 + fx[..., None] * (p01 - p00)
    bot = p10 + fx[..., None] * (p11 - p10)
    out = top + fy[..., None] * (bot - top)
    r = torch.tensor([math.cos(1.9 * i) for i in range(n)]).reshape(out.shape)
    (out * r).sum().backward()
    emit("rotate_out", out)
    emit("rotate_dloss_ddeg", d.grad.reshape(1))


# ---- mwn ------------------------------------------------------------------
def mwn_ref():
    Hh, n = 10, 8
    phi = torch.tensor([0.5 * math.sin(1.1 * k + 0.3) for k in range(3 * Hh + 1)],
                       requires_grad=True)
    c = torch.tensor([0.2 + 0.37 * i for i in range(n)])
    W1, b1, W2, b2 = phi[:Hh], phi[Hh:2 * Hh], phi[2 * Hh:3 * Hh], phi[3 * Hh]
    h = torch.relu(c[:, None] * W1[None, :] + b1[None, :])
    v = torch.sigmoid(h @ W2 + b2)
    w = v / v.sum()
    L = (w * c).sum()
    L.backward()
    emit("mwn_loss", L.reshape(1))
    emit("mwn_weights", w)
    emit("mwn_grad", phi.grad)


# ---- gmn ------------------------------------------------------------------
GMN_W, GMN_B, GMN_OUT, GMN_NFN, GMN_NFE = 5, 2, 3, 3, 2
GMN_SRC = [0, 0, 1, 1, 2, 3, 3, 4, 5, 5]
GMN_DST = [2, 3, 2, 4, 4, 4, 5, 5, 2, 1]
GMN_NN = 6


def gmn_layers():
    w = GMN_W
    L = [(GMN_NFN, w), (GMN_NFE, w)]
    for _ in range(GMN_B):
        L += [(3 * w, w), (w, w), (2 * w, w), (w, w)]
    L += [(w, w), (w, w), (w, w), (w, GMN_OUT)]
    return L


def gmn_ref():
    L = gmn_layers()
    npar = sum(i * o + o for i, o in L)
    p = torch.tensor([0.3 * math.sin(0.77 * k + 0.1) for k in range(npar)],
                     requires_grad=True)
    mats, off = [], 0
    for i, o in L:
        Wt = p[off:off + i * o].reshape(o, i)
        off += i * o
        b = p[off:off + o]
        off += o
        mats.append((Wt, b))

    def lin(k, x):
        Wt, b = mats[k]
        return x @ Wt.T + b

    silu = torch.nn.functional.silu

    def ln(x):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=1e-5)

    xn = torch.tensor([[math.cos(v + 2 * f) for f in range(GMN_NFN)] for v in range(GMN_NN)])
    E = len(GMN_SRC)
    xe = torch.tensor([[math.sin(1.3 * e + f) for f in range(GMN_NFE)] for e in range(E)])
    src = torch.tensor(GMN_SRC)
    dst = torch.tensor(GMN_DST)
    indeg = torch.zeros(GMN_NN).index_add_(0, dst, torch.ones(E))
    x = lin(0, xn)
    e = lin(1, xe)
    for b in range(GMN_B):
        k = 2 + 4 * b
        lx, le = ln(x), ln(e)
        e = e + lin(k + 1, silu(lin(k, torch.cat([lx[src], lx[dst], le], 1))))
        msg = lin(k + 3, silu(lin(k + 2, torch.cat([lx[src], e], 1))))
        agg = torch.zeros_like(x).index_add_(0, dst, msg / indeg[dst][:, None])
        x = x + agg
    k = 2 + 4 * GMN_B
    r = lin(k + 1, silu(lin(k, x)))
    pooled = r.mean(0)
    out = lin(k + 3, silu(lin(k + 2, pooled)))
    rr = torch.tensor([0.5, -1.0, 0.25])
    (out * rr).sum().backward()
    emit("gmn_out", out)
    emit("gmn_grad", p.grad)


# ---- hypernet -------------------------------------------------------------
HN = dict(tasks=2, emb=3, hidden=4, u=3, ce=2)
HN_ITEMS = [("conv", 2, 4, 0, 0.0), ("dense", 3, 0, 8, 0.0), ("table", 2, 0, 11, 1.0)]
HN_SPAN = 13


def hn_nparams():
    c = HN
    n = c["tasks"] * c["emb"] + c["hidden"] * c["emb"] + c["hidden"] + c["u"] * c["hidden"] + c["u"]
    for kind, out, fan, _, _ in HN_ITEMS:
        if kind == "conv":
            n += out * c["ce"] + fan * (c["u"] + c["ce"]) + fan
        elif kind == "dense":
            n += out * c["u"] + out
        else:
            n += c["tasks"] * out
    return n


def hypernet_ref():
    c = HN
    npar = hn_nparams()
    psi = torch.tensor([0.4 * math.sin(0.91 * k + 0.2) for k in range(npar)],
                       requires_grad=True)
    task = 1
    off = 0

    def take(n):
        nonlocal off
        t = psi[off:off + n]
        off += n
        return t

    emb = take(c["tasks"] * c["emb"]).reshape(c["tasks"], c["emb"])
    W1 = take(c["hidden"] * c["emb"]).reshape(c["hidden"], c["emb"])
    b1 = take(c["hidden"])
    W2 = take(c["u"] * c["hidden"]).reshape(c["u"], c["hidden"])
    b2 = take(c["u"])
    u = torch.relu(W2 @ torch.relu(W1 @ emb[task] + b1) + b2)
    gen = [None] * HN_SPAN
    out = torch.zeros(HN_SPAN)
    pieces = []
    for kind, n, fan, dst, init in HN_ITEMS:
        if kind == "conv":
            ce = take(n * c["ce"]).reshape(n, c["ce"])
            Wh = take(fan * (c["u"] + c["ce"])).reshape(fan, c["u"] + c["ce"])
            bh = take(fan)
            rows = [Wh @ torch.cat([u, ce[o]]) + bh for o in range(n)]
            pieces.append((dst, torch.cat(rows)))
        elif kind == "dense":
            Wd = take(n * c["u"]).reshape(n, c["u"])
            bd = take(n)
            pieces.append((dst, Wd @ u + bd))
        else:
            tab = take(c["tasks"] * n).reshape(c["tasks"], n)
            pieces.append((dst, tab[task]))
    for dst, t in pieces:
        out = out.index_add(0, torch.arange(dst, dst + t.numel()), t)
    r = torch.tensor([math.cos(0.5 * k) for k in range(HN_SPAN)])
    (out * r).sum().backward()
    emit("hn_out", out)
    emit("hn_grad", psi.grad)


# ---- gp -------------------------------------------------------------------
def gp_ref():
    n, f = 4, 2
    phi = torch.tensor([[math.sin(1.7 * i + 0.9 * k) for k in range(f)] for i in range(n)],
                       requires_grad=True)
    y = torch.tensor([0.3 + 0.1 * math.cos(2.1 * i) for i in range(n)])
    h = torch.tensor([-0.4, 0.2, -1.1, 0.25], requires_grad=True)
    s2, l2, sn2, m = torch.exp(2 * h[0]), torch.exp(2 * h[1]), torch.exp(2 * h[2]), h[3]
    d2 = ((phi[:, None, :] - phi[None, :, :]) ** 2).sum(-1)
    K = s2 * torch.exp(-d2 / (2 * l2)) + sn2 * torch.eye(n)
    r = y - m
    Lc = torch.linalg.cholesky(K)
    alpha = torch.cholesky_solve(r[:, None], Lc)[:, 0]
    nll = 0.5 * r @ alpha + torch.log(torch.diagonal(Lc)).sum() + 0.5 * n * math.log(2 * math.pi)
    nll.backward()
    emit("gp_nll", nll.reshape(1))
    emit("gp_dh", h.grad)
    emit("gp_dphi", phi.grad)
    with torch.no_grad():
        q = torch.tensor([[0.1, -0.2], [1.5, 0.7]])
        kq = s2 * torch.exp(-((q[:, None, :] - phi[None, :, :]) ** 2).sum(-1) / (2 * l2))
        mu = m + kq @ alpha
        v = torch.cholesky_solve(kq.T, Lc)
        var = s2 - (kq * v.T).sum(1)
        emit("gp_mu", mu)
        emit("gp_sd", torch.sqrt(var))


def main():
    torch.set_num_threads(1)
    rotate_ref()
    mwn_ref()
    gmn_ref()
    hypernet_ref()
    gp_ref()
    with open(OUT, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("wrote %s (%d values)" % (OUT, len(lines)), file=sys.stderr)


if __name__ == "__main__":
    main()
