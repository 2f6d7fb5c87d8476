#!/usr/bin/python3
"""ONNX round-trip cases for `netc import`, from PyTorch.

Each case is a small PyTorch module exported with torch.onnx.export (which
needs no `onnx` Python package in torch 1.13) into tests/onnx/<case>/:

    model.onnx             the exported model, batch 2
    input_<name>.npy       an input, float32
    expected_<name>.npy    PyTorch's output on it (eval mode, float32)
    batch                  the batch size (2; 1 for AlexNet, ZFNet and YOLOv3-tiny, whose inputs are large)
    expected_params.txt    the state_dict's names and shapes, sorted (cases
                           exported with the batchnorms kept: the imported
                           net must name its parameters as PyTorch does)

run_case.sh imports, builds, runs and compares within 1e-4 (npycmp).  The
zoo cases are the zoo's reference modules (tools/zoo_reference.py,
torchvision) at widths reduced further than tests/golden/gen_zoo.py's, so
that the files stay small.

    /usr/bin/python3 tests/onnx/gen.py [--only CASE]
"""
import argparse
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import torch2safetensors as t2s  # noqa: E402
import zoo_reference as zr  # noqa: E402

BATCH = 2


class LeNet5(nn.Module):
    """examples/lenet5.net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.conv3 = nn.Conv2d(16, 120, 5)
        self.fc1 = nn.Linear(120, 84)
        self.fc2 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.flatten(torch.tanh(self.conv3(x)), 1)
        return self.fc2(torch.tanh(self.fc1(x)))


class ResBlocks(nn.Module):
    """A small ResNet-style net: conv, batchnorm, relu, residual adds (one
    with a 1x1 projection), max and global average pooling, a linear head."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(16)
        self.proj = nn.Conv2d(8, 16, 1, stride=2, bias=False)
        self.proj_bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = F.relu(x + self.bn2(self.conv2(x)))
        x = F.relu(self.proj_bn(self.proj(x)) + self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, c, expand):
        super().__init__()
        h = c * expand
        self.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6())
        self.se_reduce = nn.Conv2d(h, 4, 1)
        self.se_expand = nn.Conv2d(4, h, 1)
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        y = self.dw(self.expand(x))
        s = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(F.adaptive_avg_pool2d(y, 1)))))
        return x + self.project(y * s)


class MobileBlocks(nn.Module):
    """MobileNetV2/V3-style: relu6 (Clip), depthwise convs, inverted
    residuals with squeeze-excitation (hardsigmoid gate, Mul), hardswish."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.block1 = InvertedResidual(8, 3)
        self.block2 = InvertedResidual(8, 2)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class OpsA(nn.Module):
    """The remaining ops, one or two each: ConvTranspose, LeakyRelu, Elu,
    Sigmoid, Tanh, Concat, Split and Slice on channels, MaxPool with
    ceil_mode, AveragePool with padding not counted, GlobalMaxPool, Pad,
    Resize (nearest and bilinear), InstanceNormalization, Softmax,
    LogSoftmax, Reshape, Dropout, MatMul (a linear without bias)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.up = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.seg = nn.Conv2d(12, 3, 1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(12 * 4 * 4, 6, bias=False)

    def forward(self, x):
        x = self.conv(x)                                          # [6, 8, 8]
        a, b = torch.split(x, [2, 4], dim=1)
        a = F.leaky_relu(a, 0.2)
        b = F.elu(b[:, 1:4], 0.7)                                 # Slice: [3, 8, 8]
        y = torch.cat([a, b, torch.sigmoid(x[:, 5:6])], dim=1)    # [6, 8, 8]
        u = self.inorm(self.up(y))                                # [4, 16, 16]
        u = torch.tanh(u)
        m = F.max_pool2d(u, 3, stride=2, ceil_mode=True)          # [4, 8, 8]
        p = F.avg_pool2d(F.pad(u, (1, 0, 2, 1)), 3, stride=2, padding=1, count_include_pad=False)
        p = F.interpolate(p, size=(8, 8), mode="bilinear", align_corners=False)
        n = F.interpolate(F.adaptive_max_pool2d(y, 1), scale_factor=8, mode="nearest")[:, :4]
        z = torch.cat([m, p, n], dim=1)                           # [12, 8, 8]
        seg = F.softmax(self.seg(z), dim=1)
        f = self.drop(F.avg_pool2d(z, 2)).reshape(x.shape[0], -1)
        return seg, F.log_softmax(self.fc(f), dim=1)


def shufflenet_small():
    from torchvision.models import ShuffleNetV2
    return ShuffleNetV2([2, 2, 2], [4, 8, 16, 32, 64], num_classes=10)


class YoloHeads(zr.YoloV3Tiny):
    """YOLOv3-tiny up to its two heads (layers 15 and 22, before yolo_decode):
    what the ONNX round trip compares.  The decoding and the nms after them
    are netc's own ops (yolo_decode, nms), which ONNX writes as a view,
    permute, grid arithmetic and NonMaxSuppression over data-dependent
    shapes: docs/interop.md says why they are not imported."""

    def forward(self, image):
        return self.heads(image)


def resnet18_small():
    from torchvision.models.resnet import BasicBlock
    return zr.ResNet(BasicBlock, (2, 2, 2, 2), stem=4, planes=(2, 2, 4, 4), num_classes=10)


def densenet121_small():
    from torchvision.models import DenseNet
    return DenseNet(growth_rate=2, block_config=(6, 12, 24, 16), num_init_features=4, bn_size=1, num_classes=10)


def efficientnet_small():
    """torchvision's EfficientNet-B0 (its 16 MBConv blocks, kernels, strides
    and expansions) with a 4-channel stem and stages of 4, 4, 4, 4, 8, 8, 8
    channels (its width_mult rounds to 8 at least)."""
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=1.0)
    cin = 4
    for cfg, width in zip(setting, (4, 4, 4, 4, 8, 8, 8)):
        cfg.input_channels, cfg.out_channels, cin = cin, width, width
    return EfficientNet(setting, 0.2, last_channel=last, num_classes=10)


def mobilenet_v2_small():
    """torchvision's MobileNetV2 at width 0.05 (channels multiples of 2), its
    last 1x1 conv (1280 channels at every width) down to 16."""
    from torchvision.models import MobileNetV2
    from torchvision.ops.misc import Conv2dNormActivation
    m = MobileNetV2(num_classes=10, width_mult=0.05, round_nearest=2)
    last = m.features[-1][0]
    m.features[-1] = Conv2dNormActivation(last.in_channels, 16, kernel_size=1, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(16, 10)
    return m


def randomize_norms(m, gen):
    """Batchnorm statistics and affine parameters away from their defaults,
    so that the test sees them: tools/torch2safetensors.py's
    randomize_batchnorm (the zoo's conformance run does the same), then the
    affine instance norms' weight and bias, which have no running statistics."""
    t2s.randomize_batchnorm(m.state_dict(keep_vars=False), gen)
    for mod in m.modules():
        if isinstance(mod, nn.InstanceNorm2d) and mod.affine:
            c = mod.num_features
            mod.weight.data.copy_(1 + 0.2 * torch.randn(c, generator=gen))
            mod.bias.data.copy_(0.2 * torch.randn(c, generator=gen))


class Case:
    def __init__(self, name, build, shape, inputs=("image",), outputs=("logits",), keep_bn=True, opset=14, batch=BATCH,
                 calibrate=False):
        self.name, self.build, self.shape, self.batch, self.calibrate = name, build, shape, batch, calibrate
        self.inputs, self.outputs, self.keep_bn, self.opset = inputs, outputs, keep_bn, opset


CASES = [
    Case("lenet5", LeNet5, (1, 28, 28)),
    Case("resblocks", ResBlocks, (3, 16, 16)),
    # the same net exported as torch.onnx.export does by default: batchnorms
    # folded into the convs, parameters named onnx::Conv_...
    Case("resblocks_folded", ResBlocks, (3, 16, 16), keep_bn=False),
    Case("mobile_blocks", MobileBlocks, (3, 16, 16)),
    Case("ops_a", OpsA, (3, 8, 8), outputs=("seg", "logits")),
    # the zoo's reference modules, reduced
    Case("zoo_resnet50", lambda: zr.resnet("resnet50", stem=4, planes=(2, 2, 4, 4), num_classes=10), (3, 32, 32)),
    Case("zoo_googlenet", lambda: zr.GoogLeNet(div=32, num_classes=10), (3, 32, 32)),
    # the FCN returns a dict, {"out": ...}: the export writes its value
    Case("zoo_fcn_resnet50", lambda: zr.fcn(stem=4, planes=(2, 2, 2, 2), blocks=(1, 1, 1, 1), num_classes=3),
         (3, 16, 16), outputs=("out",), calibrate=True),
    # AlexNet needs 63 pixels or more: batch 1 keeps the input small
    Case("zoo_alexnet", lambda: zr.AlexNet((4, 8, 8, 8, 8), fc=16, num_classes=10, pool=1), (3, 64, 64), batch=1),
    Case("zoo_vgg16_bn", lambda: zr.VGG((2, 4, 4, 8, 8), fc=16, num_classes=10, bn=True, pool=1), (3, 32, 32)),
    Case("zoo_shufflenet_v2", lambda: shufflenet_small(), (3, 32, 32), calibrate=True),
    Case("zoo_mobilenet_v1", lambda: zr.MobileNetV1(stem=4, widths=[max(2, w // 32) for w in zr.V1_WIDTHS],
                                                    num_classes=10), (3, 32, 32), calibrate=True),
    Case("zoo_resnet18", resnet18_small, (3, 32, 32)),
    Case("zoo_resnet34", lambda: zr.resnet("resnet34", stem=4, planes=(2, 2, 4, 4), num_classes=10), (3, 32, 32),
         calibrate=True),
    # ResNeXt keeps its 32 groups: one channel per group in every 3x3 conv
    Case("zoo_resnext50_32x4d", lambda: zr.resnet("resnext50_32x4d", stem=4, planes=(2, 2, 2, 2), width_per_group=32,
                                                  num_classes=10), (3, 32, 32)),
    Case("zoo_vgg16", lambda: zr.VGG((2, 4, 4, 8, 8), fc=16, num_classes=10, bn=False, pool=1), (3, 32, 32)),
    Case("zoo_mobilenet_v2", mobilenet_v2_small, (3, 32, 32), calibrate=True),
    Case("zoo_densenet121", densenet121_small, (3, 32, 32)),
    Case("zoo_efficientnet_b0", efficientnet_small, (3, 32, 32), calibrate=True),
    # LocalResponseNorm as PyTorch exports it (a composition the importer
    # recognizes); 3 x 3 before the last pool
    Case("zoo_zfnet", lambda: zr.zfnet((4, 8, 8, 8, 8), fc=16, num_classes=10, size=64), (3, 64, 64), batch=1),
    Case("zoo_yolov3_tiny", lambda: YoloHeads((2, 4, 4, 8, 8, 16, 16), (8, 16, 4, 8), num_classes=3),
         (3, 64, 64), batch=1, outputs=("coarse", "fine")),
]


def seed_of(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def generate(c):
    d = os.path.join(HERE, c.name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    torch.manual_seed(seed_of(c.name))
    gen = torch.Generator().manual_seed(seed_of(c.name) + 1)
    m = c.build()
    with torch.no_grad():
        randomize_norms(m, gen)
    if c.calibrate:
        # running statistics of a random batch (as the conformance run does):
        # with random ones, these nets' outputs hardly depend on the input
        zr.calibrate_batchnorm(m, torch.randn((4,) + tuple(c.shape), generator=gen))
    m.eval()
    x = torch.randn((c.batch,) + tuple(c.shape), generator=gen)
    with torch.no_grad():
        ys = m(x)
    ys = tuple(ys[k] for k in c.outputs) if isinstance(ys, dict) else ys if isinstance(ys, tuple) else (ys,)
    mode = torch.onnx.TrainingMode.PRESERVE if c.keep_bn else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(m, x, os.path.join(d, "model.onnx"), opset_version=c.opset, training=mode,
                      input_names=list(c.inputs), output_names=list(c.outputs))
    np.save(os.path.join(d, f"input_{c.inputs[0]}.npy"), x.numpy().astype("<f4"))
    for name, y in zip(c.outputs, ys):
        np.save(os.path.join(d, f"expected_{name}.npy"), y.numpy().astype("<f4"))
    with open(os.path.join(d, "batch"), "w") as f:
        f.write(f"{c.batch}\n")
    if c.keep_bn:
        with open(os.path.join(d, "expected_params.txt"), "w") as f:
            for k, v in sorted(m.state_dict().items()):
                if not k.endswith("num_batches_tracked"):
                    f.write(f"{k} [{', '.join(str(s) for s in v.shape)}]\n")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{c.name}: {size} bytes")


# ---- a hand-written model: the ops PyTorch's exporter does not write (LRN,
# GlobalMaxPool, Identity, Constant, Dropout with a ratio, Softplus,
# HardSigmoid, auto_pad SAME_UPPER, Gemm with transB 0, alpha and beta, MatMul
# followed by Add), in protobuf's text format, encoded by protoc-c with
# Debian's onnx.proto; its expected outputs are PyTorch's functional ops.

def tensor_text(name, a):
    a = np.asarray(a, dtype=np.float32)
    dims = " ".join(f"dims: {d}" for d in a.shape)
    vals = " ".join(f"float_data: {float(v)!r}" for v in a.reshape(-1))
    return f'initializer {{ name: "{name}" {dims} data_type: 1 {vals} }}'


def hand_ops():
    import subprocess
    name = "hand_ops"
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(seed_of(name))
    x = torch.randn(BATCH, 4, 6, 6, generator=gen)
    w_conv = torch.randn(3, 4, 3, 3, generator=gen) * 0.3
    b_conv = torch.randn(3, generator=gen) * 0.1
    w_gemm = torch.randn(27, 5, generator=gen) * 0.3     # transB 0: [D, out]
    b_gemm = torch.randn(5, generator=gen) * 0.1
    w_mm = torch.randn(27, 4, generator=gen) * 0.3
    b_mm = torch.randn(4, generator=gen) * 0.1
    # PyTorch's reference
    a = F.local_response_norm(x, 3, alpha=1e-2, beta=0.75, k=2.0)
    m = a * torch.amax(a, dim=(2, 3), keepdim=True)
    h = F.hardsigmoid(F.softplus(m))
    c = F.conv2d(F.pad(h, (0, 1, 0, 1)), w_conv, b_conv, stride=2)
    f = torch.flatten(c, 1)
    logits = torch.clamp(0.5 * f @ w_gemm + 2.0 * b_gemm, 0, 6)
    aux = f @ w_mm + b_mm
    dims4 = " ".join(f"dim {{ dim_value: {v} }}" for v in x.shape)
    text = f"""
ir_version: 7
producer_name: "tests/onnx/gen.py"
opset_import {{ version: 13 }}
graph {{
  name: "hand_ops"
  input {{ name: "image" type {{ tensor_type {{ elem_type: 1 shape {{ {dims4} }} }} }} }}
  output {{ name: "logits" type {{ tensor_type {{ elem_type: 1 }} }} }}
  output {{ name: "aux" type {{ tensor_type {{ elem_type: 1 }} }} }}
  {tensor_text("conv.weight", w_conv)}
  {tensor_text("conv.bias", b_conv)}
  {tensor_text("fc.weight", w_gemm)}
  {tensor_text("fc.bias", b_gemm)}
  {tensor_text("aux_w", w_mm)}
  {tensor_text("aux_b", b_mm)}
  initializer {{ name: "ratio" data_type: 1 float_data: 0.25 }}
  node {{ name: "lrn" op_type: "LRN" input: "image" output: "a"
          attribute {{ name: "size" type: INT i: 3 }} attribute {{ name: "alpha" type: FLOAT f: 0.01 }}
          attribute {{ name: "beta" type: FLOAT f: 0.75 }} attribute {{ name: "bias" type: FLOAT f: 2.0 }} }}
  node {{ name: "gmax" op_type: "GlobalMaxPool" input: "a" output: "g" }}
  node {{ name: "gate" op_type: "Mul" input: "a" input: "g" output: "m" }}
  node {{ name: "same" op_type: "Identity" input: "m" output: "m2" }}
  node {{ name: "drop" op_type: "Dropout" input: "m2" input: "ratio" output: "dr" }}
  node {{ name: "sp" op_type: "Softplus" input: "dr" output: "s" }}
  node {{ name: "hs" op_type: "HardSigmoid" input: "s" output: "h"
          attribute {{ name: "alpha" type: FLOAT f: 0.16666667 }} attribute {{ name: "beta" type: FLOAT f: 0.5 }} }}
  node {{ name: "conv" op_type: "Conv" input: "h" input: "conv.weight" input: "conv.bias" output: "c"
          attribute {{ name: "strides" type: INTS ints: 2 ints: 2 }}
          attribute {{ name: "auto_pad" type: STRING s: "SAME_UPPER" }} }}
  node {{ name: "flat" op_type: "Flatten" input: "c" output: "f" }}
  node {{ name: "fc" op_type: "Gemm" input: "f" input: "fc.weight" input: "fc.bias" output: "y"
          attribute {{ name: "alpha" type: FLOAT f: 0.5 }} attribute {{ name: "beta" type: FLOAT f: 2.0 }} }}
  node {{ name: "lo" op_type: "Constant" output: "zero" attribute {{ name: "value_float" type: FLOAT f: 0 }} }}
  node {{ name: "hi" op_type: "Constant" output: "six"
          attribute {{ name: "value" type: TENSOR t {{ data_type: 1 float_data: 6 }} }} }}
  node {{ name: "clip" op_type: "Clip" input: "y" input: "zero" input: "six" output: "logits" }}
  node {{ name: "mm" op_type: "MatMul" input: "f" input: "aux_w" output: "p" }}
  node {{ name: "mm_bias" op_type: "Add" input: "p" input: "aux_b" output: "aux" }}
}}
"""
    r = subprocess.run(["protoc-c", "--encode=onnx.ModelProto", "-I/usr/include/onnx", "/usr/include/onnx/onnx.proto"],
                       input=text.encode(), capture_output=True, check=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(r.stdout)
    np.save(os.path.join(d, "input_image.npy"), x.numpy().astype("<f4"))
    np.save(os.path.join(d, "expected_logits.npy"), logits.numpy().astype("<f4"))
    np.save(os.path.join(d, "expected_aux.npy"), aux.numpy().astype("<f4"))
    with open(os.path.join(d, "batch"), "w") as f:
        f.write(f"{BATCH}\n")
    print(f"{name}: {sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    a = ap.parse_args()
    for c in CASES:
        if a.only and c.name != a.only:
            continue
        generate(c)
    if not a.only or a.only == "hand_ops":
        hand_ops()


if __name__ == "__main__":
    main()
