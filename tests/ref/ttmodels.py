"""ttmodels — PyTorch mirrors of tunetop's models (see engine/model.h).

A model is built from the same spec string the engine parses:

    mlp:W1,W2,...         stage i = Linear(prev, Wi) + ReLU on the flattened
                          input; head = Linear(prev, classes), no ReLU
    cnn:C1,C2,...         stem = conv3x3(pad 1, no bias) + BN + ReLU to C1;
                          then for EACH width Ci (C1 included) a block
                          conv3x3(pad 1, no bias) + BN + ReLU + maxpool(2, 2);
                          head = global average pool + Linear
    resnet:B1,B2,..[:wW]  stem = conv3x3(pad 1, no bias) + BN + ReLU to W
                          (default 16); group i has Bi basic blocks of width
                          W*2^(i-1), the first block of every group after
                          the first with stride 2; head = GAP + Linear

A basic block is conv3x3(stride s, pad 1) -> BN -> ReLU -> conv3x3(pad 1)
-> BN, plus a shortcut that is the identity, or, when the stride is not 1
or the width changes, a 1x1 conv(stride s) + BN; out = ReLU(branch +
shortcut).  No convolution has a bias.  BN uses PyTorch's defaults
(eps 1e-5, momentum 0.1), which are the engine's.

Stages, the unit of freezing, are model.stages (an nn.ModuleList): for mlp
one per hidden dense layer then the head; for cnn the stem, one per block,
the head; for resnet the stem, each basic block, the head.

Layouts.  Modules take NCHW input as usual in PyTorch; nchw_from_nhwc()
converts the engine's NHWC tensors.  The mlp flattens its input in NHWC
order (h, w, c), as the engine does, so dense weights line up for any
channel count.  flat_params() lists the parameters in exactly the engine's
flat order and layout: stage after stage; dense W (out, in) then b (out);
conv W as (K, kh, kw, C), i.e. weight.permute(0, 2, 3, 1); BN gamma then
beta; a basic block's conv1, bn1, conv2, bn2, then projection conv and BN.
The BN running statistics (the engine's state buffer) are mean then var per
BN, in the same order.

Importing this module has no side effects (no seeding, no threads set).
"""

import torch
from torch import nn
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.1

__all__ = [
    "parse_spec", "build_model", "nchw_from_nhwc", "param_tensors",
    "flat_params", "flat_vector", "flat_grads", "load_flat", "bn_state",
    "state_vector", "load_state", "freeze_prefix", "stage_param_counts",
    "nparams", "trainable_offset", "trainable_parameters", "TTModel",
]


def parse_spec(spec):
    """Split a spec into (kind, widths, base_width).

    kind is "mlp", "cnn" or "resnet"; widths the list of integers after the
    first colon (widths, or blocks per group for resnet); base_width the
    resnet stem width (16 unless ":wW" is given), None otherwise.  Raises
    ValueError on a malformed spec.
    """
    parts = spec.split(":")
    kind = parts[0]
    if kind not in ("mlp", "cnn", "resnet") or len(parts) < 2:
        raise ValueError("bad model spec %r: expected mlp:W1,W2,.. "
                         "cnn:C1,C2,.. or resnet:B1,B2,..[:wW]" % spec)
    try:
        widths = [int(t) for t in parts[1].split(",")]
    except ValueError:
        raise ValueError("bad model spec %r: widths must be integers" % spec)
    if not widths or any(w <= 0 for w in widths):
        raise ValueError("bad model spec %r: widths must be positive" % spec)
    base = None
    if kind == "resnet":
        base = 16
        if len(parts) == 3:
            if not parts[2].startswith("w"):
                raise ValueError("bad model spec %r: expected :wW" % spec)
            base = int(parts[2][1:])
            if base <= 0:
                raise ValueError("bad model spec %r: W must be positive"
                                 % spec)
        elif len(parts) > 3:
            raise ValueError("bad model spec %r: too many fields" % spec)
    elif len(parts) != 2:
        raise ValueError("bad model spec %r: too many fields" % spec)
    return kind, widths, base


def nchw_from_nhwc(x):
    """An engine tensor (N, H, W, C) as PyTorch's (N, C, H, W)."""
    return x.permute(0, 3, 1, 2).contiguous()


def _conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class DenseStage(nn.Module):
    """Linear (+ ReLU); the first stage of an mlp flattens NHWC-wise."""

    def __init__(self, fin, fout, relu, flatten):
        super().__init__()
        self.fc = nn.Linear(fin, fout)
        self.relu = relu
        self.flatten = flatten
        self.layer_order = ["fc"]

    def forward(self, x):
        if self.flatten and x.dim() == 4:
            x = x.permute(0, 2, 3, 1).flatten(1)   # (h, w, c) order
        x = self.fc(x)
        return F.relu(x) if self.relu else x


class ConvStage(nn.Module):
    """conv3x3 (pad 1, no bias) + BN + ReLU (+ maxpool 2x2 stride 2)."""

    def __init__(self, cin, cout, pool):
        super().__init__()
        self.conv = _conv3x3(cin, cout)
        self.bn = _bn(cout)
        self.pool = pool
        self.layer_order = ["conv", "bn"]

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        return F.max_pool2d(x, 2, 2) if self.pool else x


class BasicBlock(nn.Module):
    """The ResNet basic block; the projection exists iff the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = _bn(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = _bn(cout)
        self.layer_order = ["conv1", "bn1", "conv2", "bn2"]
        if stride != 1 or cin != cout:
            self.proj = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.proj_bn = _bn(cout)
            self.layer_order += ["proj", "proj_bn"]
        else:
            self.proj = None
            self.proj_bn = None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.proj is None else self.proj_bn(self.proj(x))
        return F.relu(y + s)


class HeadStage(nn.Module):
    """Global average pool + Linear."""

    def __init__(self, cin, classes):
        super().__init__()
        self.fc = nn.Linear(cin, classes)
        self.layer_order = ["fc"]

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


class TTModel(nn.Module):
    """Stages applied in order; input NCHW, output logits (N, classes)."""

    def __init__(self, spec, stages, names, classes, in_ch, hw):
        super().__init__()
        self.spec = spec
        self.stages = nn.ModuleList(stages)
        self.stage_names = list(names)
        self.classes = classes
        self.in_ch = in_ch
        self.hw = hw

    def forward(self, x):
        for s in self.stages:
            x = s(x)
        return x


def build_model(spec, classes=10, in_ch=1, hw=28):
    """The PyTorch mirror of the engine's model for spec.

    Parameters get PyTorch's default initialisation (the engine's own
    differs; load_flat() makes them equal).  hw is the input's height and
    width (square inputs).  The returned TTModel has .stages in stage
    order, .stage_names, .spec, .classes, .in_ch, .hw.
    """
    kind, widths, base = parse_spec(spec)
    stages, names = [], []
    if kind == "mlp":
        prev = in_ch * hw * hw
        for i, w in enumerate(widths):
            stages.append(DenseStage(prev, w, relu=True, flatten=(i == 0)))
            names.append("dense%d" % (i + 1))
            prev = w
        stages.append(DenseStage(prev, classes, relu=False,
                                 flatten=not widths))
        names.append("head")
    elif kind == "cnn":
        stages.append(ConvStage(in_ch, widths[0], pool=False))
        names.append("stem")
        prev = widths[0]
        for i, w in enumerate(widths):
            stages.append(ConvStage(prev, w, pool=True))
            names.append("block%d" % (i + 1))
            prev = w
        stages.append(HeadStage(prev, classes))
        names.append("head")
    else:
        stages.append(ConvStage(in_ch, base, pool=False))
        names.append("stem")
        prev = base
        for g, nblocks in enumerate(widths):
            w = base << g
            for b in range(nblocks):
                stride = 2 if (g > 0 and b == 0) else 1
                stages.append(BasicBlock(prev, w, stride))
                names.append("g%db%d" % (g + 1, b + 1))
                prev = w
        stages.append(HeadStage(prev, classes))
        names.append("head")
    return TTModel(spec, stages, names, classes, in_ch, hw)


def _layers(model):
    """(stage index, qualified name, module) in the engine's flat order."""
    for si, st in enumerate(model.stages):
        sname = model.stage_names[si]
        for lname in st.layer_order:
            yield si, "%s.%s" % (sname, lname), getattr(st, lname)


def param_tensors(model):
    """(stage index, name, parameter, is_conv) in the engine's flat order.

    The parameters are the modules' own (PyTorch layout); is_conv says the
    engine stores it permuted to (K, kh, kw, C).
    """
    out = []
    for si, lname, mod in _layers(model):
        if isinstance(mod, nn.Conv2d):
            out.append((si, lname + ".weight", mod.weight, True))
        elif isinstance(mod, nn.Linear):
            out.append((si, lname + ".weight", mod.weight, False))
            out.append((si, lname + ".bias", mod.bias, False))
        elif isinstance(mod, nn.BatchNorm2d):
            out.append((si, lname + ".gamma", mod.weight, False))
            out.append((si, lname + ".beta", mod.bias, False))
        else:
            raise TypeError("unexpected layer %r" % (mod,))
    return out


def _engine_layout(t, is_conv):
    return t.permute(0, 2, 3, 1) if is_conv else t


def flat_params(model):
    """(name, tensor) in the engine's flat order and layout.

    Each tensor is a detached view of the parameter (conv weights permuted
    to (K, kh, kw, C), dense W (out, in)); flatten and concatenate them to
    get the engine's parameter vector (flat_vector() does).
    """
    return [(name, _engine_layout(p.detach(), conv))
            for _, name, p, conv in param_tensors(model)]


def flat_vector(model):
    """The engine's parameter vector (1-D, contiguous copy)."""
    return torch.cat([t.reshape(-1) for _, t in flat_params(model)])


def flat_grads(model, trainable_only=True):
    """Concatenated .grad in engine layout; a missing grad counts as zero.

    With trainable_only, only parameters with requires_grad (the trainable
    suffix after freeze_prefix) are included, as in the engine's gradient
    buffer.
    """
    parts = []
    for _, _, p, conv in param_tensors(model):
        if trainable_only and not p.requires_grad:
            continue
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        parts.append(_engine_layout(g.detach(), conv).reshape(-1))
    if not parts:
        return torch.zeros(0)
    return torch.cat(parts)


def load_flat(model, vec):
    """Copy an engine parameter vector into the model (inverse of
    flat_params/flat_vector).  vec is a 1-D tensor, array or sequence of
    length nparams(model), or a list of (name, tensor) as flat_params()
    returns."""
    if isinstance(vec, (list, tuple)) and vec and isinstance(vec[0], tuple):
        vec = torch.cat([torch.as_tensor(t).reshape(-1) for _, t in vec])
    vec = torch.as_tensor(vec).reshape(-1)
    total = nparams(model)
    if vec.numel() != total:
        raise ValueError("load_flat: %d values for %d parameters"
                         % (vec.numel(), total))
    off = 0
    with torch.no_grad():
        for _, _, p, conv in param_tensors(model):
            n = p.numel()
            chunk = vec[off:off + n]
            if conv:
                k, c, kh, kw = p.shape
                chunk = chunk.reshape(k, kh, kw, c).permute(0, 3, 1, 2)
            p.copy_(chunk.reshape(p.shape).to(p.dtype))
            off += n


def _bns(model):
    return [(lname, mod) for _, lname, mod in _layers(model)
            if isinstance(mod, nn.BatchNorm2d)]


def bn_state(model):
    """(name, tensor) of the BN running statistics in the engine's state
    order: for each BN in parameter order, running mean then running var.
    The tensors are the live buffers (detached)."""
    out = []
    for lname, bn in _bns(model):
        out.append((lname + ".running_mean", bn.running_mean.detach()))
        out.append((lname + ".running_var", bn.running_var.detach()))
    return out


def state_vector(model):
    """The engine's state vector (1-D copy; empty for an mlp)."""
    st = bn_state(model)
    if not st:
        return torch.zeros(0)
    return torch.cat([t.reshape(-1) for _, t in st])


def load_state(model, vec):
    """Copy an engine state vector into the BN running statistics."""
    vec = torch.as_tensor(vec).reshape(-1)
    off = 0
    with torch.no_grad():
        for _, bn in _bns(model):
            for buf in (bn.running_mean, bn.running_var):
                n = buf.numel()
                buf.copy_(vec[off:off + n].to(buf.dtype))
                off += n
    if off != vec.numel():
        raise ValueError("load_state: %d values for %d statistics"
                         % (vec.numel(), off))


def freeze_prefix(model, z):
    """Train only the last z stages (z <= 0 or z >= stages: all).

    Frozen parameters get requires_grad=False.  The modules stay in
    whatever mode the model is in: a frozen BN in train mode still uses
    batch statistics and updates its running averages, as in the engine.
    Returns the effective z.
    """
    n = len(model.stages)
    if z <= 0 or z > n:
        z = n
    for i, st in enumerate(model.stages):
        for p in st.parameters():
            p.requires_grad_(i >= n - z)
    return z


def stage_param_counts(model):
    """Number of parameters of each stage, in stage order."""
    return [sum(p.numel() for p in st.parameters()) for st in model.stages]


def nparams(model):
    """Total parameter count (the engine's nparams)."""
    return sum(stage_param_counts(model))


def trainable_offset(model):
    """Index of the first trainable parameter in the flat vector."""
    off = 0
    for _, _, p, _ in param_tensors(model):
        if p.requires_grad:
            return off
        off += p.numel()
    return off


def trainable_parameters(model):
    """The trainable parameters (requires_grad), in flat order: what an
    optimizer should be given."""
    return [p for _, _, p, _ in param_tensors(model) if p.requires_grad]
