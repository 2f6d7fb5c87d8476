#!/usr/bin/python3
"""The monitor's golden case: what --monitor must report for the first step
of tests/monitor/model.net on one batch, computed by PyTorch.

    /usr/bin/python3 tests/monitor/gen.py

writes, beside this script (committed; the test never runs PyTorch):

    weights.safetensors  the parameters under netc's names (float32); the
                         biases of conv0's channel 0, conv1's channels 2 and
                         5 and linear0's units 3, 7 and 11 are -100, so those
                         units are dead
    images.npy           float32 [8, 1, 12, 12], one batch
    labels.npy           int64 [8]
    expected.txt         per ReLU, in forward order:
                           relu K ZERO_FRACTION DEAD_UNITS UNITS
                         (the fraction of the ReLU's outputs that are 0, and
                         the channels or units that are 0 for every sample
                         and position of the batch); per conv and linear
                         output, in forward order:
                           preact NAME MEAN STD
                         (over the batch, the population std); per
                         parameter:
                           param NAME GRAD_NORM UPDATE_RATIO
                         (the L2 norm of d loss / d param, the mean
                         cross-entropy over the batch; and |p1 - p0| / |p0|
                         over one torch.optim.SGD step with lr 0.1 and
                         momentum 0.9)

PyTorch computes in float64 from the float32 files; forward hooks on each
nn.ReLU and each conv and linear collect the activations.
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
LR, MOMENTUM = 0.1, 0.9


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, a in tensors:
        blob = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv1 = nn.Conv2d(6, 8, 3, padding=1)
        self.linear0 = nn.Linear(288, 16)
        self.linear1 = nn.Linear(16, 10)
        self.relus = nn.ModuleList([nn.ReLU() for _ in range(3)])

    def forward(self, x):
        x = F.max_pool2d(self.relus[0](self.conv0(x)), 2)
        x = self.relus[1](self.conv1(x)).flatten(1)
        x = self.relus[2](self.linear0(x))
        return self.linear1(x)


def main():
    torch.manual_seed(12)
    net = Net()
    with torch.no_grad():
        net.conv0.bias[0] = -100
        net.conv1.bias[2] = net.conv1.bias[5] = -100
        for u in (3, 7, 11):
            net.linear0.bias[u] = -100
    names = ["conv0.weight", "conv0.bias", "conv1.weight", "conv1.bias", "linear0.weight", "linear0.bias",
             "linear1.weight", "linear1.bias"]
    params = dict(zip(names, [p.detach().numpy().astype(np.float32) for p in
                              [net.conv0.weight, net.conv0.bias, net.conv1.weight, net.conv1.bias,
                               net.linear0.weight, net.linear0.bias, net.linear1.weight, net.linear1.bias]]))
    images = torch.randn(8, 1, 12, 12).numpy().astype(np.float32)
    labels = torch.randint(0, 10, (8,)).numpy().astype(np.int64)
    write_safetensors(os.path.join(HERE, "weights.safetensors"), [(n, params[n]) for n in names])
    np.save(os.path.join(HERE, "images.npy"), images)
    np.save(os.path.join(HERE, "labels.npy"), labels)

    net = net.double()
    relu_out, pre = [], []
    for r in net.relus:
        r.register_forward_hook(lambda m, i, o: relu_out.append(o.detach()))
    for n in ("conv0", "conv1", "linear0", "linear1"):
        getattr(net, n).register_forward_hook(lambda m, i, o, n=n: pre.append((n, o.detach())))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    before = [p.detach().clone() for p in net.parameters()]
    loss = F.cross_entropy(net(torch.from_numpy(images).double()), torch.from_numpy(labels))
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.detach().clone() for p in net.parameters()]
    opt.step()
    lines = []
    for k, y in enumerate(relu_out):
        zero = (y == 0).double().mean().item()
        per_unit = (y != 0).transpose(0, 1).reshape(y.shape[1], -1).any(dim=1)
        lines.append("relu %d %.9g %d %d" % (k, zero, int((~per_unit).sum()), y.shape[1]))
    for n, y in pre:
        lines.append("preact %s %.9g %.9g" % (n, y.mean().item(), y.std(unbiased=False).item()))
    order = ["conv0.weight", "conv0.bias", "conv1.weight", "conv1.bias", "linear0.weight", "linear0.bias",
             "linear1.weight", "linear1.bias"]
    for n, p, p0, g in zip(order, net.parameters(), before, grads):
        ratio = (p.detach() - p0).norm().item() / p0.norm().item()
        lines.append("param %s %.9g %.9g" % (n, g.norm().item(), ratio))
    with open(os.path.join(HERE, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
