#!/usr/bin/python3
"""Generate the golden training data of netc from PyTorch.

Run with Debian's python (it has python3-torch and python3-torchvision):

    /usr/bin/python3 tests/golden_train/gen.py              # every case
    /usr/bin/python3 tests/golden_train/gen.py --only CASE  # one case (repeatable)
    /usr/bin/python3 tests/golden_train/gen.py --list       # case names

The output is committed; the tests only read it and never run this script.
Every case is seeded from its name (a `_partial` variant from the name of
the case it varies), so regenerating one case or all gives the same bytes.
The safetensors writer and reader, Params, param_list and the batchnorm
randomization come from tests/golden/gen.py, so both suites share one
convention.

Layout of one case, tests/golden_train/<case>/:

    model.net                  the netc program (one input, one output: the
                               logits)
    config                     `batch B`, `lr LR`, `momentum M`,
                               `weight_decay WD`, one per line; and
                               `epochs E` and `flags ...` (more trainer
                               options: the optimizer, its settings,
                               clipping, the schedule) where a case has them
    weights.safetensors        initial parameters, float32, under netc's
                               names (state_dict keys without
                               num_batches_tracked; batchnorm running stats
                               included and random)
    train_images.npy           float32 [S, C, H, W] (or [S, D]), S = 2B or
                               2B - 1 samples
    train_labels.npy           int64 [S] (or label maps [S, H, W]), or the
                               float32 targets of bce_with_logits and mse
    expected_loss.npy          float32 [1]: the loss on the first batch
                               (samples 0..B-1), batchnorm in training mode
    expected_grads.safetensors the gradient of that loss for every parameter
                               (no running stats), before any update; the
                               weight decay term is NOT included
    expected_params.safetensors every entry of weights.safetensors after the
                               steps: for each of E epochs (default 1), one
                               step per batch in file order (samples 0..B-1,
                               B..2B-1, ...; the last batch may be short)

The steps are PyTorch's: model.train(), the case's loss (default
nn.CrossEntropyLoss(), the mean over the batch) and optimizer (default
torch.optim.SGD(params, lr, momentum, weight_decay) over every parameter:
weights, biases, batchnorm weights and biases alike), clip_grad_norm_ between
backward and step when a case clips, the schedule stepped once per epoch; the
batchnorm's momentum 0.1 with the unbiased variance in running_var. They run
in float64 (model.double(), float32 data widened) from the float32 files,
and the results are rounded to float32.
"""

import argparse
import copy
import fnmatch
import importlib.util
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "examples")


def _load_golden():
    path = os.path.join(ROOT, "tests", "golden", "gen.py")
    spec = importlib.util.spec_from_file_location("netc_golden_gen", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_golden = _load_golden()
write_safetensors = _golden.write_safetensors
read_safetensors = _golden.read_safetensors
param_list = _golden.param_list
Params = _golden.Params
randomize_batchnorm = _golden.randomize_batchnorm
seed_of = _golden.seed_of
clean_dir = _golden.clean_dir
write_text = _golden.write_text


# --------------------------------------------------------------------- cases

class TrainCase:
    """name: directory; net: program text; in_shape: per-sample input shape;
    classes: number of logits; build(): module whose state_dict keys are
    netc's names; forward(module, x) -> logits, written with
    torch.nn.functional / the modules so it states PyTorch's semantics;
    batch: B; samples: S (2B or 2B - 1); init(module): weight init after
    PyTorch's default; input_fn(generator, shape): the images (default
    randn); seed_name: the name seeding weights and data (default name);
    lr, momentum, weight_decay: SGD's. For the other losses and optimizers:
    loss_fn(out, y) -> loss (default cross-entropy); labels_fn(generator,
    S) -> labels or targets (default class indices [S]); optim(params) ->
    a torch.optim optimizer (default SGD with lr, momentum, weight_decay);
    sched(optimizer) -> an LR scheduler stepped per epoch, or None; clip:
    clip_grad_norm_'s max_norm, or None; epochs; flags: the trainer options
    that ask for the same (written to config). freeze: glob patterns
    (fnmatch) of parameters not to train, as the net's `freeze` statement
    (transfer learning): they get requires_grad False and no optimizer
    state, and a batchnorm whose weight and bias both match is put in eval
    mode (running statistics, not updated), as one does in PyTorch."""

    def __init__(self, name, net, in_shape, classes, build, forward, batch,
                 samples=None, init=None, input_fn=None, seed_name=None,
                 lr=0.05, momentum=0.9, weight_decay=0.0005, loss_fn=None,
                 labels_fn=None, optim=None, sched=None, clip=None, epochs=1,
                 flags="", sched_per_step=False, freeze=()):
        self.name = name
        self.net = net
        self.in_shape = list(in_shape)
        self.classes = classes
        self.build = build
        self.forward = forward
        self.batch = batch
        self.samples = 2 * batch if samples is None else samples
        assert batch <= self.samples
        self.init = init
        self.input_fn = input_fn
        self.seed_name = seed_name or name
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.loss_fn = loss_fn
        self.labels_fn = labels_fn
        self.optim = optim
        self.sched = sched
        self.clip = clip
        self.epochs = epochs
        self.flags = flags
        self.sched_per_step = sched_per_step
        self.freeze = list(freeze)
        # the formulas check_by_hand recomputes hold for the default setup only
        self.plain = (loss_fn is None and optim is None and sched is None and clip is None
                      and epochs == 1 and self.samples <= 2 * batch and not self.freeze)

    def frozen(self, name):
        return any(fnmatch.fnmatchcase(name, p) for p in self.freeze)


CASES = []


def case(*args, **kw):
    CASES.append(TrainCase(*args, **kw))


def read_example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def read_bench(name):
    with open(os.path.join(EXAMPLES, "bench", name)) as f:
        return f.read()


def init_xavier(module):
    """netc's scheme for layers not followed by relu: Glorot uniform, gain 1
    (the biases keep PyTorch's default init, so they are not zero)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)


def init_he_fan_in(module):
    """netc's scheme for convs followed by relu: He normal, fan_in."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")


def images_bordered(gen, shape):
    """Fashion-MNIST-like: uniform [0, 1) with a black 3-pixel border."""
    x = torch.rand(shape, generator=gen)
    x[..., :3, :] = 0
    x[..., -3:, :] = 0
    x[..., :, :3] = 0
    x[..., :, -3:] = 0
    return x


# LeNet-5 -------------------------------------------------------------------------


def lenet5_build():
    return Params([("conv0", nn.Conv2d(1, 6, 5, padding=2)),
                   ("conv1", nn.Conv2d(6, 16, 5)),
                   ("conv2", nn.Conv2d(16, 120, 5)),
                   ("linear0", nn.Linear(120, 84)),
                   ("linear1", nn.Linear(84, 10))])


def lenet5_forward(m, x):
    x = F.avg_pool2d(torch.tanh(m["conv0"](x)), 2)
    x = F.avg_pool2d(torch.tanh(m["conv1"](x)), 2)
    x = torch.flatten(torch.tanh(m["conv2"](x)), 1)
    x = torch.tanh(m["linear0"](x))
    return m["linear1"](x)


case("lenet5", read_example("lenet5.net"), [1, 28, 28], 10,
     build=lenet5_build, forward=lenet5_forward, batch=4,
     init=init_xavier, input_fn=images_bordered)

# conv, batchnorm, relu, maxpool, residual add, global_avgpool, linear -------------

SMALL_BN_RESIDUAL_NET = """\
# training golden test: conv, batchnorm, relu, maxpool, a basic block with an
# identity shortcut (residual +), global_avgpool, flatten, linear.
# Parameters: conv0, batchnorm0, block1.conv0, block1.batchnorm0,
# block1.conv1, block1.batchnorm1, basic0.conv0, ..., fc.
# The convs feeding a batchnorm have no bias: in training mode its gradient
# would be zero up to rounding, which no relative tolerance can check.
block basic(x) {
    c = channels(x);
    y = conv(x, c, 3, pad = 1, bias = false) |> batchnorm |> relu;
    y = conv(y, c, 3, pad = 1, bias = false) |> batchnorm;
    return x + y |> relu;
}

net small_bn_residual {
    input image: [3, 8, 8];
    x = conv(image, 6, 3, pad = 1, bias = false) |> batchnorm |> relu |> maxpool(2);
    x = basic(x) as "block1";
    x = basic(x);
    x = global_avgpool(x) |> flatten;
    output logits = linear(x, 10) as "fc";
}
"""


def small_bn_residual_build():
    mods = [("conv0", nn.Conv2d(3, 6, 3, padding=1, bias=False)),
            ("batchnorm0", nn.BatchNorm2d(6))]
    for b in ("block1", "basic0"):
        mods += [(b + ".conv0", nn.Conv2d(6, 6, 3, padding=1, bias=False)),
                 (b + ".batchnorm0", nn.BatchNorm2d(6)),
                 (b + ".conv1", nn.Conv2d(6, 6, 3, padding=1, bias=False)),
                 (b + ".batchnorm1", nn.BatchNorm2d(6))]
    mods.append(("fc", nn.Linear(6, 10)))
    return Params(mods)


def small_bn_residual_forward(m, x):
    x = F.max_pool2d(F.relu(m["batchnorm0"](m["conv0"](x))), 2)
    for b in ("block1", "basic0"):
        y = F.relu(m[b + ".batchnorm0"](m[b + ".conv0"](x)))
        y = m[b + ".batchnorm1"](m[b + ".conv1"](y))
        x = F.relu(x + y)
    x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    return m["fc"](x)


for _name, _samples in [("small_bn_residual", 8), ("small_bn_residual_partial", 7)]:
    case(_name, SMALL_BN_RESIDUAL_NET, [3, 8, 8], 10,
         build=small_bn_residual_build, forward=small_bn_residual_forward,
         batch=4, samples=_samples, init=init_he_fan_in,
         seed_name="small_bn_residual")

# the training benchmark's small ResNet (examples/bench/fashion_resnet.net):
# stride-2 3x3 convs and 1x1 projections, whose input gradients take the
# blocked strided kernel on vector targets ---------------------------------------


def fashion_resnet_build():
    mods = [("conv1", nn.Conv2d(1, 16, 3, padding=1, bias=False)), ("bn1", nn.BatchNorm2d(16))]
    cin = 16
    for stage, w in enumerate((16, 32, 64)):
        for i in range(2):
            stride = 2 if stage > 0 and i == 0 else 1
            p = f"layer{stage + 1}.{i}"
            mods += [(p + ".conv1", nn.Conv2d(cin, w, 3, stride=stride, padding=1, bias=False)),
                     (p + ".bn1", nn.BatchNorm2d(w)),
                     (p + ".conv2", nn.Conv2d(w, w, 3, padding=1, bias=False)),
                     (p + ".bn2", nn.BatchNorm2d(w))]
            if stride != 1 or cin != w:
                mods += [(p + ".downsample.0", nn.Conv2d(cin, w, 1, stride=stride, bias=False)),
                         (p + ".downsample.1", nn.BatchNorm2d(w))]
            cin = w
    mods.append(("fc", nn.Linear(64, 10)))
    return Params(mods)


def fashion_resnet_forward(m, x):
    x = F.relu(m["bn1"](m["conv1"](x)))
    for stage in range(3):
        for i in range(2):
            p = f"layer{stage + 1}.{i}"
            y = F.relu(m[p + ".bn1"](m[p + ".conv1"](x)))
            y = m[p + ".bn2"](m[p + ".conv2"](y))
            if hasattr(m[p], "downsample"):
                x = m[p + ".downsample.1"](m[p + ".downsample.0"](x))
            x = F.relu(y + x)
    x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    return m["fc"](x)


case("fashion_resnet", read_bench("fashion_resnet.net"), [1, 28, 28], 10,
     build=fashion_resnet_build, forward=fashion_resnet_forward, batch=4,
     init=init_he_fan_in, input_fn=images_bordered)

# the gradients of the other activations and the tensor ops: relu6,
# leaky_relu, elu, silu, gelu, hardswish, hardsigmoid, log_softmax, slice,
# concat, channel_shuffle, lrn, adaptive_avgpool (overlapping windows), a
# same-shape product -------------------------------------------------------------

GRAD_OPS_NET = """\
# training golden test: the gradients of relu6, leaky_relu, elu, silu, gelu,
# hardswish, hardsigmoid, log_softmax, slice, concat, channel_shuffle, lrn,
# adaptive_avgpool (overlapping windows on 8x8 -> 3x3) and x * y.
net grad_ops {
    input image: [3, 8, 8];
    x = conv(image, 8, 3, pad = 1) as "conv0";
    a = slice(x, 0, 4) |> relu6;
    b = slice(x, 4, 8) |> leaky_relu(0.2);
    x = concat(a, b) |> channel_shuffle(2) |> elu(0.7);
    x = conv(x, 8, 3, pad = 1) as "conv1" |> silu |> lrn(3, alpha = 0.01, beta = 0.75, k = 2.0);
    x = conv(x, 8, 1) as "conv2" |> gelu |> hardswish;
    y = conv(x, 8, 1) as "conv3" |> hardsigmoid;
    x = x * y |> log_softmax |> adaptive_avgpool(3) |> flatten;
    output logits = linear(x, 5) as "fc";
}
"""


def grad_ops_build():
    return Params([("conv0", nn.Conv2d(3, 8, 3, padding=1)),
                   ("conv1", nn.Conv2d(8, 8, 3, padding=1)),
                   ("conv2", nn.Conv2d(8, 8, 1)),
                   ("conv3", nn.Conv2d(8, 8, 1)),
                   ("fc", nn.Linear(72, 5))])


def grad_ops_forward(m, x):
    x = m["conv0"](x)
    a = F.relu6(x[:, :4])
    b = F.leaky_relu(x[:, 4:], 0.2)
    x = torch.cat([a, b], 1)
    n, c, h, w = x.shape
    x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
    x = F.elu(x, 0.7)
    x = F.local_response_norm(F.silu(m["conv1"](x)), 3, alpha=0.01, beta=0.75, k=2.0)
    x = F.hardswish(F.gelu(m["conv2"](x)))
    y = F.hardsigmoid(m["conv3"](x))
    x = F.log_softmax(x * y, dim=1)
    x = torch.flatten(F.adaptive_avg_pool2d(x, 3), 1)
    return m["fc"](x)


case("grad_ops", GRAD_OPS_NET, [3, 8, 8], 5,
     build=grad_ops_build, forward=grad_ops_forward, batch=3, init=init_xavier,
     input_fn=lambda g, shape: torch.randn(shape, generator=g) * 2.0)

# reshape, pad and global_maxpool ----------------------------------------------------

GRAD_OPS2_NET = """\
# training golden test: the gradients of reshape, pad (asymmetric) and
# global_maxpool.
net grad_ops2 {
    input image: [3, 6, 6];
    x = conv(image, 4, 3, pad = 1) as "conv0" |> tanh |> pad([1, 0, 2, 1]);
    x = conv(x, 6, 3) as "conv1" |> tanh;
    m = global_maxpool(x) |> flatten;
    r = reshape(x, [6, 35]) |> reshape([210]);
    h = linear(r, 6) as "fc0" |> tanh;
    output logits = linear(h + m, 5) as "fc1";
}
"""


def grad_ops2_build():
    return Params([("conv0", nn.Conv2d(3, 4, 3, padding=1)),
                   ("conv1", nn.Conv2d(4, 6, 3)),
                   ("fc0", nn.Linear(210, 6)),
                   ("fc1", nn.Linear(6, 5))])


def grad_ops2_forward(m, x):
    x = F.pad(torch.tanh(m["conv0"](x)), (2, 1, 1, 0))  # left, right, top, bottom
    x = torch.tanh(m["conv1"](x))
    mx = torch.flatten(F.adaptive_max_pool2d(x, 1), 1)
    r = x.reshape(x.shape[0], 6, 35).reshape(x.shape[0], 210)
    h = torch.tanh(m["fc0"](r))
    return m["fc1"](h + mx)


case("grad_ops2", GRAD_OPS2_NET, [3, 6, 6], 5,
     build=grad_ops2_build, forward=grad_ops2_forward, batch=3, init=init_xavier,
     input_fn=lambda g, shape: torch.randn(shape, generator=g))

# deconv, layernorm, instancenorm, upsample, maxpool_idx and unpool ------------------

GRAD_OPS3_NET = """\
# training golden test: the gradients of deconv (stride 2 and padding; and
# grouped, dilated, with unequal padding and an output_pad smaller than the
# dilation, not the stride), layernorm (on an image and on features; affine
# and not), instancenorm (affine and not), upsample (nearest by a scale up
# and down, bilinear by a scale and to a size), maxpool_idx (non-overlapping
# and overlapping windows) and unpool.
net grad_ops3 {
    input image: [3, 6, 6];
    x = conv(image, 4, 3, pad = 1) as "conv0" |> tanh;
    r = maxpool_idx(x, 2);
    v = instancenorm(r[0]) as "in0" |> tanh;
    s = maxpool_idx(x, 3, stride = 2, pad = 1)[0] |> upsample(2, "bilinear");
    u = unpool(v, r[1], x) + s;
    a = deconv(u, 4, 4, stride = 2, pad = 1) as "deconv0" |> tanh;
    b = instancenorm(x, affine = false) |> upsample(2);
    c = upsample(a + b, size = [7, 9], mode = "bilinear") |> layernorm as "ln0";
    e = deconv(c, 6, 3, pad = [1, 2], output_pad = 1, groups = 2, dilation = 2) as "deconv1";
    f = e |> tanh |> upsample(0.5) |> layernorm(affine = false) |> avgpool(2) |> flatten;
    h = linear(f, 8) as "fc0" |> layernorm as "ln1";
    output logits = linear(h, 5) as "fc1";
}
"""


def grad_ops3_build():
    return Params([("conv0", nn.Conv2d(3, 4, 3, padding=1)),
                   ("in0", nn.InstanceNorm2d(4, affine=True)),
                   ("deconv0", nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)),
                   ("ln0", nn.LayerNorm([4, 7, 9])),
                   ("deconv1", nn.ConvTranspose2d(4, 6, 3, padding=(1, 2), output_padding=1, groups=2,
                                                  dilation=2)),
                   ("fc0", nn.Linear(24, 8)),
                   ("ln1", nn.LayerNorm(8)),
                   ("fc1", nn.Linear(8, 5))])


def grad_ops3_init(module):
    """Glorot uniform conv and linear weights; the norms' weights and biases
    away from 1 and 0, so that their gradients carry them."""
    init_xavier(module)
    gen = torch.Generator().manual_seed(11)
    for m in module.modules():
        if isinstance(m, (nn.LayerNorm, nn.InstanceNorm2d)):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) - 0.5)


def grad_ops3_forward(m, x):
    x = torch.tanh(m["conv0"](x))
    v, idx = F.max_pool2d(x, 2, return_indices=True)
    v = torch.tanh(m["in0"](v))
    s = F.interpolate(F.max_pool2d(x, 3, stride=2, padding=1), scale_factor=2, mode="bilinear",
                      align_corners=False)
    u = F.max_unpool2d(v, idx, 2, output_size=x.shape[2:]) + s
    a = torch.tanh(m["deconv0"](u))
    b = F.interpolate(F.instance_norm(x), scale_factor=2, mode="nearest")
    c = m["ln0"](F.interpolate(a + b, size=(7, 9), mode="bilinear", align_corners=False))
    e = m["deconv1"](c)
    f = F.interpolate(torch.tanh(e), scale_factor=0.5, mode="nearest")
    f = torch.flatten(F.avg_pool2d(F.layer_norm(f, f.shape[1:]), 2), 1)
    h = m["ln1"](m["fc0"](f))
    return m["fc1"](h)


case("grad_ops3", GRAD_OPS3_NET, [3, 6, 6], 5,
     build=grad_ops3_build, forward=grad_ops3_forward, batch=3, init=grad_ops3_init,
     input_fn=lambda g, shape: torch.randn(shape, generator=g))

# gates: sigmoid, softmax, avgpool, mul; an MLP with sigmoid and tanh ------------

MLP_NET = """\
# training golden test: tensor * tensor (a [C, 1, 1] gate broadcast, and a
# same-shape product whose operands both depend on x), sigmoid, softmax over
# channels, avgpool, then an MLP with sigmoid and tanh.
net mlp_sigmoid_softmax {
    input x: [2, 4, 4];
    x = x * (global_avgpool(x) |> sigmoid);    # channel gate
    x = x * softmax(x) |> avgpool(2);          # attention over channels: [2, 2, 2]
    h = flatten(x) |> linear(16) |> sigmoid;
    h = linear(h, 12) |> tanh;
    output logits = linear(h, 5);
}
"""


def mlp_build():
    return Params([("linear0", nn.Linear(8, 16)),
                   ("linear1", nn.Linear(16, 12)),
                   ("linear2", nn.Linear(12, 5))])


def mlp_forward(m, x):
    x = x * torch.sigmoid(F.adaptive_avg_pool2d(x, 1))
    x = F.avg_pool2d(x * F.softmax(x, dim=1), 2)
    h = torch.sigmoid(m["linear0"](torch.flatten(x, 1)))
    h = torch.tanh(m["linear1"](h))
    return m["linear2"](h)


case("mlp_sigmoid_softmax", MLP_NET, [2, 4, 4], 5,
     build=mlp_build, forward=mlp_forward, batch=3, init=init_xavier,
     input_fn=lambda g, shape: torch.randn(shape, generator=g) * 1.5 + 0.3)

# losses, optimizers, clipping and schedules -----------------------------------------

LOSS_XENT_NET = """\
# training golden test: cross-entropy with class weights, label smoothing and
# an ignored label (-1); SGD with Nesterov momentum, weight decay but not of
# the biases (--no-bias-decay); five steps, the last on a short batch.
net loss_xent {
    input x: [12];
    h = linear(x, 16) |> tanh;
    output logits = linear(h, 5)
        |> loss("cross_entropy", label_smoothing = 0.1, weight = [1.0, 2.0, 0.5, 1.5, 1.0], ignore_index = -1);
}
"""


def mlp2_build(d, h, k):
    return lambda: Params([("linear0", nn.Linear(d, h)), ("linear1", nn.Linear(h, k))])


def loss_xent_forward(m, x):
    return m["linear1"](torch.tanh(m["linear0"](x)))


def labels_some_ignored(classes, ignored, rate, shape=()):
    def make(gen, count):
        y = torch.randint(0, classes, [count] + list(shape), generator=gen, dtype=torch.int64)
        drop = torch.rand([count] + list(shape), generator=gen) < rate
        y[drop] = ignored
        y.view(count, -1)[:, 0] = y.view(count, -1)[:, 0].clamp(min=0) % classes  # every sample counts somewhere
        return y
    return make


def no_bias_decay_groups(m, wd):
    """PyTorch's usual split: no weight decay for 1-d parameters."""
    decay = [p for p in m.parameters() if p.dim() > 1]
    rest = [p for p in m.parameters() if p.dim() <= 1]
    return [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]


case("loss_xent", LOSS_XENT_NET, [12], 5, build=mlp2_build(12, 16, 5), forward=loss_xent_forward,
     batch=4, samples=18, init=init_xavier, lr=0.05, momentum=0.9, weight_decay=1e-3,
     loss_fn=lambda z, y: F.cross_entropy(z, y, weight=torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0], dtype=z.dtype),
                                          ignore_index=-1, label_smoothing=0.1),
     labels_fn=labels_some_ignored(5, -1, 0.2),
     optim=lambda m: torch.optim.SGD(no_bias_decay_groups(m, 1e-3), lr=0.05, momentum=0.9, nesterov=True),
     flags="--nesterov --no-bias-decay")

LOSS_SEG_NET = """\
# training golden test: per-pixel cross-entropy ([4, 8, 8] scores against
# [8, 8] label maps) with class weights and the ignored label 255; Adam with
# L2 weight decay, gradients clipped to a global norm of 0.5.
net loss_seg {
    input image: [3, 8, 8];
    x = conv(image, 8, 3, pad = 1) as "conv0" |> relu;
    output scores = conv(x, 4, 1) as "head"
        |> loss("cross_entropy", weight = [0.5, 1.0, 2.0, 1.0], ignore_index = 255);
}
"""


def loss_seg_build():
    return Params([("conv0", nn.Conv2d(3, 8, 3, padding=1)), ("head", nn.Conv2d(8, 4, 1))])


def loss_seg_forward(m, x):
    return m["head"](F.relu(m["conv0"](x)))


case("loss_seg", LOSS_SEG_NET, [3, 8, 8], 4, build=loss_seg_build, forward=loss_seg_forward,
     batch=2, samples=6, init=init_he_fan_in, lr=0.01, momentum=0.0, weight_decay=1e-4,
     loss_fn=lambda z, y: F.cross_entropy(z, y, weight=torch.tensor([0.5, 1.0, 2.0, 1.0], dtype=z.dtype),
                                          ignore_index=255),
     labels_fn=labels_some_ignored(4, 255, 0.1, shape=(8, 8)),
     optim=lambda m: torch.optim.Adam(m.parameters(), lr=0.01, weight_decay=1e-4),
     clip=0.5, flags="--optimizer adam --clip-grad-norm 0.5")

LOSS_BCE_NET = """\
# training golden test: binary cross-entropy with logits (six labels per
# sample); AdamW with its betas and eps, a cosine schedule over 3 epochs.
net loss_bce {
    input x: [10];
    h = linear(x, 12) |> relu;
    output logits = linear(h, 6) |> loss("bce_with_logits");
}
"""


def targets_bernoulli(k):
    return lambda gen, count: (torch.rand([count, k], generator=gen) < 0.4).float()


case("loss_bce", LOSS_BCE_NET, [10], 6, build=mlp2_build(10, 12, 6),
     forward=lambda m, x: m["linear1"](F.relu(m["linear0"](x))),
     batch=3, samples=6, init=init_xavier, lr=0.01, momentum=0.0, weight_decay=0.05,
     loss_fn=nn.BCEWithLogitsLoss(), labels_fn=targets_bernoulli(6),
     optim=lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-6,
                                       weight_decay=0.05),
     sched=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3), epochs=3,
     flags="--optimizer adamw --betas 0.8,0.99 --eps 1e-6 --schedule cosine")

LOSS_MSE_NET = """\
# training golden test: mean squared error against three targets per sample;
# SGD with dampening.
net loss_mse {
    input image: [2, 6, 6];
    x = conv(image, 4, 3) as "conv0" |> tanh |> global_avgpool |> flatten;
    output y = linear(x, 3) as "fc" |> loss("mse");
}
"""


def loss_mse_build():
    return Params([("conv0", nn.Conv2d(2, 4, 3)), ("fc", nn.Linear(4, 3))])


case("loss_mse", LOSS_MSE_NET, [2, 6, 6], 3, build=loss_mse_build,
     forward=lambda m, x: m["fc"](torch.flatten(F.adaptive_avg_pool2d(torch.tanh(m["conv0"](x)), 1), 1)),
     batch=4, samples=16, init=init_xavier, lr=0.1, momentum=0.9, weight_decay=0.01,
     loss_fn=nn.MSELoss(), labels_fn=lambda gen, count: torch.randn([count, 3], generator=gen),
     optim=lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, dampening=0.3,
                                     weight_decay=0.01),
     flags="--dampening 0.3")

# the small U-Net of examples/unet_small.net: per-pixel cross-entropy with an
# ignored label through maxpool, deconv (2x2, stride 2), concat skips and
# batchnorm -----------------------------------------------------------------------


def edited(text, edits):
    """text with each (old, new) replaced; old must occur exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# the example at half width (8, 16, 32 channels), for a small committed case
UNET_EDITS = [("double_conv(image, 16)", "double_conv(image, 8)"), ("double_conv(32) as \"enc2\"", "double_conv(16) as \"enc2\""),
              ("double_conv(64)", "double_conv(32)"), ("deconv(mid, 32, 2", "deconv(mid, 16, 2"),
              ("double_conv(32) as \"dec2\"", "double_conv(16) as \"dec2\""), ("deconv(dec2, 16, 2", "deconv(dec2, 8, 2"),
              ("double_conv(16) as \"dec1\"", "double_conv(8) as \"dec1\"")]


def unet_build():
    mods = []

    def double_conv(p, cin, c):
        mods.extend([(p + ".conv0", nn.Conv2d(cin, c, 3, padding=1, bias=False)), (p + ".batchnorm0", nn.BatchNorm2d(c)),
                     (p + ".conv1", nn.Conv2d(c, c, 3, padding=1, bias=False)), (p + ".batchnorm1", nn.BatchNorm2d(c))])

    double_conv("enc1", 1, 8)
    double_conv("enc2", 8, 16)
    double_conv("mid", 16, 32)
    mods.append(("up2", nn.ConvTranspose2d(32, 16, 2, stride=2)))
    double_conv("dec2", 32, 16)
    mods.append(("up1", nn.ConvTranspose2d(16, 8, 2, stride=2)))
    double_conv("dec1", 16, 8)
    mods.append(("head", nn.Conv2d(8, 11, 1)))
    return Params(mods)


def unet_forward(m, x):
    def dc(p, x):
        x = F.relu(m[p + ".batchnorm0"](m[p + ".conv0"](x)))
        return F.relu(m[p + ".batchnorm1"](m[p + ".conv1"](x)))
    e1 = dc("enc1", x)
    e2 = dc("enc2", F.max_pool2d(e1, 2))
    mid = dc("mid", F.max_pool2d(e2, 2))
    d2 = dc("dec2", torch.cat([m["up2"](mid), e2], 1))
    d1 = dc("dec1", torch.cat([m["up1"](d2), e1], 1))
    return m["head"](d1)


case("unet_small", edited(read_example("unet_small.net"), UNET_EDITS), [1, 28, 28], 11, build=unet_build, forward=unet_forward,
     batch=2, samples=4, init=init_he_fan_in, input_fn=images_bordered,
     loss_fn=lambda z, y: F.cross_entropy(z, y, ignore_index=255),
     labels_fn=labels_some_ignored(11, 255, 0.05, shape=(28, 28)))

SCHED_NET = """\
# training golden test: the one-cycle schedule (OneCycleLR stepped per batch,
# its momentum cycled from 0.95 to 0.85 and back) over 2 epochs of 3 steps,
# with SGD (the momentum) and with Adam (beta1).
net NAME {
    input x: [8];
    h = linear(x, 10) |> tanh;
    output logits = linear(h, 4);
}
"""

for _name, _opt, _flags in [
        ("sched_onecycle_sgd",
         lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4), ""),
        ("sched_onecycle_adam",
         lambda m: torch.optim.Adam(m.parameters(), lr=0.1, weight_decay=1e-4), "--optimizer adam ")]:
    case(_name, SCHED_NET.replace("NAME", _name), [8], 4, build=mlp2_build(8, 10, 4),
         forward=lambda m, x: m["linear1"](torch.tanh(m["linear0"](x))),
         batch=4, samples=12, init=init_xavier, lr=0.1, momentum=0.9, weight_decay=1e-4,
         optim=_opt, epochs=2, sched_per_step=True,
         sched=lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=6),
         flags=_flags + "--schedule onecycle:0.2")

# transfer learning: frozen layers, frozen batchnorms in eval mode, per-group rates

TRANSFER_NET = """\
# training golden test of transfer learning{what}
net transfer {{
    input image: [3, 8, 8];{freeze}
    x = conv(image, 6, 3, pad = 1, bias = false) |> batchnorm |> relu |> maxpool(2);
    x = conv(x, 8, 3, pad = 1{bias}) |> batchnorm |> relu;
    x = global_avgpool(x) |> flatten;
    output logits = linear(x, 10) as "fc";
}}
"""


def transfer_build(bias):
    """conv1's bias only where batchnorm1 is frozen: before a batchnorm in
    training mode its gradient is zero up to rounding."""
    return lambda: Params([("conv0", nn.Conv2d(3, 6, 3, padding=1, bias=False)), ("batchnorm0", nn.BatchNorm2d(6)),
                           ("conv1", nn.Conv2d(6, 8, 3, padding=1, bias=bias)), ("batchnorm1", nn.BatchNorm2d(8)),
                           ("fc", nn.Linear(8, 10))])


def transfer_forward(m, x):
    x = F.max_pool2d(F.relu(m["batchnorm0"](m["conv0"](x))), 2)
    x = F.relu(m["batchnorm1"](m["conv1"](x)))
    return m["fc"](torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


case("transfer_freeze",
     TRANSFER_NET.format(what=""": the first conv and every batchnorm frozen
# (the batchnorms then run in eval mode: running statistics, not updated).
# conv1, below the frozen batchnorm1, is trained, so its gradient passes
# through batchnorm_eval_grad; conv0's backward is pruned.""",
                         freeze='\n    freeze "conv0.*", "batchnorm*";', bias=""),
     [3, 8, 8], 10, build=transfer_build(True), forward=transfer_forward, batch=4, init=init_he_fan_in,
     freeze=["conv0.*", "batchnorm*"])


def two_rate_groups(m):
    """fc at its own rate (0.01), the rest at the optimizer's (0.05)."""
    head = [p for k, p in m.named_parameters() if k.startswith("fc.")]
    rest = [p for k, p in m.named_parameters() if not k.startswith("fc.")]
    return torch.optim.SGD([{"params": head, "lr": 0.01}, {"params": rest}], lr=0.05, momentum=0.9,
                           weight_decay=0.0005)


case("transfer_lr_for",
     TRANSFER_NET.format(what=""": per-group learning rates, --lr-for "fc.*=0.01"
# beside --lr 0.05 (torch.optim.SGD with two param groups), under a step
# schedule that halves both every epoch (StepLR), over 2 epochs.""", freeze="", bias=", bias = false"),
     [3, 8, 8], 10, build=transfer_build(False), forward=transfer_forward, batch=4, init=init_he_fan_in,
     optim=two_rate_groups, sched=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5), epochs=2,
     flags="--lr-for fc.*=0.01 --schedule step:1:0.5")

CASE_NAMES = [c.name for c in CASES]


# ---------------------------------------------------------------- training

def train_two_steps(c, m0, x, y, dtype):
    """The case's steps from a copy of m0 in dtype (E epochs of one step per
    batch, in order). Returns (loss on batch 1, loss on batch 2, [(param,
    grad on batch 1)], [(name, value)] after the steps, [(param, grad on
    batch 2)]); all in state_dict order."""
    m = copy.deepcopy(m0).to(dtype)
    m.train()
    # transfer learning: frozen parameters, and frozen batchnorms in eval mode
    for k, p in m.named_parameters():
        p.requires_grad_(not c.frozen(k))
    for k, mod in m.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and c.frozen(k + ".weight") and c.frozen(k + ".bias"):
            mod.eval()
    x = x.to(dtype)
    if y.is_floating_point():
        y = y.to(dtype)
    names = {k: p for k, p in m.named_parameters() if p.requires_grad}
    order = [k for k, _ in param_list(m) if k in names]
    if c.optim:
        opt = c.optim(m)
    else:
        opt = torch.optim.SGD([names[k] for k in order], lr=c.lr, momentum=c.momentum,
                              weight_decay=c.weight_decay)
    sched = c.sched(opt) if c.sched else None
    loss_fn = c.loss_fn or nn.CrossEntropyLoss()
    losses, grads = [], []
    for _ in range(c.epochs):
        for lo in range(0, c.samples, c.batch):
            hi = min(lo + c.batch, c.samples)
            opt.zero_grad()
            loss = loss_fn(c.forward(m, x[lo:hi]), y[lo:hi])
            loss.backward()
            losses.append(loss.detach().clone())
            grads.append([(k, names[k].grad.detach().clone()) for k in order])
            if c.clip:
                torch.nn.utils.clip_grad_norm_(m.parameters(), c.clip)
            opt.step()
            if sched and c.sched_per_step:
                sched.step()
        if sched and not c.sched_per_step:
            sched.step()
    params = [(k, v.detach().clone()) for k, v in param_list(m)]
    return losses[0], losses[1 % len(losses)], grads[0], params, grads[1 % len(grads)]


def batchnorm_inputs(c, m0, x):
    """{batchnorm name: its input} for a float64 forward of x in train mode
    (on a copy; running stats of m0 untouched)."""
    m = copy.deepcopy(m0).double()
    m.train()
    seen = {}
    for name, mod in m.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.register_forward_hook(
                lambda mod, inp, out, name=name: seen.__setitem__(name, inp[0].detach()))
    with torch.no_grad():
        c.forward(m, x.double())
    return seen


def check_by_hand(c, m0, x, y, loss1, grads1, params, grads2):
    """Recompute the two steps with the documented formulas: SGD with
    momentum (no dampening, no Nesterov) and weight decay added to the
    gradient; batchnorm running stats with momentum 0.1, the biased batch
    variance normalizing and the unbiased one entering running_var."""
    p0 = {k: v.double() for k, v in param_list(m0)}
    g1, g2 = dict(grads1), dict(grads2)
    expect = dict(p0)
    for k in g1:
        d1 = g1[k] + c.weight_decay * p0[k]
        buf = d1
        p1 = p0[k] - c.lr * buf
        d2 = g2[k] + c.weight_decay * p1
        buf = c.momentum * buf + d2
        expect[k] = p1 - c.lr * buf
    # running stats: the batchnorm inputs of step 1 come from p0, of step 2
    # from the parameters after step 1
    m1 = copy.deepcopy(m0).double()
    with torch.no_grad():
        for k, p in m1.named_parameters():
            p.sub_(c.lr * (g1[k] + c.weight_decay * p0[k]))
    for m, lo, hi in [(m0, 0, c.batch), (m1, c.batch, c.samples)]:
        for name, t in batchnorm_inputs(c, m, x[lo:hi]).items():
            dims = [0] + list(range(2, t.dim()))
            n = t.numel() // t.shape[1]
            mean = t.mean(dims)
            var = t.var(dims, unbiased=False) * n / (n - 1)
            rm, rv = name + ".running_mean", name + ".running_var"
            expect[rm] = 0.9 * expect[rm] + 0.1 * mean
            expect[rv] = 0.9 * expect[rv] + 0.1 * var
    for k, v in params:
        err = float((expect[k] - v).abs().max())
        assert err < 1e-12 * (1 + float(v.abs().max())), (c.name, k, err)
    # the loss: mean cross-entropy by hand
    m = copy.deepcopy(m0).double()
    m.train()
    logits = c.forward(m, x[:c.batch].double())
    lse = torch.logsumexp(logits, 1)
    hand = (lse - logits[torch.arange(c.batch), y[:c.batch]]).mean()
    assert abs(float(hand - loss1)) < 1e-12, (c.name, float(hand), float(loss1))


def rel_err(pairs_a, pairs_b):
    """Largest |a - b| / max|b| over tensors (b the reference)."""
    worst = 0.0
    for (ka, a), (kb, b) in zip(pairs_a, pairs_b):
        assert ka == kb
        scale = float(b.abs().max())
        if scale > 0:
            worst = max(worst, float((a.double() - b).abs().max()) / scale)
    return worst


# ---------------------------------------------------------------- generation

def to_f32(pairs):
    return [(k, v.float().numpy().astype("<f4")) for k, v in pairs]


def check_safetensors(path, pairs):
    back = read_safetensors(path)
    assert list(back) == [k for k, _ in pairs], path
    for k, v in pairs:
        assert back[k].shape == v.shape and np.array_equal(back[k], v), (path, k)
        assert np.all(np.isfinite(back[k])), (path, k)


def generate(c):
    d = os.path.join(HERE, c.name)
    clean_dir(d)
    torch.manual_seed(seed_of(c.seed_name))
    gen = torch.Generator().manual_seed(seed_of(c.seed_name) + 1)

    m = c.build()                      # float32, PyTorch's default init
    if c.init:
        c.init(m)
    randomize_batchnorm(m, gen)
    weights = to_f32(param_list(m))

    count = max(2 * c.batch, c.samples)
    full = [count] + c.in_shape
    x = (c.input_fn(gen, full) if c.input_fn else torch.randn(full, generator=gen)).float()
    if c.labels_fn:
        y = c.labels_fn(gen, count)
    else:
        y = torch.randint(0, c.classes, [count], generator=gen, dtype=torch.int64)
    x, y = x[:c.samples].contiguous(), y[:c.samples].contiguous()

    loss1, loss2, grads, params, grads2 = train_two_steps(c, m, x, y, torch.float64)
    if c.plain:
        check_by_hand(c, m, x, y, loss1, grads, params, grads2)
    pnames = {k for k in dict(m.named_parameters()) if not c.frozen(k)}
    assert [k for k, _ in grads] == [k for k, _ in weights if k in pnames]
    assert [k for k, _ in params] == [k for k, _ in weights]

    write_text(os.path.join(d, "model.net"), c.net)
    config = (f"batch {c.batch}\nlr {c.lr}\nmomentum {c.momentum}\n"
              f"weight_decay {c.weight_decay}\n")
    if c.epochs != 1:
        config += f"epochs {c.epochs}\n"
    if c.flags:
        config += f"flags {c.flags}\n"
    write_text(os.path.join(d, "config"), config)
    files = [("weights.safetensors", weights),
             ("expected_grads.safetensors", to_f32(grads)),
             ("expected_params.safetensors", to_f32(params))]
    for f, pairs in files:
        write_safetensors(os.path.join(d, f), pairs)
        check_safetensors(os.path.join(d, f), pairs)
    arrays = [("train_images.npy", x.numpy().astype("<f4")),
              ("train_labels.npy", y.numpy().astype("<f4" if y.is_floating_point() else "<i8")),
              ("expected_loss.npy", np.array([float(loss1)], dtype="<f4"))]
    for f, a in arrays:
        np.save(os.path.join(d, f), a)
        back = np.load(os.path.join(d, f))
        assert back.dtype == a.dtype and np.array_equal(back, a), f

    # PyTorch's own float32 run from the same files: a floor for tolerances
    l32, _, g32, p32, _ = train_two_steps(c, m, x, y, torch.float32)
    moved = rel_err([(k, torch.from_numpy(v)) for k, v in weights], params)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{c.name:26s} S={c.samples} B={c.batch} params={len(weights):2d} "
          f"loss={float(loss1):.5f},{float(loss2):.5f} "
          f"max|g|={max(float(v.abs().max()) for _, v in grads):.3g} "
          f"moved={moved:.3g} f32err: loss {abs(float(l32) - float(loss1)):.1g} "
          f"grads {rel_err(g32, grads):.1g} params {rel_err(p32, params):.1g} "
          f"{size} bytes")


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


if __name__ == "__main__":
    main()
