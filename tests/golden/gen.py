#!/usr/bin/python3
"""Generate the golden test data of netc from PyTorch.

Run with Debian's python (it has python3-torch and python3-torchvision):

    /usr/bin/python3 tests/golden/gen.py              # every case
    /usr/bin/python3 tests/golden/gen.py --only CASE  # one case (repeatable)
    /usr/bin/python3 tests/golden/gen.py --list       # case names

The output is committed; the tests only read it and never run this script.
Every case is seeded from its own name, so regenerating one case or all of
them gives the same bytes.

Layout of one case, tests/golden/<case>/:

    model.net               the netc program
    batch                   the N to compile it with (`netc build --batch N`)
    weights.safetensors     every parameter, float32, named as netc names it
                            (PyTorch state_dict keys; batchnorm running stats
                            included, num_batches_tracked left out)
    input_<name>.npy        one per `input` of the net: float32 [S, ...],
                            S samples (S need not be a multiple of N, so the
                            last batch may be partial)
    expected_<name>.npy     one per `output` of the net: float32 [S, ...],
                            computed by PyTorch in eval mode in float64 from
                            the same float32 weights and inputs, then rounded
    expected_params.txt     `name [d0, d1, ...]` per line, in state_dict
                            order: what netc should list for model.net

resnet18_names/ holds only expected_params.txt: torchvision's resnet18
state_dict, which examples/resnet18.net must reproduce name for name.

lenet5/model.net is examples/lenet5.net verbatim; resnet18_small/model.net
is examples/resnet18.net with only its numbers changed (widths, stem
channels, input size, classes), and the PyTorch side uses torchvision's
BasicBlock under a ResNet whose module names are torchvision's.
"""

import argparse
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "examples")


# ---------------------------------------------------------------- safetensors

def write_safetensors(path, tensors):
    """tensors: list of (name, float32 ndarray), written in that order."""
    header = {}
    offset = 0
    blobs = []
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype="<f4")
        blob = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """Parse a safetensors file by hand; returns {name: float32 ndarray}."""
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) >= 8, path
    (n,) = struct.unpack("<Q", data[:8])
    assert 8 + n <= len(data) and n % 8 == 0, path
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out = {}
    end_max = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (path, name)
        b, e = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert e - b == 4 * count and 0 <= b <= e <= len(body), (path, name)
        end_max = max(end_max, e)
        out[name] = np.frombuffer(body[b:e], dtype="<f4").reshape(info["shape"])
    assert end_max == len(body), path
    return out


# ------------------------------------------------------------------- helpers

def shape_str(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def param_list(module):
    """(name, tensor) of the state_dict without num_batches_tracked."""
    return [(k, v) for k, v in module.state_dict().items()
            if not k.endswith("num_batches_tracked")]


def expected_params_text(params):
    return "".join(f"{k} {shape_str(v.shape)}\n" for k, v in params)


class Params(nn.Module):
    """A module holding submodules under dotted names ("layer1.0.conv1")."""

    def __init__(self, mods):
        super().__init__()
        for path, mod in mods:
            parent = self
            parts = path.split(".")
            for p in parts[:-1]:
                if not hasattr(parent, p):
                    parent.add_module(p, nn.Module())
                parent = getattr(parent, p)
            parent.add_module(parts[-1], mod)

    def __getitem__(self, path):
        m = self
        for p in path.split("."):
            m = getattr(m, p)
        return m


def init_he(module):
    """torchvision's ResNet initialization of conv weights (ReLU nets)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def init_glorot_tanh(module):
    """Glorot uniform with the tanh gain on conv and linear weights."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))


def randomize_batchnorm(module, gen):
    """Make every batchnorm a non-identity affine map."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)         # [0.5, 1.5)
                m.bias.copy_(torch.rand(c, generator=gen) - 0.5)           # [-0.5, 0.5)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)  # [0.5, 2)


# --------------------------------------------------------------------- cases

class Case:
    """name: directory; net: program text; inputs: [(name, per-sample shape,
    scale, shift)] in declaration order; outputs: names in declaration order;
    build(): a module whose state_dict keys are netc's parameter names;
    forward(module, {input: tensor}) -> {output: tensor}; samples: S;
    batch: N; input_fn(generator, shape) replaces randn * scale + shift;
    init(module) replaces PyTorch's default initialization of the weights
    (deep cases: the default one makes the outputs nearly input-independent)."""

    def __init__(self, name, net, inputs, outputs, build, forward,
                 samples=2, batch=2, input_fn=None, init=None):
        self.name, self.net = name, net
        self.init = init
        self.inputs, self.outputs = inputs, outputs
        self.build, self.forward = build, forward
        self.samples, self.batch = samples, batch
        self.input_fn = input_fn


CASES = []


def case(*args, **kw):
    CASES.append(Case(*args, **kw))


def net1(name, body, inputs):
    """A net with the given inputs [(name, shape)] and body lines."""
    lines = [f"net {name} {{"]
    lines += [f"    input {n}: {shape_str(s)};" for n, s in inputs]
    lines += ["    " + l for l in body]
    lines.append("}")
    return "\n".join(lines) + "\n"


def single_op(name, in_shape, expr, mods, fn, samples=2, batch=2,
              scale=1.0, shift=0.0, comment=None):
    """One input x, one output y = expr; mods: [(path, module)];
    fn(params, x) -> y."""
    net = net1(name, [f"output y = {expr};"], [("x", in_shape)])
    if comment:
        net = f"# {comment}\n" + net
    case(name, net, [("x", in_shape, scale, shift)], ["y"],
         build=lambda: Params(mods()),
         forward=lambda m, i: {"y": fn(m, i["x"])},
         samples=samples, batch=batch)


# conv ------------------------------------------------------------------------

single_op("op_conv_basic", [3, 8, 8], "conv(x, 4, 3)",
          lambda: [("conv0", nn.Conv2d(3, 4, 3))],
          lambda m, x: m["conv0"](x))

single_op("op_conv_stride2_pad1", [3, 9, 11], "conv(x, 5, 3, stride = 2, pad = 1)",
          lambda: [("conv0", nn.Conv2d(3, 5, 3, stride=2, padding=1))],
          lambda m, x: m["conv0"](x), samples=3, batch=2)

single_op("op_conv_1x1_nobias", [6, 5, 5], "conv(x, 4, 1, bias = false)",
          lambda: [("conv0", nn.Conv2d(6, 4, 1, bias=False))],
          lambda m, x: m["conv0"](x))

single_op("op_conv_groups2", [4, 7, 7], "conv(x, 6, 3, pad = 1, groups = 2)",
          lambda: [("conv0", nn.Conv2d(4, 6, 3, padding=1, groups=2))],
          lambda m, x: m["conv0"](x), samples=2, batch=1)

single_op("op_conv_k5_pad2", [2, 10, 10], "conv(x, 3, 5, pad = 2)",
          lambda: [("conv0", nn.Conv2d(2, 3, 5, padding=2))],
          lambda m, x: m["conv0"](x), samples=3, batch=3)

single_op("op_conv_dilation2", [3, 11, 11], "conv(x, 4, 3, pad = 2, dilation = 2)",
          lambda: [("conv0", nn.Conv2d(3, 4, 3, padding=2, dilation=2))],
          lambda m, x: m["conv0"](x))

case("op_conv_positional",
     "# positional conv arguments: out, kernel, stride, pad, dilation, groups, bias\n"
     + net1("op_conv_positional",
            ["output a = conv(x, 4, 3, 2, 1);",
             "output b = conv(x, 4, 3, 1, 2, 2, 1, false);"],
            [("x", [3, 9, 9])]),
     [("x", [3, 9, 9], 1.0, 0.0)], ["a", "b"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 4, 3, stride=2, padding=1)),
                           ("conv1", nn.Conv2d(3, 4, 3, padding=2, dilation=2,
                                               bias=False))]),
     forward=lambda m, i: {"a": m["conv0"](i["x"]), "b": m["conv1"](i["x"])},
     samples=3, batch=2)

# linear ----------------------------------------------------------------------

single_op("op_linear", [12], "linear(x, 5)",
          lambda: [("linear0", nn.Linear(12, 5))],
          lambda m, x: m["linear0"](x), samples=3, batch=2)

single_op("op_linear_nobias", [12], "linear(x, 5, bias = false)",
          lambda: [("linear0", nn.Linear(12, 5, bias=False))],
          lambda m, x: m["linear0"](x))

# batchnorm -------------------------------------------------------------------

single_op("op_batchnorm", [4, 5, 5], "batchnorm(x)",
          lambda: [("batchnorm0", nn.BatchNorm2d(4))],
          lambda m, x: m["batchnorm0"](x),
          comment="a batchnorm that follows no conv: not folded")

single_op("op_batchnorm_eps", [3, 4, 4], "x |> relu |> batchnorm(eps = 0.001)",
          lambda: [("batchnorm0", nn.BatchNorm2d(3, eps=0.001))],
          lambda m, x: m["batchnorm0"](F.relu(x)), samples=3, batch=2)

single_op("op_conv_batchnorm", [3, 6, 6], "conv(x, 5, 3, pad = 1) |> batchnorm",
          lambda: [("conv0", nn.Conv2d(3, 5, 3, padding=1)),
                   ("batchnorm0", nn.BatchNorm2d(5))],
          lambda m, x: m["batchnorm0"](m["conv0"](x)),
          comment="conv with bias then batchnorm: foldable")

single_op("op_conv_batchnorm_relu_nobias", [3, 7, 7],
          "conv(x, 6, 3, bias = false) |> batchnorm |> relu",
          lambda: [("conv0", nn.Conv2d(3, 6, 3, bias=False)),
                   ("batchnorm0", nn.BatchNorm2d(6))],
          lambda m, x: F.relu(m["batchnorm0"](m["conv0"](x))),
          samples=3, batch=2)

single_op("op_linear_batchnorm", [10], "linear(x, 6) |> batchnorm",
          lambda: [("linear0", nn.Linear(10, 6)),
                   ("batchnorm0", nn.BatchNorm1d(6))],
          lambda m, x: m["batchnorm0"](m["linear0"](x)),
          comment="batchnorm on a flat [D] tensor after linear: foldable")

# activations -----------------------------------------------------------------

single_op("op_relu", [3, 4, 5], "relu(x)", lambda: [], lambda m, x: F.relu(x))
single_op("op_tanh", [3, 4, 5], "tanh(x)", lambda: [], lambda m, x: torch.tanh(x),
          scale=2.0, samples=3, batch=2)
single_op("op_sigmoid", [3, 4, 5], "sigmoid(x)", lambda: [],
          lambda m, x: torch.sigmoid(x), scale=3.0)

# pools -----------------------------------------------------------------------

single_op("op_maxpool2", [3, 8, 8], "maxpool(x, 2)", lambda: [],
          lambda m, x: F.max_pool2d(x, 2))

# all-negative input: padding must act as -inf, not 0
case("op_maxpool3_s2_p1",
     "# input all negative: the padding of maxpool never wins\n"
     + net1("op_maxpool3_s2_p1", ["output y = maxpool(x, 3, stride = 2, pad = 1);"],
            [("x", [3, 9, 9])]),
     [("x", [3, 9, 9], 1.0, 0.0)], ["y"],
     build=lambda: Params([]),
     forward=lambda m, i: {"y": F.max_pool2d(i["x"], 3, stride=2, padding=1)},
     samples=3, batch=2,
     input_fn=lambda g, shape: -torch.rand(shape, generator=g) * 2 - 0.1)

single_op("op_maxpool_odd", [2, 7, 9], "x |> maxpool(2)", lambda: [],
          lambda m, x: F.max_pool2d(x, 2))

single_op("op_avgpool2", [3, 8, 8], "avgpool(x, 2)", lambda: [],
          lambda m, x: F.avg_pool2d(x, 2))

single_op("op_avgpool3_s2_p1", [3, 9, 9], "avgpool(x, 3, stride = 2, pad = 1)",
          lambda: [],
          lambda m, x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=True),
          samples=3, batch=2, shift=1.0,
          comment="padding counts in the divisor (count_include_pad)")

single_op("op_avgpool_odd", [2, 7, 9], "avgpool(x, 2)", lambda: [],
          lambda m, x: F.avg_pool2d(x, 2))

single_op("op_global_avgpool", [4, 5, 7], "global_avgpool(x)", lambda: [],
          lambda m, x: F.adaptive_avg_pool2d(x, 1))

# flatten, softmax ------------------------------------------------------------

case("op_flatten_linear",
     net1("op_flatten_linear",
          ["output flat = flatten(x);", "output y = linear(flat, 4);"],
          [("x", [2, 3, 3])]),
     [("x", [2, 3, 3], 1.0, 0.0)], ["flat", "y"],
     build=lambda: Params([("linear0", nn.Linear(18, 4))]),
     forward=lambda m, i: {"flat": torch.flatten(i["x"], 1),
                           "y": m["linear0"](torch.flatten(i["x"], 1))},
     samples=3, batch=2)

single_op("op_softmax_chw", [5, 3, 4], "softmax(x)", lambda: [],
          lambda m, x: F.softmax(x, dim=1), scale=2.0,
          comment="softmax over channels of [C, H, W]")

single_op("op_softmax_flat", [10], "softmax(x)", lambda: [],
          lambda m, x: F.softmax(x, dim=1), scale=3.0, samples=3, batch=2)

# add, mul --------------------------------------------------------------------

case("op_add",
     "# `|>` binds loosest: a + b |> relu is relu(a + b)\n"
     + net1("op_add", ["output sum = a + b;", "output r = a + b |> relu;"],
            [("a", [3, 4, 4]), ("b", [3, 4, 4])]),
     [("a", [3, 4, 4], 1.0, 0.0), ("b", [3, 4, 4], 1.0, 0.0)], ["sum", "r"],
     build=lambda: Params([]),
     forward=lambda m, i: {"sum": i["a"] + i["b"], "r": F.relu(i["a"] + i["b"])})

case("op_add_broadcast",
     "# a [C, 1, 1] operand broadcasts per channel, on either side\n"
     + net1("op_add_broadcast",
            ["output y = x + global_avgpool(x);",
             "g = global_avgpool(x) |> relu;",
             "output z = g + x |> tanh;"],
            [("x", [4, 5, 5])]),
     [("x", [4, 5, 5], 1.0, 0.3)], ["y", "z"],
     build=lambda: Params([]),
     forward=lambda m, i: {
         "y": i["x"] + F.adaptive_avg_pool2d(i["x"], 1),
         "z": torch.tanh(F.relu(F.adaptive_avg_pool2d(i["x"], 1)) + i["x"])},
     samples=3, batch=2)

case("op_mul_gate",
     "# squeeze-excitation style gate; note x * g |> f is f(x * g)\n"
     + net1("op_mul_gate",
            ["g = global_avgpool(x) |> sigmoid;",
             "output gated = x * g;",
             "output gated_left = g * x;",
             "output pipe = x * global_avgpool(x) |> sigmoid;",
             "output sq = x * x;"],
            [("x", [4, 5, 5])]),
     [("x", [4, 5, 5], 1.0, 0.0)], ["gated", "gated_left", "pipe", "sq"],
     build=lambda: Params([]),
     forward=lambda m, i: {
         "gated": i["x"] * torch.sigmoid(F.adaptive_avg_pool2d(i["x"], 1)),
         "gated_left": torch.sigmoid(F.adaptive_avg_pool2d(i["x"], 1)) * i["x"],
         "pipe": torch.sigmoid(i["x"] * F.adaptive_avg_pool2d(i["x"], 1)),
         "sq": i["x"] * i["x"]})

# activations of issue 4 ----------------------------------------------------------

single_op("op_relu6", [3, 5, 7], "relu6(x)", lambda: [], lambda m, x: F.relu6(x),
          scale=5.0, samples=3, batch=2)
single_op("op_leaky_relu", [3, 4, 5], "leaky_relu(x)", lambda: [],
          lambda m, x: F.leaky_relu(x), comment="the default slope, 0.01")
single_op("op_leaky_relu_slope_flat", [11], "x |> leaky_relu(slope = 0.2)", lambda: [],
          lambda m, x: F.leaky_relu(x, 0.2), samples=3, batch=2)
single_op("op_elu", [3, 4, 5], "elu(x)", lambda: [], lambda m, x: F.elu(x), scale=2.0)
single_op("op_elu_alpha", [2, 3, 7], "elu(x, 0.5)", lambda: [],
          lambda m, x: F.elu(x, alpha=0.5), scale=2.0, samples=3, batch=3)

case("op_silu_swish",
     "# swish is another name of silu\n"
     + net1("op_silu_swish", ["output a = silu(x);", "output b = x |> swish;"],
            [("x", [3, 5, 5])]),
     [("x", [3, 5, 5], 3.0, 0.0)], ["a", "b"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.silu(i["x"]), "b": F.silu(i["x"])},
     samples=3, batch=2)

single_op("op_gelu", [3, 4, 6], "gelu(x)", lambda: [], lambda m, x: F.gelu(x),
          scale=3.0, comment="the exact (erf) form, PyTorch's default")
single_op("op_gelu_flat", [17], "gelu(x)", lambda: [], lambda m, x: F.gelu(x),
          scale=2.0, samples=3, batch=2)
single_op("op_hardsigmoid", [3, 5, 6], "hardsigmoid(x)", lambda: [],
          lambda m, x: F.hardsigmoid(x), scale=4.0)
single_op("op_hardswish", [3, 5, 6], "hardswish(x)", lambda: [],
          lambda m, x: F.hardswish(x), scale=4.0, samples=3, batch=2)
case("op_softplus",
     "# inputs uniform in [-30, 30): both sides of the threshold 20, and tiny outputs\n"
     + net1("op_softplus", ["output y = softplus(x);"], [("x", [3, 4, 5])]),
     [("x", [3, 4, 5], 1.0, 0.0)], ["y"],
     build=lambda: Params([]),
     forward=lambda m, i: {"y": F.softplus(i["x"])},
     samples=3, batch=2,
     input_fn=lambda g, shape: torch.rand(shape, generator=g) * 60 - 30)
single_op("op_log_softmax_chw", [5, 3, 4], "log_softmax(x)", lambda: [],
          lambda m, x: F.log_softmax(x, dim=1), scale=3.0,
          comment="log_softmax over channels of [C, H, W]")
single_op("op_log_softmax_flat", [10], "linear(x, 7) |> log_softmax",
          lambda: [("linear0", nn.Linear(10, 7))],
          lambda m, x: F.log_softmax(m["linear0"](x), dim=1), samples=3, batch=2)

case("op_dropout",
     "# dropout is the identity at inference\n"
     + net1("op_dropout", ["output a = dropout(x, 0.3) |> relu;",
                           "output b = conv(x, 4, 3) |> dropout;"],
            [("x", [3, 6, 6])]),
     [("x", [3, 6, 6], 1.0, 0.0)], ["a", "b"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 4, 3))]),
     forward=lambda m, i: {"a": F.relu(F.dropout(i["x"], 0.3, training=False)),
                           "b": F.dropout(m["conv0"](i["x"]), training=False)},
     samples=3, batch=2)

# tensor plumbing of issue 4 -------------------------------------------------------

case("op_concat2",
     net1("op_concat2", ["output y = concat(a, b);", "output z = a |> concat(b, a) |> relu;"],
          [("a", [3, 5, 5]), ("b", [2, 5, 5])]),
     [("a", [3, 5, 5], 1.0, 0.0), ("b", [2, 5, 5], 1.0, 0.0)], ["y", "z"],
     build=lambda: Params([]),
     forward=lambda m, i: {"y": torch.cat([i["a"], i["b"]], 1),
                           "z": F.relu(torch.cat([i["a"], i["b"], i["a"]], 1))},
     samples=3, batch=2)

case("op_concat_many",
     "# ten inputs: more than one node takes, so a chain of concats\n"
     + net1("op_concat_many",
            ["output y = concat(x, relu(x), tanh(x), sigmoid(x), x, relu6(x), silu(x),",
             "                  conv(x, 3, 3, pad = 1), elu(x), hardswish(x));",
             "output z = concat([x, conv(x, 1, 1)]);"],
            [("x", [2, 4, 3])]),
     [("x", [2, 4, 3], 2.0, 0.0)], ["y", "z"],
     build=lambda: Params([("conv0", nn.Conv2d(2, 3, 3, padding=1)),
                           ("conv1", nn.Conv2d(2, 1, 1))]),
     forward=lambda m, i: (lambda x: {
         "y": torch.cat([x, F.relu(x), torch.tanh(x), torch.sigmoid(x), x, F.relu6(x),
                         F.silu(x), m["conv0"](x), F.elu(x), F.hardswish(x)], 1),
         "z": torch.cat([x, m["conv1"](x)], 1)})(i["x"]))

case("op_concat_flat",
     "# concat of flat [D] tensors\n"
     + net1("op_concat_flat",
            ["output y = concat(linear(a, 3), b, linear(b, 2));"],
            [("a", [5]), ("b", [4])]),
     [("a", [5], 1.0, 0.0), ("b", [4], 1.0, 0.0)], ["y"],
     build=lambda: Params([("linear0", nn.Linear(5, 3)), ("linear1", nn.Linear(4, 2))]),
     forward=lambda m, i: {"y": torch.cat([m["linear0"](i["a"]), i["b"], m["linear1"](i["b"])], 1)},
     samples=3, batch=2)

case("op_slice",
     net1("op_slice", ["output a = slice(x, 1, 4);", "output b = x |> slice(0, 6);",
                       "output c = slice(x, start = 5, end = 6);",
                       "output d = flatten(x) |> slice(7, 20);"],
          [("x", [6, 3, 5])]),
     [("x", [6, 3, 5], 1.0, 0.0)], ["a", "b", "c", "d"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": i["x"][:, 1:4], "b": i["x"][:, 0:6], "c": i["x"][:, 5:6],
                           "d": torch.flatten(i["x"], 1)[:, 7:20]},
     samples=3, batch=2)


def channel_shuffle(x, g):
    n, c, h, w = x.shape
    return x.view(n, g, c // g, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


case("op_channel_shuffle",
     "# ShuffleNet's shuffle: x.view(N, g, C/g, H, W).transpose(1, 2)\n"
     + net1("op_channel_shuffle",
            ["output a = channel_shuffle(x, 2);", "output b = channel_shuffle(x, 3);",
             "output c = x |> channel_shuffle(groups = 6);"],
            [("x", [6, 3, 4])]),
     [("x", [6, 3, 4], 1.0, 0.0)], ["a", "b", "c"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": channel_shuffle(i["x"], 2), "b": channel_shuffle(i["x"], 3),
                           "c": F.channel_shuffle(i["x"], 6)},
     samples=3, batch=2)

case("op_reshape",
     net1("op_reshape",
          ["output a = reshape(x, [4, 12]);",
           "output b = flatten(x) |> reshape([3, 4, -1]) |> conv(2, 3, pad = 1);",
           "output c = reshape(x, [-1]);",
           "output d = reshape(x, [2, 2, 3, 4]);"],
          [("x", [3, 4, 4])]),
     [("x", [3, 4, 4], 1.0, 0.0)], ["a", "b", "c", "d"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 2, 3, padding=1))]),
     forward=lambda m, i: {"a": i["x"].reshape(-1, 4, 12),
                           "b": m["conv0"](torch.flatten(i["x"], 1).reshape(-1, 3, 4, 4)),
                           "c": i["x"].reshape(-1, 48),
                           "d": i["x"].reshape(-1, 2, 2, 3, 4)},
     samples=3, batch=2)

case("op_pad",
     "# zero padding: [top, bottom, left, right], [h, w] or one int\n"
     + net1("op_pad",
            ["output a = pad(x, [1, 2, 0, 3]);", "output b = x |> pad(1);",
             "output c = pad(x, [2, 0]) |> maxpool(2);"],
            [("x", [2, 5, 4])]),
     [("x", [2, 5, 4], 1.0, -1.0)], ["a", "b", "c"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.pad(i["x"], (0, 3, 1, 2)), "b": F.pad(i["x"], (1, 1, 1, 1)),
                           "c": F.max_pool2d(F.pad(i["x"], (0, 0, 2, 2)), 2)},
     samples=3, batch=2)

# pooling of issue 4 ----------------------------------------------------------------

case("op_maxpool_ceil",
     "# ceil mode; in c the last window would start in the right padding and is dropped\n"
     + net1("op_maxpool_ceil",
            ["output a = maxpool(x, 3, stride = 2, ceil = true);",
             "output b = maxpool(x, 2, ceil = true);",
             "output c = maxpool(x, 2, stride = 3, pad = 1, ceil = true);",
             "output d = maxpool(x, [3, 2], stride = [2, 3], pad = [1, 0], ceil = true);"],
            [("x", [3, 7, 8])]),
     [("x", [3, 7, 8], 1.0, 0.0)], ["a", "b", "c", "d"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.max_pool2d(i["x"], 3, 2, ceil_mode=True),
                           "b": F.max_pool2d(i["x"], 2, ceil_mode=True),
                           "c": F.max_pool2d(i["x"], 2, 3, 1, ceil_mode=True),
                           "d": F.max_pool2d(i["x"], (3, 2), (2, 3), (1, 0), ceil_mode=True)},
     samples=3, batch=2)

case("op_maxpool_ceil_5x5",
     net1("op_maxpool_ceil_5x5", ["output y = maxpool(x, 2, stride = 3, pad = 1, ceil = true);"],
          [("x", [2, 5, 5])]),
     [("x", [2, 5, 5], 1.0, 0.0)], ["y"],
     build=lambda: Params([]),
     forward=lambda m, i: {"y": F.max_pool2d(i["x"], 2, 3, 1, ceil_mode=True)})

case("op_avgpool_ceil",
     "# ceil mode with and without padding in the divisor\n"
     + net1("op_avgpool_ceil",
            ["output a = avgpool(x, 3, stride = 2, ceil = true);",
             "output b = avgpool(x, 3, stride = 2, pad = 1, ceil = true, count_pad = false);",
             "output c = avgpool(x, 2, stride = 3, pad = 1, ceil = true);",
             "output d = avgpool(x, [2, 3], stride = [3, 2], pad = [1, 1], ceil = true);"],
            [("x", [3, 7, 8])]),
     [("x", [3, 7, 8], 1.0, 1.0)], ["a", "b", "c", "d"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.avg_pool2d(i["x"], 3, 2, ceil_mode=True),
                           "b": F.avg_pool2d(i["x"], 3, 2, 1, ceil_mode=True, count_include_pad=False),
                           "c": F.avg_pool2d(i["x"], 2, 3, 1, ceil_mode=True),
                           "d": F.avg_pool2d(i["x"], (2, 3), (3, 2), (1, 1), ceil_mode=True)},
     samples=3, batch=2)

single_op("op_avgpool_nocountpad", [3, 9, 9], "avgpool(x, 3, stride = 2, pad = 1, count_pad = false)",
          lambda: [],
          lambda m, x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
          samples=3, batch=2, shift=1.0,
          comment="the padding does not count in the divisor")

case("op_global_maxpool",
     net1("op_global_maxpool", ["output y = global_maxpool(x);",
                                "output z = x |> global_maxpool |> flatten;"],
          [("x", [4, 5, 7])]),
     [("x", [4, 5, 7], 1.0, 0.0)], ["y", "z"],
     build=lambda: Params([]),
     forward=lambda m, i: {"y": F.adaptive_max_pool2d(i["x"], 1),
                           "z": torch.flatten(F.adaptive_max_pool2d(i["x"], 1), 1)},
     input_fn=lambda g, shape: -torch.rand(shape, generator=g) * 2 - 0.1,
     samples=3, batch=2)

case("op_adaptive_avgpool",
     "# PyTorch's windows [floor(i H / oh), ceil((i + 1) H / oh)), overlapping when\n"
     "# the output does not divide the input, repeating when it is larger\n"
     + net1("op_adaptive_avgpool",
            ["output a = adaptive_avgpool(x, [2, 3]);",
             "output b = adaptive_avgpool(x, 1);",
             "output c = x |> adaptive_avgpool([4, 4]);",
             "output d = adaptive_avgpool(x, size = [9, 11]);",
             "output e = adaptive_avgpool(x, [7, 9]);"],
            [("x", [3, 7, 9])]),
     [("x", [3, 7, 9], 1.0, 0.0)], ["a", "b", "c", "d", "e"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.adaptive_avg_pool2d(i["x"], (2, 3)),
                           "b": F.adaptive_avg_pool2d(i["x"], 1),
                           "c": F.adaptive_avg_pool2d(i["x"], 4),
                           "d": F.adaptive_avg_pool2d(i["x"], (9, 11)),
                           "e": F.adaptive_avg_pool2d(i["x"], (7, 9))},
     samples=3, batch=2)

single_op("op_adaptive_avgpool_6x6", [2, 13, 13], "adaptive_avgpool(x, 6)", lambda: [],
          lambda m, x: F.adaptive_avg_pool2d(x, 6), comment="AlexNet's 6x6 head on a 13x13 map")

# conv of issue 4: "same" and asymmetric pads, non-square, dwconv, deconv -------------


def same_pads(size, k, s, d=(1, 1)):
    """TensorFlow's "same": (before, after) per axis, the odd pixel after."""
    out = []
    for n, kk, ss, dd in zip(size, k, s, d):
        o = (n + ss - 1) // ss
        total = max((o - 1) * ss + dd * (kk - 1) + 1 - n, 0)
        out.append((total // 2, total - total // 2))
    return out


def conv_padded(conv, x, pads):
    """conv (padding 0) applied to x zero-padded by pads = [(top, bottom), (left, right)]."""
    (t, b), (l, r) = pads
    return conv(F.pad(x, (l, r, t, b)))


case("op_conv_same",
     '# pad = "same": output ceil(in / stride), the odd pixel of padding at the bottom and right\n'
     + net1("op_conv_same",
            ['output a = conv(x, 4, 3, pad = "same");',
             'output b = conv(x, 4, 3, stride = 2, pad = "same");',
             'output c = conv(x, 2, 4, pad = "same");',
             'output d = conv(x, 3, [2, 5], stride = [2, 3], dilation = [2, 1], pad = "same");',
             'output e = conv(x, 2, 3, pad = "valid");'],
            [("x", [3, 7, 8])]),
     [("x", [3, 7, 8], 1.0, 0.0)], ["a", "b", "c", "d", "e"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 4, 3)), ("conv1", nn.Conv2d(3, 4, 3, stride=2)),
                           ("conv2", nn.Conv2d(3, 2, 4)),
                           ("conv3", nn.Conv2d(3, 3, (2, 5), stride=(2, 3), dilation=(2, 1))),
                           ("conv4", nn.Conv2d(3, 2, 3))]),
     forward=lambda m, i: {
         "a": conv_padded(m["conv0"], i["x"], same_pads([7, 8], [3, 3], [1, 1])),
         "b": conv_padded(m["conv1"], i["x"], same_pads([7, 8], [3, 3], [2, 2])),
         "c": conv_padded(m["conv2"], i["x"], same_pads([7, 8], [4, 4], [1, 1])),
         "d": conv_padded(m["conv3"], i["x"], same_pads([7, 8], [2, 5], [2, 3], [2, 1])),
         "e": m["conv4"](i["x"])},
     samples=3, batch=2)

case("op_conv_asym_pad",
     "# pad = [top, bottom, left, right]\n"
     + net1("op_conv_asym_pad",
            ["output a = conv(x, 3, 3, pad = [1, 0, 2, 1]);",
             "output b = conv(x, 2, [2, 3], stride = 2, pad = [0, 1, 1, 0]);"],
            [("x", [2, 6, 7])]),
     [("x", [2, 6, 7], 1.0, 0.0)], ["a", "b"],
     build=lambda: Params([("conv0", nn.Conv2d(2, 3, 3)), ("conv1", nn.Conv2d(2, 2, (2, 3), stride=2))]),
     forward=lambda m, i: {"a": conv_padded(m["conv0"], i["x"], [(1, 0), (2, 1)]),
                           "b": conv_padded(m["conv1"], i["x"], [(0, 1), (1, 0)])},
     samples=3, batch=2)

case("op_conv_nonsquare",
     "# [kh, kw] kernels, [sh, sw] strides, [ph, pw] pads (Inception's 1x7 and 7x1)\n"
     + net1("op_conv_nonsquare",
            ["output a = conv(x, 4, [3, 5], stride = [2, 1], pad = [1, 2]);",
             "output b = conv(x, 3, [1, 7], pad = [0, 3]) |> conv(2, [7, 1], pad = [3, 0]);",
             "output c = conv(x, 2, [3, 2], stride = [1, 3], dilation = [1, 2], groups = 2);"],
            [("x", [4, 9, 10])]),
     [("x", [4, 9, 10], 1.0, 0.0)], ["a", "b", "c"],
     build=lambda: Params([("conv0", nn.Conv2d(4, 4, (3, 5), stride=(2, 1), padding=(1, 2))),
                           ("conv1", nn.Conv2d(4, 3, (1, 7), padding=(0, 3))),
                           ("conv2", nn.Conv2d(3, 2, (7, 1), padding=(3, 0))),
                           ("conv3", nn.Conv2d(4, 2, (3, 2), stride=(1, 3), dilation=(1, 2), groups=2))]),
     forward=lambda m, i: {"a": m["conv0"](i["x"]), "b": m["conv2"](m["conv1"](i["x"])),
                           "c": m["conv3"](i["x"])},
     samples=3, batch=2)

case("op_dwconv",
     "# depthwise: groups = channels, out = channels * multiplier\n"
     + net1("op_dwconv",
            ["output a = dwconv(x, 3, pad = 1);",
             'output b = dwconv(x, 3, stride = 2, pad = "same", multiplier = 2, bias = false);',
             "output c = x |> dwconv(5, dilation = 2, pad = 4) |> relu6;",
             "output d = dwconv(x, [1, 3], stride = [2, 1], pad = [0, 1]);"],
            [("x", [4, 7, 8])]),
     [("x", [4, 7, 8], 1.0, 0.0)], ["a", "b", "c", "d"],
     build=lambda: Params([("dwconv0", nn.Conv2d(4, 4, 3, padding=1, groups=4)),
                           ("dwconv1", nn.Conv2d(4, 8, 3, stride=2, groups=4, bias=False)),
                           ("dwconv2", nn.Conv2d(4, 4, 5, dilation=2, padding=4, groups=4)),
                           ("dwconv3", nn.Conv2d(4, 4, (1, 3), stride=(2, 1), padding=(0, 1), groups=4))]),
     forward=lambda m, i: {"a": m["dwconv0"](i["x"]),
                           "b": conv_padded(m["dwconv1"], i["x"], same_pads([7, 8], [3, 3], [2, 2])),
                           "c": F.relu6(m["dwconv2"](i["x"])),
                           "d": m["dwconv3"](i["x"])},
     samples=3, batch=2)

case("bottleneck_chains",
     "# the chains fuse_bottleneck fuses (batch 4 makes their expanded tensors large\n"
     "# enough): an inverted residual with its residual, a ResNet bottleneck (dense 3x3,\n"
     "# residual and relu) and a strided inverted residual; 53 rows run in bands of\n"
     "# unequal height; the first conv makes the values blocked\n"
     + net1("bottleneck_chains",
            ["s = conv(x, 16, 3, pad = 1) as \"s\";",
             "a = conv(s, 96, 1) as \"a1\" |> relu6;",
             "a = dwconv(a, 3, pad = 1) as \"a2\" |> relu6;",
             "a = s + conv(a, 16, 1) as \"a3\";",
             "c = conv(a, 64, 1) as \"c1\" |> relu;",
             "c = conv(c, 64, 3, pad = 1) as \"c2\" |> relu;",
             "c = relu(conv(c, 16, 1) as \"c3\" + a);",
             "b = conv(c, 96, 1) as \"b1\" |> relu6;",
             "b = dwconv(b, 3, stride = 2, pad = 1) as \"b2\" |> relu6;",
             "output y = conv(b, 24, 1) as \"b3\";"],
            [("x", [16, 53, 53])]),
     [("x", [16, 53, 53], 1.0, 0.0)], ["y"],
     build=lambda: Params([("s", nn.Conv2d(16, 16, 3, padding=1)), ("a1", nn.Conv2d(16, 96, 1)), ("a2", nn.Conv2d(96, 96, 3, padding=1, groups=96)),
                           ("a3", nn.Conv2d(96, 16, 1)),
                           ("c1", nn.Conv2d(16, 64, 1)), ("c2", nn.Conv2d(64, 64, 3, padding=1)),
                           ("c3", nn.Conv2d(64, 16, 1)),
                           ("b1", nn.Conv2d(16, 96, 1)), ("b2", nn.Conv2d(96, 96, 3, stride=2, padding=1, groups=96)),
                           ("b3", nn.Conv2d(96, 24, 1))]),
     forward=lambda m, i: bottleneck_chains_forward(m, i["x"]),
     samples=4, batch=4)


def bottleneck_chains_forward(m, x):
    x = m["s"](x)
    a = x + m["a3"](F.relu6(m["a2"](F.relu6(m["a1"](x)))))
    c = F.relu(m["c3"](F.relu(m["c2"](F.relu(m["c1"](a))))) + a)
    return {"y": m["b3"](F.relu6(m["b2"](F.relu6(m["b1"](c)))))}


case("op_deconv",
     "# transposed convolution (ConvTranspose2d), weight [in, out / groups, kh, kw]\n"
     + net1("op_deconv",
            ["output a = deconv(x, 3, 4, stride = 2, pad = 1);",
             "output b = deconv(x, 6, 3, stride = 2, pad = 1, output_pad = 1, groups = 2);",
             "output c = deconv(x, 2, [3, 2], stride = [1, 2], bias = false);",
             "output d = x |> deconv(2, 3, stride = 3, pad = [2, 1], output_pad = [0, 2], dilation = 2);",
             "output e = deconv(x, 4, 1);"],
            [("x", [4, 5, 6])]),
     [("x", [4, 5, 6], 1.0, 0.0)], ["a", "b", "c", "d", "e"],
     build=lambda: Params([("deconv0", nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)),
                           ("deconv1", nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)),
                           ("deconv2", nn.ConvTranspose2d(4, 2, (3, 2), stride=(1, 2), bias=False)),
                           ("deconv3", nn.ConvTranspose2d(4, 2, 3, stride=3, padding=(2, 1),
                                                          output_padding=(0, 2), dilation=2)),
                           ("deconv4", nn.ConvTranspose2d(4, 4, 1))]),
     forward=lambda m, i: {k: m[f"deconv{j}"](i["x"]) for j, k in enumerate("abcde")},
     samples=3, batch=2)

case("op_deconv_fcn",
     "# an FCN-style head: 1x1 class scores, then 2x upsampling by deconv\n"
     + net1("op_deconv_fcn",
            ["x = conv(image, 6, 3, stride = 2, pad = 1) |> relu;",
             "x = conv(x, 3, 1);",
             "output y = deconv(x, 3, 4, stride = 2, pad = 1, bias = false) + conv(image, 3, 1);"],
            [("image", [3, 8, 10])]),
     [("image", [3, 8, 10], 1.0, 0.0)], ["y"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 6, 3, stride=2, padding=1)), ("conv1", nn.Conv2d(6, 3, 1)),
                           ("deconv0", nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False)),
                           ("conv2", nn.Conv2d(3, 3, 1))]),
     forward=lambda m, i: {"y": m["deconv0"](m["conv1"](F.relu(m["conv0"](i["image"]))))
                                + m["conv2"](i["image"])},
     samples=2, batch=1)

# normalization of issue 4 ------------------------------------------------------------


def randomize_affine(module):
    """layernorm and instancenorm weights and biases away from 1 and 0."""
    gen = torch.Generator().manual_seed(7)
    for m in module.modules():
        if isinstance(m, (nn.LayerNorm, nn.InstanceNorm2d)) and m.weight is not None:
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


case("op_layernorm",
     "# over all of a sample; weight and bias shaped like the sample\n"
     + net1("op_layernorm",
            ["output a = layernorm(x);",
             "output b = x |> layernorm(eps = 0.001, affine = false);",
             "output c = flatten(x) |> linear(7) |> layernorm;"],
            [("x", [3, 4, 5])]),
     [("x", [3, 4, 5], 2.0, 1.0)], ["a", "b", "c"],
     build=lambda: Params([("layernorm0", nn.LayerNorm([3, 4, 5])),
                           ("linear0", nn.Linear(60, 7)), ("layernorm2", nn.LayerNorm(7))]),
     forward=lambda m, i: {"a": m["layernorm0"](i["x"]),
                           "b": F.layer_norm(i["x"], [3, 4, 5], eps=0.001),
                           "c": m["layernorm2"](m["linear0"](torch.flatten(i["x"], 1)))},
     samples=3, batch=2, init=randomize_affine)

case("op_instancenorm",
     "# per sample and channel over H x W; no running statistics\n"
     + net1("op_instancenorm",
            ["output a = instancenorm(x);",
             "output b = x |> instancenorm(eps = 0.01, affine = false);",
             "output c = conv(x, 3, 3) |> instancenorm |> relu;"],
            [("x", [4, 5, 6])]),
     [("x", [4, 5, 6], 2.0, -0.5)], ["a", "b", "c"],
     build=lambda: Params([("instancenorm0", nn.InstanceNorm2d(4, affine=True)),
                           ("conv0", nn.Conv2d(4, 3, 3)),
                           ("instancenorm2", nn.InstanceNorm2d(3, affine=True))]),
     forward=lambda m, i: {"a": m["instancenorm0"](i["x"]),
                           "b": F.instance_norm(i["x"], eps=0.01),
                           "c": F.relu(m["instancenorm2"](m["conv0"](i["x"])))},
     samples=3, batch=2, init=randomize_affine)

case("op_lrn",
     "# torch.nn.LocalResponseNorm: AlexNet's, an even size, a large alpha\n"
     + net1("op_lrn",
            ["output a = lrn(x, 5, 0.0001, 0.75, 2.0);",
             "output b = x |> lrn(4);",
             "output c = lrn(x, size = 3, alpha = 0.5, beta = 0.5, k = 1.5);",
             "output d = lrn(x, 9, alpha = 2.0);"],
            [("x", [7, 4, 5])]),
     [("x", [7, 4, 5], 3.0, 0.0)], ["a", "b", "c", "d"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.local_response_norm(i["x"], 5, 1e-4, 0.75, 2.0),
                           "b": F.local_response_norm(i["x"], 4),
                           "c": F.local_response_norm(i["x"], 3, 0.5, 0.5, 1.5),
                           "d": F.local_response_norm(i["x"], 9, alpha=2.0)},
     samples=3, batch=2)

case("op_batchnorm_flat",
     "# batchnorm on flat [D] tensors that follow no linear: not folded\n"
     + net1("op_batchnorm_flat",
            ["output a = batchnorm(x);",
             "output b = x |> relu |> batchnorm(eps = 0.01);"],
            [("x", [6])]),
     [("x", [6], 1.0, 0.0)], ["a", "b"],
     build=lambda: Params([("batchnorm0", nn.BatchNorm1d(6)), ("batchnorm1", nn.BatchNorm1d(6, eps=0.01))]),
     forward=lambda m, i: {"a": m["batchnorm0"](i["x"]), "b": m["batchnorm1"](F.relu(i["x"]))},
     samples=3, batch=2)

# resampling of issue 4 ---------------------------------------------------------------

case("op_upsample_nearest",
     "# F.interpolate, mode nearest: by a scale (coordinates by 1 / scale) or to a size\n"
     + net1("op_upsample_nearest",
            ["output a = upsample(x, 2);",
             "output b = x |> upsample([2, 3]);",
             "output c = upsample(x, size = [7, 9]);",
             "output d = upsample(x, 1.5);",
             "output e = upsample(x, size = [3, 2]);"],
            [("x", [3, 4, 5])]),
     [("x", [3, 4, 5], 1.0, 0.0)], ["a", "b", "c", "d", "e"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.interpolate(i["x"], scale_factor=2),
                           "b": F.interpolate(i["x"], scale_factor=(2, 3)),
                           "c": F.interpolate(i["x"], size=(7, 9)),
                           "d": F.interpolate(i["x"], scale_factor=1.5),
                           "e": F.interpolate(i["x"], size=(3, 2))},
     samples=3, batch=2)

case("op_upsample_bilinear",
     "# F.interpolate, mode bilinear, align_corners false\n"
     + net1("op_upsample_bilinear",
            ['output a = upsample(x, 2, mode = "bilinear");',
             'output b = upsample(x, size = [7, 9], mode = "bilinear");',
             'output c = upsample(x, size = [3, 2], mode = "bilinear");',
             'output d = upsample(x, [1.5, 2.5], "bilinear");',
             'output e = upsample(x, 4, "bilinear");'],
            [("x", [3, 4, 5])]),
     [("x", [3, 4, 5], 1.0, 0.0)], ["a", "b", "c", "d", "e"],
     build=lambda: Params([]),
     forward=lambda m, i: {"a": F.interpolate(i["x"], scale_factor=2, mode="bilinear"),
                           "b": F.interpolate(i["x"], size=(7, 9), mode="bilinear"),
                           "c": F.interpolate(i["x"], size=(3, 2), mode="bilinear"),
                           "d": F.interpolate(i["x"], scale_factor=(1.5, 2.5), mode="bilinear"),
                           "e": F.interpolate(i["x"], scale_factor=4, mode="bilinear")},
     samples=3, batch=2)

case("op_upsample_fcn",
     "# back to the input's resolution: size = [height(image), width(image)]\n"
     + net1("op_upsample_fcn",
            ["y = conv(image, 4, 3, stride = 2, pad = 1) |> relu |> conv(3, 1);",
             'output scores = upsample(y, size = [height(image), width(image)], mode = "bilinear");'],
            [("image", [3, 9, 11])]),
     [("image", [3, 9, 11], 1.0, 0.0)], ["scores"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 4, 3, stride=2, padding=1)), ("conv1", nn.Conv2d(4, 3, 1))]),
     forward=lambda m, i: {"scores": F.interpolate(m["conv1"](F.relu(m["conv0"](i["image"]))),
                                                   size=(9, 11), mode="bilinear")},
     samples=2, batch=2)


def unpool_ref(x, idx, like, k=2, s=None, p=0):
    return F.max_unpool2d(x, idx, k, s, p, output_size=like.shape[2:])


case("op_maxpool_idx_unpool",
     "# maxpool_idx gives [values, indices] (indices h * W + w per plane, as floats);\n"
     "# unpool puts values back at their indices in like's height and width\n"
     + net1("op_maxpool_idx_unpool",
            ["r = maxpool_idx(x, 2);",
             "output v = r[0];",
             "output i = r[1];",
             "output u = unpool(r[0], r[1], x);",
             "s = x |> maxpool_idx(3, stride = 2, pad = 1);",
             "output u2 = unpool(s[0] |> relu, s[1], like = x);",
             "t = maxpool_idx(x, [2, 3], stride = [2, 2], ceil = true);",
             "output i3 = t[1];",
             "output u3 = unpool(t[0], t[1], x);"],
            [("x", [3, 7, 9])]),
     [("x", [3, 7, 9], 1.0, 0.0)], ["v", "i", "u", "u2", "i3", "u3"],
     build=lambda: Params([]),
     forward=lambda m, i: (lambda x, r, s, t: {
         "v": r[0], "i": r[1].to(x.dtype), "u": unpool_ref(r[0], r[1], x),
         "u2": unpool_ref(F.relu(s[0]), s[1], x, 3, 2, 1),
         "i3": t[1].to(x.dtype), "u3": unpool_ref(t[0], t[1], x, (2, 3), (2, 2))})(
         i["x"], F.max_pool2d(i["x"], 2, return_indices=True),
         F.max_pool2d(i["x"], 3, 2, 1, return_indices=True),
         F.max_pool2d(i["x"], (2, 3), (2, 2), ceil_mode=True, return_indices=True)),
     samples=3, batch=2)

case("op_segnet_unpool",
     "# SegNet: encoder pools with indices, the decoder unpools with them\n"
     + net1("op_segnet_unpool",
            ["e = conv(image, 4, 3, pad = 1) |> relu;",
             "p = maxpool_idx(e, 2);",
             "d = conv(p[0], 4, 3, pad = 1) |> relu;",
             "output y = unpool(d, p[1], e) |> conv(2, 3, pad = 1);"],
            [("image", [3, 8, 6])]),
     [("image", [3, 8, 6], 1.0, 0.0)], ["y"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 4, 3, padding=1)), ("conv1", nn.Conv2d(4, 4, 3, padding=1)),
                           ("conv2", nn.Conv2d(4, 2, 3, padding=1))]),
     forward=lambda m, i: (lambda e: (lambda p: {
         "y": m["conv2"](unpool_ref(F.relu(m["conv1"](p[0])), p[1], e))})(
         F.max_pool2d(e, 2, return_indices=True)))(F.relu(m["conv0"](i["image"]))),
     samples=2, batch=2)

# detection of issue 4 ----------------------------------------------------------------


def yolo_decode_ref(x, anchors, classes, stride):
    """YOLOv3's decoding, rows in (anchor, y, x) order as ultralytics' view/permute."""
    n, _, h, w = x.shape
    a = len(anchors)
    p = x.view(n, a, 5 + classes, h, w).permute(0, 1, 3, 4, 2)
    gy, gx = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    xy = (torch.sigmoid(p[..., 0:2]) + torch.stack((gx, gy), -1)) * stride
    wh = torch.exp(p[..., 2:4]) * torch.tensor(anchors, dtype=x.dtype).view(1, a, 1, 1, 2)
    return torch.cat([xy, wh, torch.sigmoid(p[..., 4:])], -1).reshape(n, a * h * w, 5 + classes)


def nms_ref(boxes, iou, score, maxk):
    """score = objectness * best class score > score; torchvision's class-wise NMS."""
    out = torch.zeros(boxes.shape[0], maxk, 6, dtype=boxes.dtype)
    out[..., 5] = -1
    for i, b in enumerate(boxes):
        best, cls = b[:, 5:].max(1)
        s = b[:, 4] * best
        m = s > score
        xyxy = torch.cat([b[:, 0:2] - b[:, 2:4] / 2, b[:, 0:2] + b[:, 2:4] / 2], 1)[m]
        keep = torchvision.ops.batched_nms(xyxy, s[m], cls[m], iou)[:maxk]
        k = len(keep)
        out[i, :k, 0:4] = xyxy[keep]
        out[i, :k, 4] = s[m][keep]
        out[i, :k, 5] = cls[m][keep].to(boxes.dtype)
    return out


case("op_yolo_decode",
     "# grid cells and anchors to boxes (cx, cy, w, h), objectness and class scores\n"
     + net1("op_yolo_decode",
            ["output a = yolo_decode(x, [[10, 13], [16, 30]], 3, 8);",
             "output b = conv(x, 6, 1) |> yolo_decode(anchors = [[30.5, 61]], classes = 1, stride = 32);"],
            [("x", [16, 4, 5])]),
     [("x", [16, 4, 5], 1.0, 0.0)], ["a", "b"],
     build=lambda: Params([("conv0", nn.Conv2d(16, 6, 1))]),
     forward=lambda m, i: {"a": yolo_decode_ref(i["x"], [[10, 13], [16, 30]], 3, 8),
                           "b": yolo_decode_ref(m["conv0"](i["x"]), [[30.5, 61]], 1, 32)},
     samples=3, batch=2)

YOLO_TINY_NET = """\
# a single-stage detector's head: two scales, decoded, joined, suppressed
net op_yolo_nms {
    input image: [3, 32, 32];
    x = conv(image, 8, 3, stride = 2, pad = 1) |> leaky_relu(0.1);
    x = conv(x, 16, 3, stride = 2, pad = 1) |> leaky_relu(0.1);
    p8 = conv(x, 16, 3, stride = 2, pad = 1) |> leaky_relu(0.1);
    p16 = conv(p8, 16, 3, stride = 2, pad = 1) |> leaky_relu(0.1);
    small = yolo_decode(conv(p8, 2 * 7, 1), [[12, 16], [20, 24]], 2, 8);
    big = yolo_decode(conv(p16, 2 * 7, 1), [[30, 40], [48, 40]], 2, 16);
    boxes = concat(small, big);
    output boxes_out = boxes;
    output dets = nms(boxes, iou = 0.45, score = 0.25, max = 40);
    output top5 = nms(boxes, 0.3, 0.3, 5);
}
"""


def yolo_tiny_build():
    return Params([("conv0", nn.Conv2d(3, 8, 3, stride=2, padding=1)),
                   ("conv1", nn.Conv2d(8, 16, 3, stride=2, padding=1)),
                   ("conv2", nn.Conv2d(16, 16, 3, stride=2, padding=1)),
                   ("conv3", nn.Conv2d(16, 16, 3, stride=2, padding=1)),
                   ("conv4", nn.Conv2d(16, 14, 1)),
                   ("conv5", nn.Conv2d(16, 14, 1))])


def yolo_tiny_init(module):
    """Kaiming for the backbone, wider heads: scores spread over (0, 1)."""
    for name, mod in module.named_modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="leaky_relu", a=0.1)
            if name in ("conv4", "conv5"):
                with torch.no_grad():
                    mod.weight.mul_(1.5)


def yolo_tiny_forward(m, i):
    x = F.leaky_relu(m["conv0"](i["image"]), 0.1)
    x = F.leaky_relu(m["conv1"](x), 0.1)
    p8 = F.leaky_relu(m["conv2"](x), 0.1)
    p16 = F.leaky_relu(m["conv3"](p8), 0.1)
    small = yolo_decode_ref(m["conv4"](p8), [[12, 16], [20, 24]], 2, 8)
    big = yolo_decode_ref(m["conv5"](p16), [[30, 40], [48, 40]], 2, 16)
    boxes = torch.cat([small, big], 1)
    return {"boxes_out": boxes, "dets": nms_ref(boxes, 0.45, 0.25, 40), "top5": nms_ref(boxes, 0.3, 0.3, 5)}


case("op_yolo_nms", YOLO_TINY_NET,
     [("image", [3, 32, 32], 1.0, 0.0)], ["boxes_out", "dets", "top5"],
     build=yolo_tiny_build, forward=yolo_tiny_forward, samples=3, batch=2, init=yolo_tiny_init,
     input_fn=lambda g, shape: torch.rand(shape, generator=g) * 2)

# several inputs and outputs ----------------------------------------------------

case("multi_io",
     "# two inputs, two outputs; an output's name is a variable after it\n"
     + net1("multi_io",
            ["output feat = conv(a, 4, 3, pad = 1) |> relu;",
             "y = global_avgpool(feat) |> flatten;",
             'output score = linear(y, 8) as "head_a" + linear(b, 8) as "head_b";'],
            [("a", [3, 6, 6]), ("b", [8])]),
     [("a", [3, 6, 6], 1.0, 0.0), ("b", [8], 1.0, 0.0)], ["feat", "score"],
     build=lambda: Params([("conv0", nn.Conv2d(3, 4, 3, padding=1)),
                           ("head_a", nn.Linear(4, 8)),
                           ("head_b", nn.Linear(8, 8))]),
     forward=lambda m, i: (lambda feat: {
         "feat": feat,
         "score": m["head_a"](torch.flatten(F.adaptive_avg_pool2d(feat, 1), 1))
                  + m["head_b"](i["b"])})(F.relu(m["conv0"](i["a"]))),
     samples=3, batch=2)

# language: blocks, loops, if/else, interpolation, unnamed numbering -----------

LANG_BLOCKS_NET = """\
# blocks, for, if/else, interpolated names; named instances take no number:
# stem, unit0, unit1, stage0, stage1, conv0, conv1
block unit(x, c, act = true) {
    y = conv(x, c, 3, pad = 1);
    y = batchnorm(y);
    if act {
        y = relu(y);
    } else {
        y = tanh(y);
    }
    return y;
}

net lang_blocks {
    input image: [3, 8, 8];
    x = conv(image, 4, 1) as "stem";
    x = unit(x, 4);
    x = unit(x, 6, act = false);
    for i in 0..2 {
        x = unit(x, 4 + i * 2) as "stage{i}";
    }
    x = conv(x, 4, 3, pad = 1) |> relu;
    output y = conv(x, 3, 1);
}
"""


def lang_blocks_build():
    mods = [("stem", nn.Conv2d(3, 4, 1))]
    cin = 4
    for name, c in [("unit0", 4), ("unit1", 6), ("stage0", 4), ("stage1", 6)]:
        mods += [(name + ".conv0", nn.Conv2d(cin, c, 3, padding=1)),
                 (name + ".batchnorm0", nn.BatchNorm2d(c))]
        cin = c
    mods += [("conv0", nn.Conv2d(cin, 4, 3, padding=1)), ("conv1", nn.Conv2d(4, 3, 1))]
    return Params(mods)


def lang_blocks_forward(m, i):
    x = m["stem"](i["image"])
    for name, act in [("unit0", True), ("unit1", False), ("stage0", True), ("stage1", True)]:
        x = m[name + ".batchnorm0"](m[name + ".conv0"](x))
        x = F.relu(x) if act else torch.tanh(x)
    x = F.relu(m["conv0"](x))
    return {"y": m["conv1"](x)}


case("lang_blocks", LANG_BLOCKS_NET, [("image", [3, 8, 8], 1.0, 0.0)], ["y"],
     build=lang_blocks_build, forward=lang_blocks_forward, samples=3, batch=2,
     init=init_he)

# LeNet-5 -----------------------------------------------------------------------


def lenet5_build():
    return Params([("conv0", nn.Conv2d(1, 6, 5, padding=2)),
                   ("conv1", nn.Conv2d(6, 16, 5)),
                   ("conv2", nn.Conv2d(16, 120, 5)),
                   ("linear0", nn.Linear(120, 84)),
                   ("linear1", nn.Linear(84, 10))])


def lenet5_forward(m, i):
    x = F.avg_pool2d(torch.tanh(m["conv0"](i["image"])), 2)
    x = F.avg_pool2d(torch.tanh(m["conv1"](x)), 2)
    x = torch.flatten(torch.tanh(m["conv2"](x)), 1)
    x = torch.tanh(m["linear0"](x))
    return {"logits": m["linear1"](x)}


def read_example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


case("lenet5", read_example("lenet5.net"), [("image", [1, 28, 28], 1.0, 0.0)],
     ["logits"], build=lenet5_build, forward=lenet5_forward, samples=3, batch=2,
     input_fn=lambda g, shape: torch.rand(shape, generator=g), init=init_glorot_tanh)

# ResNet-18, reduced --------------------------------------------------------------

SMALL_WIDTHS = [4, 8, 16, 32]
SMALL_INPUT = 64
SMALL_CLASSES = 10


def replace_once(text, old, new):
    assert text.count(old) == 1, old
    return text.replace(old, new)


def resnet18_small_net():
    t = read_example("resnet18.net")
    t = replace_once(t, "# ResNet-18 (He et al., 2016): parameter names are exactly "
                        "torchvision's resnet18 state_dict keys\n",
                     "# examples/resnet18.net with only its numbers changed: widths "
                     f"{SMALL_WIDTHS},\n# a {SMALL_INPUT}x{SMALL_INPUT} input and "
                     f"{SMALL_CLASSES} classes (golden test resnet18_small)\n")
    t = replace_once(t, "input image: [3, 224, 224];",
                     f"input image: [3, {SMALL_INPUT}, {SMALL_INPUT}];")
    t = replace_once(t, "conv(image, 64, 7,", f"conv(image, {SMALL_WIDTHS[0]}, 7,")
    t = replace_once(t, "widths = [64, 128, 256, 512];",
                     f"widths = {shape_str(SMALL_WIDTHS)};")
    t = replace_once(t, "linear(x, 1000)", f"linear(x, {SMALL_CLASSES})")
    return t


class ResNet(nn.Module):
    """torchvision's ResNet with BasicBlock, widths as a parameter; module
    names match torchvision.models.resnet.ResNet."""

    def __init__(self, widths, layers=(2, 2, 2, 2), num_classes=1000):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(widths[0], layers[0], 1)
        self.layer2 = self._make_layer(widths[1], layers[1], 2)
        self.layer3 = self._make_layer(widths[2], layers[2], 2)
        self.layer4 = self._make_layer(widths[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def check_resnet_class():
    """Our ResNet at full width names and shapes its parameters as torchvision."""
    ours = [(k, tuple(v.shape)) for k, v in param_list(ResNet([64, 128, 256, 512]))]
    ref = [(k, tuple(v.shape)) for k, v in param_list(torchvision.models.resnet18())]
    assert ours == ref, "ResNet class differs from torchvision's resnet18"


case("resnet18_small", resnet18_small_net(),
     [("image", [3, SMALL_INPUT, SMALL_INPUT], 1.0, 0.0)], ["logits"],
     build=lambda: ResNet(SMALL_WIDTHS, num_classes=SMALL_CLASSES),
     forward=lambda m, i: {"logits": m(i["image"])}, samples=2, batch=2,
     init=init_he)

CASE_NAMES = [c.name for c in CASES] + ["resnet18_names"]


# ---------------------------------------------------------------- generation

def seed_of(name):
    return zlib.crc32(name.encode("utf-8"))


def clean_dir(d):
    if os.path.isdir(d):
        for f in os.listdir(d):
            p = os.path.join(d, f)
            if os.path.isfile(p):
                os.remove(p)
            else:
                shutil.rmtree(p)
    else:
        os.makedirs(d)


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def generate(c):
    d = os.path.join(HERE, c.name)
    clean_dir(d)
    torch.manual_seed(seed_of(c.name))
    gen = torch.Generator().manual_seed(seed_of(c.name) + 1)

    m = c.build()                      # float32, PyTorch's default init
    if c.init:
        c.init(m)
    randomize_batchnorm(m, gen)
    m.eval()
    params = [(k, v.detach().clone().float()) for k, v in param_list(m)]

    inputs = {}
    for name, shape, scale, shift in c.inputs:
        full = [c.samples] + list(shape)
        if c.input_fn:
            x = c.input_fn(gen, full)
        else:
            x = torch.randn(full, generator=gen) * scale + shift
        inputs[name] = x.float()

    m64 = m.double()
    with torch.no_grad():
        outs = c.forward(m64, {k: v.double() for k, v in inputs.items()})
    assert list(outs) == c.outputs, (c.name, list(outs))

    write_text(os.path.join(d, "model.net"), c.net)
    write_text(os.path.join(d, "batch"), f"{c.batch}\n")
    write_text(os.path.join(d, "expected_params.txt"), expected_params_text(params))
    wpath = os.path.join(d, "weights.safetensors")
    write_safetensors(wpath, [(k, v.numpy()) for k, v in params])
    for name, x in inputs.items():
        np.save(os.path.join(d, f"input_{name}.npy"), x.numpy().astype("<f4"))
    for name, y in outs.items():
        y32 = y.float().numpy().astype("<f4")
        assert np.all(np.isfinite(y32)), (c.name, name)
        np.save(os.path.join(d, f"expected_{name}.npy"), y32)

    # read everything back
    back = read_safetensors(wpath)
    assert list(back) == [k for k, _ in params], c.name
    for k, v in params:
        assert back[k].shape == tuple(v.shape) and np.array_equal(back[k], v.numpy()), k
    for name, x in inputs.items():
        a = np.load(os.path.join(d, f"input_{name}.npy"))
        assert a.dtype == np.float32 and np.array_equal(a, x.numpy())

    # the float32 model agrees with the float64 reference
    m32 = m64.float()
    with torch.no_grad():
        outs32 = c.forward(m32, inputs)
    err = max(float((outs32[k].double() - outs[k]).abs().max()) for k in outs)
    mag = max(float(outs[k].abs().max()) for k in outs)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{c.name:32s} S={c.samples} N={c.batch} params={len(params):3d} "
          f"max|y|={mag:9.4g} f32err={err:.2g} {size} bytes")


def generate_resnet18_names():
    d = os.path.join(HERE, "resnet18_names")
    clean_dir(d)
    check_resnet_class()
    params = param_list(torchvision.models.resnet18())
    write_text(os.path.join(d, "expected_params.txt"), expected_params_text(params))
    print(f"{'resnet18_names':32s} params={len(params)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", metavar="CASE",
                    help="generate only this case (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    args = ap.parse_args()
    if args.list:
        print("\n".join(CASE_NAMES))
        return
    only = args.only or CASE_NAMES
    for n in only:
        if n not in CASE_NAMES:
            sys.exit(f"gen.py: unknown case {n!r}")
    torch.set_num_threads(1)
    for c in CASES:
        if c.name in only:
            generate(c)
    if "resnet18_names" in only:
        generate_resnet18_names()


if __name__ == "__main__":
    main()
