"""PyTorch reference modules for the zoo models torchvision lacks, and
configurable versions of those whose torchvision class fixes its widths.

Every module here names its parameters as the matching examples/<model>.net
does, so its state_dict loads into the netc program as is:

  MobileNetV1      examples/mobilenet_v1.net (no torchvision model: our names)
  ZFNet            examples/zfnet.net (no torchvision model: our names)
  AlexNet          torchvision's alexnet with its widths as parameters
  VGG              torchvision's vgg16 / vgg16_bn with widths as parameters
  GoogLeNet        torchvision's googlenet (aux_logits=False) with widths as
                   parameters, built from torchvision's own Inception and
                   BasicConv2d blocks
  Backbone         a ResNet bottleneck backbone with torchvision's names and
                   its dilation rule, for torchvision's FCN head
  ResNet           torchvision's ResNet (resnet34, resnet50, resnext50_32x4d)
                   with its stem and stage widths as parameters

tools/conformance.py builds the full-size ones; tests/golden/gen_zoo.py the
reduced variants.  Imported by both; needs python3-torch and torchvision.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------ MobileNetV1

V1_WIDTHS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
V1_STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


class Separable(nn.Module):
    """A depthwise separable unit: 3x3 depthwise conv, BN, ReLU, 1x1 conv, BN, ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False)
        self.dw_bn = nn.BatchNorm2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(self.dw_bn(self.dw(x)))
        return F.relu(self.pw_bn(self.pw(x)))


class MobileNetV1(nn.Module):
    """Howard et al. 2017, table 1 (the 7x7 depthwise unit at stride 1)."""

    def __init__(self, stem=32, widths=V1_WIDTHS, strides=V1_STRIDES, num_classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        units, cin = [], stem
        for w, s in zip(widths, strides):
            units.append(Separable(cin, w, s))
            cin = w
        self.blocks = nn.Sequential(*units)
        self.classifier = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ------------------------------------------------------------------------ ZFNet

class ZFNet(nn.Module):
    """Zeiler and Fergus 2014, figure 3: AlexNet's layout with a 7x7 stride-2
    first layer and a stride-2 second layer; local response normalization
    (AlexNet's constants) after the first two pooling layers.  Indices in
    `features` and `classifier` count every layer, as torchvision's AlexNet."""

    def __init__(self, widths=(96, 256, 384, 384, 256), fc=4096, num_classes=1000, size=224, lrn=True):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        norm = (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)) if lrn else nn.Identity
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 7, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1), norm(),
            nn.Conv2d(c1, c2, 5, stride=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1), norm(),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2))
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 3, size, size)).numel()
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(flat, fc), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(fc, fc), nn.ReLU(inplace=True),
            nn.Linear(fc, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def zfnet(widths=(96, 256, 384, 384, 256), fc=4096, num_classes=1000, size=224, lrn=True):
    m = ZFNet(widths, fc, num_classes, size, lrn)
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(mod.bias)
    return m


# ---------------------------------------------------------------------- AlexNet

class AlexNet(nn.Module):
    """torchvision.models.AlexNet with its widths as parameters (same names)."""

    def __init__(self, widths=(64, 192, 384, 256, 256), fc=4096, num_classes=1000, pool=6):
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(c5 * pool * pool, fc), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(fc, fc), nn.ReLU(inplace=True),
            nn.Linear(fc, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# -------------------------------------------------------------------------- VGG

class VGG(nn.Module):
    """torchvision.models.VGG (configuration D) with widths as parameters."""

    def __init__(self, widths=(64, 128, 256, 512, 512), convs=(2, 2, 3, 3, 3), fc=4096,
                 num_classes=1000, bn=False, pool=7):
        super().__init__()
        layers, cin = [], 3
        for w, n in zip(widths, convs):
            for _ in range(n):
                layers.append(nn.Conv2d(cin, w, 3, padding=1))
                if bn:
                    layers.append(nn.BatchNorm2d(w))
                layers.append(nn.ReLU(inplace=True))
                cin = w
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Linear(cin * pool * pool, fc), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(fc, fc), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(fc, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# -------------------------------------------------------------------- GoogLeNet

# torchvision's channel table: (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
GOOGLENET_INCEPTIONS = [
    ("3a", (64, 96, 128, 16, 32, 32)), ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)), ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)), ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("5a", (256, 160, 320, 32, 128, 128)), ("5b", (384, 192, 384, 48, 128, 128)),
]


class GoogLeNet(nn.Module):
    """torchvision.models.GoogLeNet(aux_logits=False, transform_input=False)
    with every width divided by `div`, from torchvision's own blocks."""

    def __init__(self, div=1, num_classes=1000):
        super().__init__()
        from torchvision.models.googlenet import BasicConv2d, Inception
        d = lambda c: max(1, c // div)  # noqa: E731
        self.conv1 = BasicConv2d(3, d(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(d(64), d(64), kernel_size=1)
        self.conv3 = BasicConv2d(d(64), d(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        cin = d(192)
        for name, chans in GOOGLENET_INCEPTIONS:
            c = [d(v) for v in chans]
            self.add_module("inception" + name, Inception(cin, *c))
            cin = c[0] + c[2] + c[4] + c[5]
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.inception3b(self.inception3a(x))
        x = self.maxpool3(x)
        for n in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, "inception" + n)(x)
        x = self.maxpool4(x)
        x = self.inception5b(self.inception5a(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------------- FCN

class Backbone(nn.Module):
    """torchvision's ResNet trunk (conv1, bn1, layer1..4, no fc) with
    Bottleneck blocks, widths as parameters and replace_stride_with_dilation;
    returns {"out": layer4's output} as IntermediateLayerGetter does."""

    def __init__(self, stem=64, planes=(64, 128, 256, 512), blocks=(3, 4, 6, 3),
                 dilate=(False, True, True)):
        super().__init__()
        from torchvision.models.resnet import Bottleneck
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.inplanes, self.dilation = stem, 1
        for i in range(4):
            stride = 1 if i == 0 else 2
            previous = self.dilation
            if i > 0 and dilate[i - 1]:
                self.dilation *= stride
                stride = 1
            down = None
            if stride != 1 or self.inplanes != planes[i] * 4:
                down = nn.Sequential(nn.Conv2d(self.inplanes, planes[i] * 4, 1, stride=stride, bias=False),
                                     nn.BatchNorm2d(planes[i] * 4))
            layer = [Bottleneck(self.inplanes, planes[i], stride, down, dilation=previous)]
            self.inplanes = planes[i] * 4
            for _ in range(1, blocks[i]):
                layer.append(Bottleneck(self.inplanes, planes[i], dilation=self.dilation))
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return {"out": x}


def fcn(stem=64, planes=(64, 128, 256, 512), blocks=(3, 4, 6, 3), num_classes=21):
    """torchvision's FCN (its FCN and FCNHead classes) on Backbone; at the
    default sizes its state_dict is fcn_resnet50(aux_loss=False)'s."""
    from torchvision.models.segmentation.fcn import FCN, FCNHead
    return FCN(Backbone(stem, planes, blocks), FCNHead(planes[3] * 4, num_classes))


# ------------------------------------------------------------------- ResNet

class ResNet(nn.Module):
    """torchvision.models.resnet.ResNet with the stem's channels and the
    stages' planes as parameters (torchvision fixes them at 64 and 64, 128,
    256, 512): its module names, its blocks (torchvision's BasicBlock or
    Bottleneck, `groups` and `width_per_group` passed on as its
    width_per_group), its downsample rule and its initialization.  At the
    default sizes its state_dict is resnet34's (BasicBlock, 3, 4, 6, 3),
    resnet50's (Bottleneck, 3, 4, 6, 3) or, with groups=32 and
    width_per_group=4, resnext50_32x4d's (check_resnet)."""

    def __init__(self, block, layers, stem=64, planes=(64, 128, 256, 512), groups=1,
                 width_per_group=64, num_classes=1000):
        super().__init__()
        self.inplanes, self.groups, self.base_width = stem, groups, width_per_group
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        for i in range(4):
            self.add_module(f"layer{i + 1}", self._make_layer(block, planes[i], layers[i], 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                                 nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, down, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(model, stem=64, planes=(64, 128, 256, 512), width_per_group=None, num_classes=1000):
    """ResNet for "resnet34", "resnet50" or "resnext50_32x4d" (its 32 groups;
    width_per_group 4 unless given) with the given widths."""
    from torchvision.models.resnet import BasicBlock, Bottleneck
    if model == "resnet34":
        return ResNet(BasicBlock, (3, 4, 6, 3), stem, planes, num_classes=num_classes)
    if model == "resnet50":
        return ResNet(Bottleneck, (3, 4, 6, 3), stem, planes, num_classes=num_classes)
    if model == "resnext50_32x4d":
        return ResNet(Bottleneck, (3, 4, 6, 3), stem, planes, groups=32,
                      width_per_group=width_per_group or 4, num_classes=num_classes)
    raise ValueError(model)


def check_resnet(model):
    """resnet(model) at full size names and shapes its parameters and
    buffers as torchvision's model does, in the same order."""
    import torchvision
    ours = [(k, tuple(v.shape)) for k, v in resnet(model).state_dict().items()]
    ref = [(k, tuple(v.shape)) for k, v in getattr(torchvision.models, model)().state_dict().items()]
    assert ours == ref, f"zoo_reference.resnet({model!r}) differs from torchvision's {model}"


# ------------------------------------------------------------- batchnorm

def calibrate_batchnorm(m, x):
    """Sets every batchnorm's running statistics to the batch statistics its
    input has when `m` runs on `x` (each layer normalized by the ones before
    it, as in training), keeping the affine weight and bias.  PyTorch's
    default initialization with random running statistics leaves some deep
    nets (depthwise convolutions initialized by their fan-out) with an output
    that no longer depends on the input; calibrated ones keep it alive."""
    bns = [b for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)]
    m.eval()
    saved = [b.momentum for b in bns]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None           # cumulative average: after one batch, its statistics
        b.train()
    with torch.no_grad():
        m(x)
    for b, mom in zip(bns, saved):
        b.momentum = mom
    m.eval()
    return m


def damp_residual_branches(m, factor=0.25):
    """Scales the weight of the last batchnorm of every ResNet bottleneck's
    residual branch (bn3) by `factor`, as training leaves them small.  With
    calibrated statistics and weights near 1, each of a deep trunk's blocks
    amplifies rounding differences by about 1.35 (FCN-ResNet50 at float32:
    8.6e-5 of the output's scale from PyTorch itself); damped, the trunk is
    as well conditioned as a trained one.  Call before calibrate_batchnorm."""
    from torchvision.models.resnet import Bottleneck
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, Bottleneck):
                mod.bn3.weight.mul_(factor)
    return m


# ------------------------------------------------------------- YOLOv3-tiny

YOLO_ANCHORS = [[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]]


def yolo_decode(t, anchors, classes, stride):
    """A YOLOv3 head [N, A * (5 + K), H, W] as boxes [N, A * H * W, 5 + K]:
    row a * H * W + y * W + x holds cx, cy, w, h in pixels, the objectness
    and the K class scores (sigmoids)."""
    n, _, h, w = t.shape
    a = len(anchors)
    t = t.view(n, a, 5 + classes, h, w).permute(0, 1, 3, 4, 2)     # [N, A, H, W, 5 + K]
    gy, gx = torch.meshgrid(torch.arange(h, dtype=t.dtype), torch.arange(w, dtype=t.dtype), indexing="ij")
    anc = torch.tensor(anchors, dtype=t.dtype).view(1, a, 1, 1, 2)
    cx = (torch.sigmoid(t[..., 0]) + gx) * stride
    cy = (torch.sigmoid(t[..., 1]) + gy) * stride
    wh = torch.exp(t[..., 2:4]) * anc
    rest = torch.sigmoid(t[..., 4:])
    out = torch.cat([cx.unsqueeze(-1), cy.unsqueeze(-1), wh, rest], dim=-1)
    return out.reshape(n, a * h * w, 5 + classes)


def nms_rows(det, iou, score, keep_max):
    """One sample's decoded boxes [D, 5 + K] -> [keep_max, 6]: boxes scoring
    (objectness x best class score) above `score`, greedy per-class
    non-maximum suppression (torchvision.ops.batched_nms), by decreasing
    score: x1, y1, x2, y2, score, class; then rows of zeros with class -1."""
    from torchvision.ops import batched_nms
    best, cls = det[:, 5:].max(dim=1)
    s = det[:, 4] * best
    sel = s > score
    d, s, cls = det[sel], s[sel], cls[sel]
    xyxy = torch.stack([d[:, 0] - d[:, 2] / 2, d[:, 1] - d[:, 3] / 2,
                        d[:, 0] + d[:, 2] / 2, d[:, 1] + d[:, 3] / 2], dim=1)
    keep = batched_nms(xyxy, s, cls, iou)[:keep_max]
    out = torch.zeros(keep_max, 6, dtype=det.dtype)
    out[:, 5] = -1
    k = len(keep)
    out[:k, :4] = xyxy[keep]
    out[:k, 4] = s[keep]
    out[:k, 5] = cls[keep].to(det.dtype)
    return out


class YoloV3Tiny(nn.Module):
    """darknet's yolov3-tiny.cfg with the names of the cfg-driven PyTorch
    ports: module_list.<layer> holds conv_<layer> and batch_norm_<layer>
    (layers without parameters are empty).  forward gives {"detections":
    decoded boxes of both heads, "boxes": after nms}."""

    def __init__(self, widths=(16, 32, 64, 128, 256, 512, 1024), heads=(256, 512, 128, 256),
                 num_classes=80, iou=0.45, score=0.25, keep=100):
        super().__init__()
        self.classes, self.iou, self.score, self.keep = num_classes, iou, score, keep
        layers = [nn.Sequential() for _ in range(24)]

        def cbl(i, cin, cout, k):
            layers[i].add_module(f"conv_{i}", nn.Conv2d(cin, cout, k, padding=(k - 1) // 2, bias=False))
            layers[i].add_module(f"batch_norm_{i}", nn.BatchNorm2d(cout))
            layers[i].add_module(f"leaky_{i}", nn.LeakyReLU(0.1))
            return cout

        c = 3
        for k, w in enumerate(widths):
            c = cbl(2 * k, c, w, 3)
        route = widths[4]
        c = cbl(13, c, heads[0], 1)
        c14 = cbl(14, c, heads[1], 3)
        out = 3 * (5 + num_classes)
        layers[15].add_module("conv_15", nn.Conv2d(c14, out, 1))
        c18 = cbl(18, c, heads[2], 1)
        c21 = cbl(21, c18 + route, heads[3], 3)
        layers[22].add_module("conv_22", nn.Conv2d(c21, out, 1))
        self.module_list = nn.ModuleList(layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu", a=0.1)
        for i in (15, 22):
            # heads: outputs of spread about 1, and objectness biased to -2
            # (a detector's prior that most cells hold no object), so that a
            # few percent of the boxes score above the threshold
            head = self.module_list[i][0]
            nn.init.normal_(head.weight, std=head.in_channels ** -0.5)
            with torch.no_grad():
                head.bias.zero_()
                head.bias[4::5 + num_classes] = -2.0

    def heads(self, image):
        """The two heads' raw outputs (layers 15 and 22), before decoding."""
        L = self.module_list
        x = image
        for k in range(7):
            x = L[2 * k](x)
            if k == 4:
                route = x
            if k < 5:
                x = F.max_pool2d(x, 2)
            elif k == 5:
                x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2, stride=1)
        x = L[13](x)
        y = L[15](L[14](x))
        x = F.interpolate(L[18](x), scale_factor=2, mode="nearest")
        x = L[22](L[21](torch.cat([x, route], dim=1)))
        return y, x

    def forward(self, image):
        size = image.shape[-1]
        y, x = self.heads(image)
        a = YOLO_ANCHORS
        coarse = yolo_decode(y, [a[3], a[4], a[5]], self.classes, size // y.shape[-1])
        fine = yolo_decode(x, [a[1], a[2], a[3]], self.classes, size // x.shape[-1])
        det = torch.cat([coarse, fine], dim=1)
        boxes = torch.stack([nms_rows(d, self.iou, self.score, self.keep) for d in det])
        return {"detections": det, "boxes": boxes}


def nms_margins(det, iou, score):
    """How close the decisions of nms_rows come to their thresholds, for one
    sample: (smallest |score - threshold| over all boxes, smallest |IoU -
    threshold| over same-class pairs of boxes above the score threshold)."""
    from torchvision.ops import box_iou
    best, cls = det[:, 5:].max(dim=1)
    s = det[:, 4] * best
    ms = float((s - score).abs().min())
    sel = s > score
    d, cls = det[sel], cls[sel]
    xyxy = torch.stack([d[:, 0] - d[:, 2] / 2, d[:, 1] - d[:, 3] / 2,
                        d[:, 0] + d[:, 2] / 2, d[:, 1] + d[:, 3] / 2], dim=1)
    mi = float("inf")
    for c in cls.unique():
        b = xyxy[cls == c]
        if len(b) > 1:
            m = box_iou(b, b)
            m = m[~torch.eye(len(b), dtype=torch.bool)]
            mi = min(mi, float((m - iou).abs().min()))
    return ms, mi
