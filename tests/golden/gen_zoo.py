#!/usr/bin/python3
"""Golden cases for reduced variants of the zoo models, from PyTorch.

    /usr/bin/python3 tests/golden/gen_zoo.py              # every zoo case
    /usr/bin/python3 tests/golden/gen_zoo.py --only CASE  # one case (repeatable)
    /usr/bin/python3 tests/golden/gen_zoo.py --list       # case names

Each case is a zoo program, examples/<model>.net, with only its numbers
changed (widths, input size, classes; never the structure), so that it runs
in a fraction of a second, and the same architecture in PyTorch at the same
sizes: torchvision's own class where it takes its widths as arguments
(MobileNetV2, DenseNet, ShuffleNetV2, EfficientNet), otherwise a module of
tools/zoo_reference.py with torchvision's parameter names (AlexNet, VGG,
GoogLeNet from torchvision's Inception blocks, ResNet-34, ResNet-50 and
ResNeXt-50 from torchvision's BasicBlock and Bottleneck, the FCN on a small
bottleneck backbone under torchvision's FCN head) or our own (MobileNetV1,
ZFNet).

A case's directory, tests/golden/<model>_small/, has the layout of
tests/golden/gen.py's cases (read its docstring): model.net, batch,
weights.safetensors, input_<name>.npy, expected_<name>.npy (PyTorch in eval
mode, float64, from the float32 weights and inputs), expected_params.txt.
tests/CMakeLists.txt finds them with the other golden cases and compares at
-O0 and -O2.  Every batchnorm gets a random affine map and running
statistics measured on a random batch (zoo_reference.calibrate_batchnorm:
with PyTorch's initialization and arbitrary statistics the output of a deep
net can stop depending on its input); each case is seeded from its name, so a rerun writes the same
bytes.  The script checks that the generated program's parameter list is the
module's (with netc, if build*/netc exists) and that the output depends on
the input.
"""

import argparse
import os
import subprocess
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import torch2safetensors as t2s  # noqa: E402
import zoo_reference as zr  # noqa: E402


def shape_str(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


class ZooCase:
    """model: examples/<model>.net; edits: (old, new) replacements, each
    old text occurring exactly once; build(): the PyTorch module;
    size: input height and width; output: the net's output name, or a
    list of them (the keys of the dict the module returns); prepare(module):
    called after the batchnorms' weights are drawn, before their statistics
    are measured; check({output: float64 tensor}): asserts what the outputs
    must satisfy beyond the usual, returns a note to print."""

    def __init__(self, model, edits, build, size, output="logits", samples=2, batch=2, prepare=None,
                 check=None):
        self.model, self.edits, self.build, self.prepare = model, edits, build, prepare
        self.size, self.check = size, check
        self.outputs = [output] if isinstance(output, str) else list(output)
        self.samples, self.batch = samples, batch
        self.name = f"{model}_small"


CASES = []


def case(*args, **kw):
    CASES.append(ZooCase(*args, **kw))


def he_init(m):
    """He initialization (fan-out, ReLU gain) of every conv and linear weight:
    with PyTorch's default, a plain ReLU stack like AlexNet's shrinks its
    signal until the input barely shows in the output."""
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    return m


def input_edit(size):
    return ("input image: [3, 224, 224];", f"input image: [3, {size}, {size}];")


def classes_edit(n):
    return ("classes = 1000;", f"classes = {n};")


# MobileNetV1: widths divided by 8, 64x64 input (a 2x2 map before pooling), 10 classes.
V1_SMALL = [w // 8 for w in zr.V1_WIDTHS]
case("mobilenet_v1",
     [input_edit(64), classes_edit(10), ("stem = 32;", "stem = 4;"),
      ("widths  = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024];",
       f"widths  = {shape_str(V1_SMALL)};")],
     lambda: zr.MobileNetV1(stem=4, widths=V1_SMALL, num_classes=10), 64)


# MobileNetV2: torchvision's class at width 0.25 (channels rounded to multiples
# of 8 as torchvision does; the last convolution keeps its 1280), 64x64 input.
def mobilenet_v2_small():
    from torchvision.models import MobileNetV2
    return MobileNetV2(num_classes=10, width_mult=0.25)


case("mobilenet_v2",
     [input_edit(64), classes_edit(10), ("stem = 32;", "stem = 8;"),
      ("c = [16, 24, 32, 64, 96,  160, 320];", "c = [8, 8, 8, 16, 24, 40, 80];")],
     mobilenet_v2_small, 64)


# DenseNet-121: torchvision's DenseNet with growth rate 8 and a 16-channel
# stem (the 6, 12, 24, 16 layers kept), 64x64 input.
def densenet121_small():
    from torchvision.models import DenseNet
    return DenseNet(growth_rate=8, block_config=(6, 12, 24, 16), num_init_features=16,
                    bn_size=4, num_classes=10)


case("densenet121",
     [input_edit(64), classes_edit(10), ("stem = 64;", "stem = 16;"),
      ("growth = 32;", "growth = 8;")],
     densenet121_small, 64)


# ShuffleNetV2: torchvision's class with 8, 16, 32, 64, 128 channels (the
# 4, 8, 4 units kept), 64x64 input.
SHUFFLE_SMALL = [8, 16, 32, 64, 128]


def shufflenet_small():
    from torchvision.models import ShuffleNetV2
    return ShuffleNetV2([4, 8, 4], SHUFFLE_SMALL, num_classes=10)


case("shufflenet_v2_x1_0",
     [input_edit(64), classes_edit(10),
      ("widths = [24, 116, 232, 464, 1024];", f"widths = {shape_str(SHUFFLE_SMALL)};")],
     shufflenet_small, 64)


# EfficientNet-B0: torchvision's class at width 0.25 (its own channel
# rounding; the block counts kept), 96x96 input (a 3x3 map under the last
# 5x5 depthwise convolutions: on 2x2 some of its rows would see only padding).
def efficientnet_small_conf():
    from torchvision.models.efficientnet import _efficientnet_conf
    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=1.0)
    return setting, last


def efficientnet_small():
    from torchvision.models.efficientnet import EfficientNet
    setting, last = efficientnet_small_conf()
    return EfficientNet(setting, 0.2, last_channel=last, num_classes=10)


def efficientnet_small_edits():
    setting, last = efficientnet_small_conf()
    last = last or 4 * setting[-1].out_channels
    return [input_edit(96), classes_edit(10),
            ("stem = 32;", f"stem = {setting[0].input_channels};"),
            ("last = 1280;", f"last = {last};"),
            ("widths  = [16, 24, 40, 80, 112, 192, 320];",
             f"widths  = {shape_str([c.out_channels for c in setting])};")]


case("efficientnet_b0", efficientnet_small_edits(), efficientnet_small, 96)


# AlexNet: widths 16, 48, 96, 64, 64, fully connected 128; a 160x160 input
# leaves 4x4 before the adaptive pool, which pools to 3x3 here (overlapping
# windows), not to 6x6.
ALEX_SMALL = [16, 48, 96, 64, 64]
case("alexnet",
     [input_edit(160), classes_edit(10),
      ("widths = [64, 192, 384, 256, 256];", f"widths = {shape_str(ALEX_SMALL)};"),
      ("fc = 4096;", "fc = 128;"),
      ("adaptive_avgpool(x, [6, 6])", "adaptive_avgpool(x, [3, 3])")],
     lambda: he_init(zr.AlexNet(ALEX_SMALL, fc=128, num_classes=10, pool=3)), 160)

# VGG-16 and VGG-16-BN: widths 8 to 64, fully connected 64; a 64x64 input
# leaves 2x2 before the adaptive pool, which pools to 3x3 here.
VGG_SMALL = [8, 16, 32, 64, 64]
for bn in (False, True):
    case("vgg16_bn" if bn else "vgg16",
         [input_edit(64), classes_edit(10),
          ("[64, 128, 256, 512, 512]", shape_str(VGG_SMALL)),
          ("fc = 4096;", "fc = 64;"),
          ("adaptive_avgpool(x, [7, 7])", "adaptive_avgpool(x, [3, 3])")],
         (lambda bn=bn: zr.VGG(VGG_SMALL, fc=64, num_classes=10, bn=bn, pool=3)), 64)


# GoogLeNet: every width divided by 8 (torchvision's Inception blocks), an
# 80x80 input: the ceil-mode pools give 40 -> 20 -> 10 -> 5 -> 3.
def googlenet_edits():
    eds = [input_edit(80), classes_edit(10), ("stem = [64, 64, 192];", "stem = [8, 8, 24];")]
    for name, chans in zr.GOOGLENET_INCEPTIONS:
        eds.append((f"i{name} = {shape_str(chans)};", f"i{name} = {shape_str([c // 8 for c in chans])};"))
    return eds


case("googlenet", googlenet_edits(), lambda: zr.GoogLeNet(div=8, num_classes=10), 80)

# ZFNet: widths 12, 32, 48, 48, 32, fully connected 64, 112x112 input
# (maps 54, 27, 12, 6, 2).
ZF_SMALL = [12, 32, 48, 48, 32]
case("zfnet",
     [input_edit(112), classes_edit(10),
      ("widths = [96, 256, 384, 384, 256];", f"widths = {shape_str(ZF_SMALL)};"),
      ("fc = 4096;", "fc = 64;")],
     lambda: zr.zfnet(ZF_SMALL, fc=64, num_classes=10, size=112), 112)

# FCN-ResNet50: the bottleneck trunk with the 3, 4, 6, 3 blocks and the
# dilation kept, widths 8 (stem) and 4, 8, 16, 32 (x 4 out), 5 classes, under
# torchvision's FCN head; a 60x60 input gives 8x8 scores, upsampled by 7.5.
FCN_PLANES = [4, 8, 16, 32]
case("fcn_resnet50",
     [input_edit(60), ("classes = 21;", "classes = 5;"), ("stem = 64;", "stem = 8;"),
      ("planes = [64, 128, 256, 512];", f"planes = {shape_str(FCN_PLANES)};")],
     lambda: zr.fcn(8, FCN_PLANES, (3, 4, 6, 3), num_classes=5), 60,
     output="out", prepare=zr.damp_residual_branches)


# YOLOv3-tiny: widths divided by 4 (4 to 256; heads 64, 128, 32, 64), 3
# classes, a 160x160 input (grids 5x5 and 10x10, 375 boxes).  nms decides
# by thresholds: the case must keep every box's score and every same-class
# overlap clear of them by more than rounding, or netc could rightly keep
# another box.
def yolo_check(ys):
    notes = []
    for det, boxes in zip(ys["detections"], ys["boxes"]):
        ms, mi = zr.nms_margins(det, 0.45, 0.25)
        kept = int((boxes[:, 5] >= 0).sum())
        assert ms > 1e-5 and mi > 1e-5 and 0 < kept < len(boxes), (ms, mi, kept)
        notes.append(f"{kept} boxes kept, margins {ms:.1g} {mi:.1g}")
    return "; " + ", ".join(notes)


case("yolov3_tiny",
     [("input image: [3, 416, 416];", "input image: [3, 160, 160];"),
      ("classes = 80;", "classes = 3;"),
      ("widths = [16, 32, 64, 128, 256, 512, 1024];", "widths = [4, 8, 16, 32, 64, 128, 256];"),
      ("heads = [256, 512, 128, 256];", "heads = [64, 128, 32, 64];")],
     lambda: zr.YoloV3Tiny((4, 8, 16, 32, 64, 128, 256), (64, 128, 32, 64), num_classes=3), 160,
     output=["detections", "boxes"], check=yolo_check)


# ResNet-34, ResNet-50 and ResNeXt-50 (32x4d): tools/zoo_reference.py's
# ResNet (torchvision's, with its stem and stage widths as parameters) with
# the 3, 4, 6, 3 blocks kept, 10 classes, a 48x48 input (maps 24, 12, 12, 6,
# 3, 2: the stride-2 stages of the last two see odd sizes).  ResNet-34:
# widths 4, 8, 16, 32 and a 4-channel stem, so that layer1.0 has no
# downsample as at full size.  ResNet-50: planes 4, 8, 16, 32 (x 4 out) and
# an 8-channel stem.  ResNeXt-50 keeps its 32 groups, which need 32 channels
# at least in each 3x3 convolution: planes 4, 8, 8, 16 with width_per_group
# 16 give widths 32, 64, 64, 128, that is 1, 2, 2 and 4 channels per group
# (planes 4, 8, 16, 32 would double the case's weights for little).  The
# bottleneck trunks get their residual branches damped as FCN-ResNet50's.
def resnet_small(model, **kw):
    m = zr.resnet(model, num_classes=10, **kw)
    with torch.random.fork_rng():   # the check draws its weights from torch's generator
        zr.check_resnet(model)
    return m


def resnet_edits(stem, planes_text, planes):
    return [input_edit(48), ("linear(x, 1000)", "linear(x, 10)"),
            ("conv(image, 64, 7,", f"conv(image, {stem}, 7,"),
            (f"{planes_text} = [64, 128, 256, 512];", f"{planes_text} = {shape_str(planes)};")]


R34_WIDTHS = [4, 8, 16, 32]
case("resnet34", resnet_edits(R34_WIDTHS[0], "widths", R34_WIDTHS),
     lambda: resnet_small("resnet34", stem=R34_WIDTHS[0], planes=R34_WIDTHS), 48)

R50_PLANES = [4, 8, 16, 32]
case("resnet50", resnet_edits(8, "planes", R50_PLANES),
     lambda: resnet_small("resnet50", stem=8, planes=R50_PLANES), 48,
     prepare=zr.damp_residual_branches)

RESNEXT_PLANES = [4, 8, 8, 16]
case("resnext50_32x4d",
     resnet_edits(8, "planes", RESNEXT_PLANES)
     + [("groups = 32, width_per_group = 4)", "groups = 32, width_per_group = 16)")],
     lambda: resnet_small("resnext50_32x4d", stem=8, planes=RESNEXT_PLANES, width_per_group=16), 48,
     prepare=zr.damp_residual_branches)


# ---------------------------------------------------------------- generation

def seed_of(name):
    return zlib.crc32(name.encode("utf-8"))


def program(c):
    with open(os.path.join(ROOT, "examples", f"{c.model}.net")) as f:
        text = f.read()
    for old, new in c.edits:
        assert text.count(old) == 1, (c.model, old)
        text = text.replace(old, new)
    edited = ", ".join(new for _, new in c.edits)
    return (f"# examples/{c.model}.net with only its numbers changed (golden case {c.name}):\n"
            f"# {edited}\n" + text)


def find_netc():
    for d in ("build-zoo", "build"):
        p = os.path.join(ROOT, d, "netc")
        if os.access(p, os.X_OK):
            return p
    return None


def forward(c, m, x):
    """{output name: tensor}, in the net's order."""
    y = m(x)
    if isinstance(y, dict):
        return {k: y[k] for k in c.outputs}
    return {c.outputs[0]: y}


def generate(c, netc):
    d = os.path.join(HERE, c.name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    torch.manual_seed(seed_of(c.name))
    gen = torch.Generator().manual_seed(seed_of(c.name) + 1)

    m = c.build()
    sd = m.state_dict()
    t2s.randomize_batchnorm(sd, gen)
    if c.prepare:
        c.prepare(m)
    zr.calibrate_batchnorm(m, torch.randn([4, 3, c.size, c.size], generator=gen))
    params = t2s.float_params(sd, warn=False)
    params_text = "".join(f"{k} {shape_str(v.shape)}\n" for k, v in params)

    x = torch.randn([c.samples, 3, c.size, c.size], generator=gen)
    with torch.no_grad():
        ys = forward(c, m.double(), x.double())
        ys32 = forward(c, m.float(), x)
    y = ys[c.outputs[0]]
    scale = float(y.abs().max())
    err = max(float((ys32[k].double() - v).abs().max()) / float(v.abs().max()) for k, v in ys.items())
    # the output must depend on the input: the samples' outputs differ
    spread = float((y[0] - y[1]).abs().max()) / scale
    assert np.isfinite(scale) and scale > 0 and spread > 1e-3, (c.name, scale, spread)
    note = c.check(ys) if c.check else ""

    with open(os.path.join(d, "model.net"), "w") as f:
        f.write(program(c))
    with open(os.path.join(d, "batch"), "w") as f:
        f.write(f"{c.batch}\n")
    with open(os.path.join(d, "expected_params.txt"), "w") as f:
        f.write(params_text)
    t2s.write_safetensors(os.path.join(d, "weights.safetensors"), params)
    np.save(os.path.join(d, "input_image.npy"), x.numpy().astype("<f4"))
    for k, v in ys.items():
        np.save(os.path.join(d, f"expected_{k}.npy"), v.float().numpy().astype("<f4"))

    check = "netc not built: parameter list not checked"
    if netc:
        p = subprocess.run([netc, "params", os.path.join(d, "model.net")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode()
        if p.returncode != 0 or out != params_text:
            check = "netc params DIFFERS from the module:\n" + out[-2000:]
        else:
            check = "netc params agree"
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    n = sum(v.numel() for k, v in params if not k.endswith(("running_mean", "running_var")))
    print(f"{c.name:28s} params={n:8d} max|y|={scale:8.3g} spread={spread:.2g} "
          f"f32err={err:.2g} {size} bytes; {check}{note}")
    return "DIFFERS" not in check


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", metavar="CASE", help="one case (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    args = ap.parse_args()
    names = [c.name for c in CASES]
    if args.list:
        print("\n".join(names))
        return 0
    for n in args.only or []:
        if n not in names:
            sys.exit(f"gen_zoo.py: unknown case {n!r} (cases: {', '.join(names)})")
    torch.set_num_threads(1)
    netc = find_netc()
    ok = True
    for c in CASES:
        if not args.only or c.name in args.only:
            ok = generate(c, netc) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
