#!/usr/bin/python3
"""gen_ref.py — write the PyTorch reference fixtures that tests/test_ref.c
compares the engine against, tensor by tensor.

Run from anywhere with Debian's python3 (it has torch):

    /usr/bin/python3 tests/ref/gen_ref.py [--check]

It writes tests/ref/<case>.bin next to this script.  Everything is seeded
and single-threaded, in float32, so the files are reproducible.  --check
also recomputes every case in float64 and prints how far float32 is from
it, against the tolerances test_ref.c uses (a feel for the headroom).

File format (all integers u32 little-endian, floats IEEE float32 LE):

    magic    the 7 bytes "TTREF1\\n"
    records  until end of file, each:
             u32 name_len, name bytes (ASCII, no NUL),
             u32 type      0 = float32 tensor, 1 = text (bytes),
             u32 ndims, u32 dims[ndims],
             payload       prod(dims) float32 values (type 0) or
                           prod(dims) bytes (type 1, ndims = 1)
             A scalar is a float32 tensor with ndims = 0 (one value).

Records in each file (P = nparams, T = trainable count, S = nstate):

    spec            text   the model spec, e.g. "resnet:1,1:w4"
    h w c classes   f32    input shape and classes (28, 28, 1, 10)
    batch           f32    N
    trainable       f32    z as given to the engine (0 = all stages)
    stages          f32    number of stages
    stage_params    f32    (stages,) parameter count of each stage
    param_layout    text   one line per parameter tensor in flat order:
                           "<stage> <name> <numel>"
    state_layout    text   the same for the state buffer
    params          f32    (P,) initial parameters, engine order/layout
    state0          f32    (S,) BN running mean/var before (S may be 0)
    x               f32    (N, 28, 28, 1) NHWC input
    labels          f32    (N,) class indices as floats
    logits          f32    (N, classes) train-mode forward
    loss            f32    mean cross-entropy
    loss_smooth     f32    mean cross-entropy with label smoothing 0.1
    correct         f32    rows whose argmax is the label
    grads           f32    (T,) d loss / d params[P-T ..), trainable only
    state1          f32    (S,) running statistics after that forward
    sgd_hparams     f32    (lr, momentum, weight_decay)
    adamw_hparams   f32    (lr, beta1, beta2, eps, weight_decay)
    sgd_losses      f32    (5,) loss before each of 5 SGD steps
    sgd_params      f32    (T,) trainable params after the 5 steps
    nesterov_losses f32    (5,) the same with nesterov=True
    nesterov_params f32    (T,)
    adamw_losses    f32    (5,) the same with AdamW
    adamw_params    f32    (T,)

Frozen parameters are excluded from the optimizers (they have no
gradient), so after any number of steps the first P-T values must still
equal params bit for bit; only the trainable suffix is stored.  Every
optimizer run starts again from params and state0, all on the same batch
in train mode (so frozen BNs keep updating their running statistics).
"""

import argparse
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ttmodels as tm  # noqa: E402

N = 8
CLASSES = 10
HW = 28
CH = 1
STEPS = 5
SMOOTHING = 0.1
SGD = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
ADAMW = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)

# (spec, z); z = 0 means every stage trains.
CASES = [
    ("mlp:32,16", 0),
    ("mlp:32,16", 1),
    ("mlp:32,16", 2),
    ("cnn:4,8", 0),
    ("cnn:4,8", 2),
    ("resnet:1,1:w4", 0),
    ("resnet:1,1:w4", 2),
]

# The tolerances of tests/test_ref.c, for the --check report only.
TOL = {"logits": (1e-4, 1e-3), "grads": (1e-4, 1e-3),
       "state1": (1e-4, 1e-3), "params": (1e-4, 1e-3),
       "losses": (1e-6, 1e-3)}


def case_name(spec, z):
    base = spec.replace(":", "-").replace(",", "-")
    return "%s_z%s" % (base, "all" if z <= 0 else str(z))


def case_seed(spec, z):
    # A stable seed per case (Python's hash() is salted per process).
    s = 0
    for ch in "%s/%d" % (spec, z):
        s = (s * 131 + ord(ch)) % 2147483647
    return s


def make_inputs(spec, z):
    """Model init, perturbed BN, state and batch, all from the case seed."""
    torch.manual_seed(case_seed(spec, z))
    model = tm.build_model(spec, classes=CLASSES, in_ch=CH, hw=HW)
    with torch.no_grad():
        # gamma/beta away from 1/0 so their gradients matter; running
        # statistics away from 0/1 so the momentum blend is visible.
        for _, bn in tm._bns(model):
            bn.weight.copy_(1 + 0.2 * torch.randn_like(bn.weight))
            bn.bias.copy_(0.2 * torch.randn_like(bn.bias))
            bn.running_mean.copy_(0.1 * torch.randn_like(bn.running_mean))
            bn.running_var.copy_(0.5 + torch.rand_like(bn.running_var))
    params = tm.flat_vector(model).clone()
    state0 = tm.state_vector(model).clone()
    x = torch.randn(N, HW, HW, CH)
    labels = torch.randint(0, CLASSES, (N,))
    return model, params, state0, x, labels


def fresh(model, params, state0, z, dtype):
    model.to(dtype)
    tm.load_flat(model, params.to(dtype))
    tm.load_state(model, state0.to(dtype))
    tm.freeze_prefix(model, z)
    for p in model.parameters():
        p.grad = None
    model.train()


def forward_backward(model, params, state0, x, labels, z, dtype):
    fresh(model, params, state0, z, dtype)
    xin = tm.nchw_from_nhwc(x.to(dtype))
    logits = model(xin)                       # the one train forward
    loss = F.cross_entropy(logits, labels)
    loss_smooth = F.cross_entropy(logits, labels, label_smoothing=SMOOTHING)
    correct = (logits.argmax(dim=1) == labels).sum()
    loss.backward()
    return dict(logits=logits.detach(), loss=loss.detach(),
                loss_smooth=loss_smooth.detach(),
                correct=correct.to(dtype),
                grads=tm.flat_grads(model, trainable_only=True),
                state1=tm.state_vector(model).clone())


def run_optim(model, params, state0, x, labels, z, dtype, kind):
    fresh(model, params, state0, z, dtype)
    trainable = tm.trainable_parameters(model)
    if kind == "sgd":
        opt = torch.optim.SGD(trainable, **SGD)
    elif kind == "nesterov":
        opt = torch.optim.SGD(trainable, nesterov=True, **SGD)
    else:
        opt = torch.optim.AdamW(trainable, **ADAMW)
    xin = tm.nchw_from_nhwc(x.to(dtype))
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xin), labels)
        losses.append(loss.item())
        loss.backward()
        opt.step()
    off = tm.trainable_offset(model)
    after = tm.flat_vector(model)
    if not torch.equal(after[:off], params[:off].to(dtype)):
        raise AssertionError("frozen prefix changed in %s" % kind)
    return torch.tensor(losses, dtype=dtype), after[off:].clone()


def compute(spec, z, dtype):
    model, params, state0, x, labels = make_inputs(spec, z)
    out = forward_backward(model, params, state0, x, labels, z, dtype)
    for kind in ("sgd", "nesterov", "adamw"):
        losses, after = run_optim(model, params, state0, x, labels, z,
                                  dtype, kind)
        out[kind + "_losses"] = losses
        out[kind + "_params"] = after
    out.update(model=model, params=params, state0=state0, x=x,
               labels=labels)
    return out


class Writer:
    def __init__(self):
        self.chunks = [b"TTREF1\n"]

    def _head(self, name, typ, dims):
        nb = name.encode("ascii")
        self.chunks.append(struct.pack("<I", len(nb)) + nb)
        self.chunks.append(struct.pack("<II", typ, len(dims)))
        self.chunks.append(struct.pack("<%dI" % len(dims), *dims))

    def tensor(self, name, t):
        t = torch.as_tensor(t, dtype=torch.float32).detach().contiguous()
        self._head(name, 0, list(t.shape))
        data = t.reshape(-1).tolist()
        self.chunks.append(struct.pack("<%df" % len(data), *data))

    def text(self, name, s):
        b = s.encode("ascii")
        self._head(name, 1, [len(b)])
        self.chunks.append(b)

    def save(self, path):
        with open(path, "wb") as f:
            f.write(b"".join(self.chunks))


def write_case(spec, z, r):
    model = r["model"]
    tm.freeze_prefix(model, z)
    w = Writer()
    w.text("spec", spec)
    for name, v in (("h", HW), ("w", HW), ("c", CH), ("classes", CLASSES),
                    ("batch", N), ("trainable", z),
                    ("stages", len(model.stages))):
        w.tensor(name, torch.tensor(float(v)))
    w.tensor("stage_params",
             torch.tensor(tm.stage_param_counts(model), dtype=torch.float32))
    w.text("param_layout", "".join(
        "%d %s %d\n" % (si, name, p.numel())
        for si, name, p, _ in tm.param_tensors(model)))
    w.text("state_layout", "".join(
        "%d %s.%s %d\n" % (si, lname, stat, mod.num_features)
        for si, lname, mod in tm._layers(model)
        if isinstance(mod, torch.nn.BatchNorm2d)
        for stat in ("running_mean", "running_var")))
    w.tensor("params", r["params"])
    w.tensor("state0", r["state0"])
    w.tensor("x", r["x"])
    w.tensor("labels", r["labels"].float())
    for k in ("logits", "loss", "loss_smooth", "correct", "grads", "state1"):
        w.tensor(k, r[k])
    w.tensor("sgd_hparams", torch.tensor(
        [SGD["lr"], SGD["momentum"], SGD["weight_decay"]]))
    w.tensor("adamw_hparams", torch.tensor(
        [ADAMW["lr"], ADAMW["betas"][0], ADAMW["betas"][1], ADAMW["eps"],
         ADAMW["weight_decay"]]))
    for kind in ("sgd", "nesterov", "adamw"):
        w.tensor(kind + "_losses", r[kind + "_losses"])
        w.tensor(kind + "_params", r[kind + "_params"])
    path = os.path.join(HERE, case_name(spec, z) + ".bin")
    w.save(path)
    return path


def headroom(spec, z, r32):
    """Print max |f32 - f64| / tolerance per output (1.0 = at the limit)."""
    r64 = compute(spec, z, torch.float64)
    worst = []
    keys = [("logits", "logits"), ("grads", "grads"), ("state1", "state1"),
            ("loss", "losses"), ("loss_smooth", "losses")]
    for kind in ("sgd", "nesterov", "adamw"):
        keys += [(kind + "_losses", "losses"), (kind + "_params", "params")]
    for key, tol in keys:
        a = r32[key].double().reshape(-1)
        b = r64[key].reshape(-1)
        if a.numel() == 0:
            continue
        atol, rtol = TOL[tol]
        ratio = ((a - b).abs() / (atol + rtol * b.abs())).max().item()
        worst.append("%s %.3f" % (key, ratio))
    print("  f32 vs f64, error/tolerance: " + ", ".join(worst))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare float32 with float64 and report headroom")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    total = 0
    for spec, z in CASES:
        r = compute(spec, z, torch.float32)
        path = write_case(spec, z, r)
        size = os.path.getsize(path)
        total += size
        print("%-28s params %6d trainable %6d state %4d loss %.6f  %d bytes"
              % (os.path.basename(path), r["params"].numel(),
                 r["grads"].numel(), r["state0"].numel(), r["loss"].item(),
                 size))
        if args.check:
            headroom(spec, z, r)
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
