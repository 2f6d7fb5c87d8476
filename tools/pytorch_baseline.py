#!/usr/bin/python3
"""PyTorch reference for `make demo`: LeNet-5 on Fashion-MNIST.

Trains the net of examples/lenet5.net the way netc's trainer does (same
layers, initialization, loss, optimizer, batching) and prints the figures the
README compares with netc's:

    /usr/bin/python3 tools/pytorch_baseline.py                 # 1 epoch, all cores
    /usr/bin/python3 tools/pytorch_baseline.py --threads 2 --seed 3

Run it with Debian's python (python3-torch); it needs nothing else.

- net: conv 6 5x5 pad 2, tanh, avgpool 2, conv 16 5x5, tanh, avgpool 2,
  conv 120 5x5, tanh, flatten, linear 84, tanh, linear 10;
- init (netc's scheme): conv and linear weights Glorot uniform (gain 1), except
  layers directly followed by a ReLU, which get He normal fan_in (none in
  LeNet-5); biases zero;
- data: the IDX files of Debian's dataset-fashion-mnist, pixels / 255, no
  normalization; a fresh shuffle each epoch; the last partial batch is used;
- loss: nn.CrossEntropyLoss() (mean over the batch); optimizer:
  torch.optim.SGD(lr, momentum, weight_decay).

Per epoch it prints the training loss and accuracy (averaged over the epoch's
samples as they are trained on), images per second over the training loop
(data already in memory; evaluation not counted) and the test loss and
accuracy on the test set:

    pytorch: epoch 1/1: train loss 0.5234, train accuracy 81.23%, 1234 images/s; test loss 0.4567, test accuracy 83.45% (10000 images)
"""

import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (optionally gzipped) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    a = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if a.size != int(np.prod(dims)):
        sys.exit(f"{path}: {a.size} values for shape {list(dims)}")
    return a.reshape(dims)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    sys.exit(f"pytorch_baseline: no {stem}[.gz] in {data_dir}")


def load(data_dir, prefix, limit=None):
    x = read_idx(find(data_dir, f"{prefix}-images-idx3-ubyte"))
    y = read_idx(find(data_dir, f"{prefix}-labels-idx1-ubyte"))
    if limit:
        x, y = x[:limit], y[:limit]
    x = torch.from_numpy(x.astype(np.float32) / 255).unsqueeze(1)  # [N, 1, 28, 28]
    return x, torch.from_numpy(y.astype(np.int64))


class LeNet5(nn.Module):
    """examples/lenet5.net; module names are netc's parameter prefixes."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv1 = nn.Conv2d(6, 16, 5)
        self.conv2 = nn.Conv2d(16, 120, 5)
        self.linear0 = nn.Linear(120, 84)
        self.linear1 = nn.Linear(84, 10)
        # the layer each of these feeds is tanh (or the loss): no ReLU
        followed_by_relu = set()
        for name, m in self.named_children():
            if name in followed_by_relu:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight, gain=1.0)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv0(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = torch.flatten(torch.tanh(self.conv2(x)), 1)
        x = torch.tanh(self.linear0(x))
        return self.linear1(x)


def evaluate(model, x, y, batch=1000):
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i:i + batch])
            loss_sum += float(F.cross_entropy(out, y[i:i + batch], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return loss_sum / len(x), 100.0 * correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="torch.set_num_threads (default: all cores, %(default)s)")
    ap.add_argument("--data", default=DATA, help="directory of the IDX files (default %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = load(args.data, "train", args.limit)
    test_x, test_y = load(args.data, "t10k")
    model = LeNet5()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(args.seed)
    n = len(train_x)
    print(f"pytorch {torch.__version__}: LeNet-5, {n} training images, batch {args.batch}, "
          f"lr {args.lr}, momentum {args.momentum}, weight decay {args.weight_decay}, "
          f"seed {args.seed}, {args.threads} threads", flush=True)

    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=shuffle)
        loss_sum, correct = 0.0, 0
        t0 = time.perf_counter()
        for i in range(0, n, args.batch):       # the last batch may be partial
            idx = perm[i:i + args.batch]
            x, y = train_x[idx], train_y[idx]
            opt.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            loss_sum += float(loss) * len(idx)
            correct += int((out.argmax(1) == y).sum())
        seconds = time.perf_counter() - t0
        test_loss, test_acc = evaluate(model, test_x, test_y)
        print(f"pytorch: epoch {epoch}/{args.epochs}: train loss {loss_sum / n:.4f}, "
              f"train accuracy {100.0 * correct / n:.2f}%, {n / seconds:.0f} images/s; "
              f"test loss {test_loss:.4f}, test accuracy {test_acc:.2f}% "
              f"({len(test_x)} images)", flush=True)


if __name__ == "__main__":
    main()
