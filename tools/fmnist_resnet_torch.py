#!/usr/bin/python3
"""The 93% recipe of docs/training.md in PyTorch, for comparison with netc's:
examples/fmnist_resnet.net trained on Fashion-MNIST with the same
augmentation, optimizer, schedule, epochs and batch.

    /usr/bin/python3 tools/fmnist_resnet_torch.py --threads 2

- net: a 3x3 stem conv of 16 channels, batchnorm, relu; three stages of two
  basic blocks (16, 32, 64 channels; conv3x3-bn-relu-conv3x3-bn plus the
  shortcut, relu), stages 2 and 3 starting at stride 2 with a 1x1 conv + bn
  projection; global average pooling; linear 10.  No conv biases.
- init (netc's scheme): every conv (each is followed by a ReLU through its
  batchnorm, or the residual +) He normal fan_in; the linear layer Glorot
  uniform; biases zero; batchnorm weight 1, bias 0.
- data: the IDX files of Debian's dataset-fashion-mnist (the loader of
  tools/pytorch_baseline.py), pixels / 255; a fresh shuffle each epoch,
  batches of 128, the last partial batch used.
- augmentation (as netc's --augment crop=2,flip, torchvision's
  RandomCrop(28, padding=2) then RandomHorizontalFlip()): each training
  sample zero-padded by 2, a random 28x28 window, flipped with probability
  1/2; the test images as they are.  (torchvision is not installed: the
  same two transforms in a few lines of torch below.)
- loss: nn.CrossEntropyLoss(); optimizer torch.optim.SGD(momentum 0.9,
  nesterov, weight_decay 5e-4 on the conv and linear weights only, as
  --no-bias-decay); OneCycleLR(max_lr 0.2, over all steps, its defaults,
  stepped per batch), as --schedule onecycle:0.2.

Prints one line per epoch (training loss and accuracy, images/s, test loss
and accuracy), the final test accuracy and the wall time.
"""

import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_baseline import DATA, load  # noqa: E402
import bench  # noqa: E402
from bench_train import Basic  # noqa: E402  (the basic block of the benchmark's ResNet-style net)


class FmnistResNet(nn.Module):
    """examples/fmnist_resnet.net; names as its parameters."""

    def __init__(self, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        cin, layers = widths[0], []
        for stage, w in enumerate(widths):
            blocks = []
            for i in range(2):
                blocks.append(Basic(cin, w, 2 if stage > 0 and i == 0 else 1))
                cin = w
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(cin, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def augment(x, pad, gen):
    """RandomCrop(size, padding=pad) then RandomHorizontalFlip() per sample."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        c = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = c.flip(2) if flip[i] else c
    return out


def evaluate(model, x, y, batch, fmt=torch.contiguous_format):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(x), batch):
            z = model(x[s:s + batch].contiguous(memory_format=fmt))
            loss += F.cross_entropy(z, y[s:s + batch], reduction="sum").item()
            correct += (z.argmax(1) == y[s:s + batch]).sum().item()
    model.train()
    return loss / len(x), 100.0 * correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--max-lr", type=float, default=0.2)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--crop", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--nchw", action="store_true", help="NCHW tensors (default: channels-last, PyTorch's faster layout here)")
    a = ap.parse_args()
    bench.OPENBLAS = bench.openblas()
    bench.set_threads(a.threads)  # torch's threads and OpenBLAS's, which torch does not set
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    start = time.time()
    xtr, ytr = load(a.data, "train", a.limit)
    xte, yte = load(a.data, "t10k")
    model = FmnistResNet()
    fmt = torch.contiguous_format if a.nchw else torch.channels_last
    model = model.to(memory_format=fmt)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=a.max_lr / 25, momentum=0.9, nesterov=True)
    steps = a.epochs * ((len(xtr) + a.batch - 1) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.max_lr, total_steps=steps)
    print(f"pytorch {torch.__version__}: fmnist_resnet, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(xtr)} training images, batch {a.batch}, {a.epochs} epochs, SGD Nesterov, OneCycleLR max_lr "
          f"{a.max_lr}, weight decay {a.weight_decay} (not of biases and norms), crop={a.crop},flip, "
          f"{a.threads} threads, {'NCHW' if a.nchw else 'channels-last'}", flush=True)
    for e in range(1, a.epochs + 1):
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum, correct = 0.0, 0
        for s in range(0, len(xtr), a.batch):
            idx = perm[s:s + a.batch]
            x = augment(xtr[idx], a.crop, gen).contiguous(memory_format=fmt)
            y = ytr[idx]
            z = model(x)
            loss = F.cross_entropy(z, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (z.argmax(1) == y).sum().item()
        secs = time.time() - t0
        tl, ta = evaluate(model, xte, yte, 500, fmt)
        print(f"pytorch: epoch {e}/{a.epochs}: train loss {loss_sum / len(xtr):.4f}, train accuracy "
              f"{100.0 * correct / len(xtr):.2f}%, {len(xtr) / secs:.0f} images/s; test loss {tl:.4f}, "
              f"test accuracy {ta:.2f}% ({len(xte)} images)", flush=True)
    print(f"pytorch: final test accuracy {ta:.2f}%, wall time {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
