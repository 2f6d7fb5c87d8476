#!/usr/bin/python3
"""netc's training programs against PyTorch's: images per second, same net,
same data, same thread count (issue 11's measuring stick).

    tools/bench_train.py [--models lenet5,fashion_vgg,fashion_resnet,resnet18]
                         [--threads T] [--epochs E] [--cpus 0] [--markdown FILE]
                         [--netc PATH] [--work DIR] [--keep] [--scaling K]

For each model, at its batch size (LeNet-5 64, the two small Fashion-MNIST
nets of examples/bench/ 32, ResNet-18 at 224x224 8, issue 11's settings):
  1. the data: the first --images Fashion-MNIST training images (pixels / 255,
     as the trainer reads them) and their labels, or for ResNet-18 random
     images ~ N(0, 1) [S, 3, 224, 224] and random labels of 1000 classes,
     written as .npy files;
  2. netc: `netc build --train -O2 --batch B`, then the trainer on those
     files for E epochs (--epochs, default 3) at --threads T, --quiet; each
     epoch's line gives its images per second (the trainer times its
     training loop: batching, forward, backward and update);
  3. PyTorch at T threads (torch.set_num_threads, and OpenBLAS's as in
     tools/bench.py), the same architecture (tools/pytorch_baseline.py's
     LeNet-5, the modules below, torchvision's resnet18), the same loss
     (cross-entropy) and optimizer (SGD, lr 0.01, momentum 0.9), a fresh
     shuffle each epoch, the last partial batch used; in NCHW, and in
     channels-last memory format (model and each batch converted); each
     epoch timed over its training loop.
With --threads T > 1 and --scaling K, netc's trainer also runs K pairs of
back-to-back runs at one thread and at T (unpinned), and the median of the
pairs' ratios is its speed-up from the second thread (the cores of a
shared VM change speed over minutes, so a one-thread table and a T-thread
table taken minutes apart measure the machine as much as the program).
For both, the figure is the median images/s of the epochs after the first
(the first warms caches and allocators; with --epochs 1, the one epoch).
The ratio is netc's over PyTorch's best of the two formats: above 1 where
netc trains faster.  A model that netc cannot build (an op without a
gradient rule) is a row with the build's message, and the exit status is 1.

Timings are not tests: run it on a quiet machine (check `uptime`), and with
--cpus 0 --threads 1 to keep netc and PyTorch on the same core (the two
cores of the shared VM of docs/performance.md are not alike).  Needs
Debian's python3-torch and python3-torchvision: run with /usr/bin/python3.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402

import bench  # noqa: E402  (the machine's description, OpenBLAS's thread count)
import pytorch_baseline  # noqa: E402


def cbr(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class FashionVGG(nn.Module):
    """examples/bench/fashion_vgg.net."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(cbr(1, 32), cbr(32, 32), nn.MaxPool2d(2), cbr(32, 64), cbr(64, 64),
                                      nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 256), nn.ReLU(),
                                        nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class Basic(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class FashionResNet(nn.Module):
    """examples/bench/fashion_resnet.net."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, w in enumerate((16, 32, 64)):
            for i in range(2):
                blocks.append(Basic(cin, w, 2 if stage > 0 and i == 0 else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(torch.mean(x, dim=(2, 3)), 1))


# name: (the .net file, batch, the PyTorch module, the data: "fashion" or (shape, classes))
MODELS = {
    "lenet5": ("examples/lenet5.net", 64, pytorch_baseline.LeNet5, "fashion"),
    "fashion_vgg": ("examples/bench/fashion_vgg.net", 32, FashionVGG, "fashion"),
    "fashion_resnet": ("examples/bench/fashion_resnet.net", 32, FashionResNet, "fashion"),
    "resnet18": ("examples/resnet18.net", 8, lambda: torchvision.models.resnet18(num_classes=1000),
                 ([3, 224, 224], 1000)),
}
# Images per epoch by default: a few seconds to a minute an epoch for netc.
DEFAULT_IMAGES = {"lenet5": 8192, "fashion_vgg": 2048, "fashion_resnet": 2048, "resnet18": 96}
EPOCH = re.compile(r"epoch (\d+)/(\d+): .*?([0-9.]+) images/s")


def data(name, images, work, seed):
    """(x, y) as tensors, and their .npy files."""
    kind = MODELS[name][3]
    if kind == "fashion":
        x, y = pytorch_baseline.load(pytorch_baseline.DATA, "train", images)
    else:
        shape, classes = kind
        g = torch.Generator().manual_seed(seed)
        x = torch.randn([images] + shape, generator=g)
        y = torch.randint(0, classes, [images], generator=g)
    xp, yp = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
    np.save(xp, x.numpy().astype("<f4"))
    np.save(yp, y.numpy().astype("<i8"))
    return x, y, xp, yp


def per_second(rates):
    """The median of the epochs after the first (the one epoch if only one)."""
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def bench_netc(name, args, work, xp, yp, threads=None):
    """netc's images/s at --threads (or `threads`); builds the trainer unless
    it is there already."""
    net, batch = os.path.join(ROOT, MODELS[name][0]), MODELS[name][1]
    prog = os.path.join(work, "trainer")
    t0 = time.perf_counter()
    if not os.path.exists(prog):
        b = subprocess.run([args.netc, "build", "--train", net, "-O2", "--batch", str(batch), "-o", prog],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=args.timeout)
        if b.returncode != 0:
            raise bench.BenchError("netc build --train failed:\n" + b.stdout.decode("utf-8", "replace").strip())
    build = time.perf_counter() - t0
    out = bench.run([prog, "--train-images", xp, "--train-labels", yp, "--epochs", str(args.epochs),
                     "--lr", "0.01", "--momentum", "0.9", "--threads", str(threads or args.threads), "--quiet"],
                    args.timeout)
    rates = [float(m.group(3)) for m in EPOCH.finditer(out)]
    if len(rates) != args.epochs:
        raise bench.BenchError(f"{prog}: {len(rates)} epoch lines for {args.epochs} epochs:\n{out.strip()}")
    return {"rate": per_second(rates), "rates": rates, "build": build}


def scaling(name, args, work, xp, yp):
    """netc's speed-up from one thread to --threads: --scaling pairs of runs,
    one thread then --threads, back to back (so that both see the machine
    as it is), and the median of the pairs' ratios."""
    pairs = []
    for _ in range(args.scaling):
        one = bench_netc(name, args, work, xp, yp, threads=1)["rate"]
        many = bench_netc(name, args, work, xp, yp)["rate"]
        pairs.append((one, many))
    return pairs


def bench_torch(name, args, x, y, channels_last):
    bench.set_threads(args.threads)
    torch.manual_seed(args.seed)
    model = MODELS[name][2]()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batch, n, rates = MODELS[name][1], x.shape[0], []
    g = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        order = torch.randperm(n, generator=g)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            xb, yb = x[idx], y[idx]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        rates.append(n / (time.perf_counter() - t0))
    return {"rate": per_second(rates), "rates": rates}


def fmt(v):
    return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def table(rows):
    out = ["| model | batch | images | netc images/s | PyTorch NCHW | channels-last | netc / best |",
           "|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        best = max([v for v in (r.get("nchw"), r.get("cl")) if v], default=None)
        ratio = f"{r['netc'] / best:.2f}" if r.get("netc") and best else "-"
        cells = [fmt(r.get(k)) for k in ("netc", "nchw", "cl")]
        if r.get("nchw") == best and best:
            cells[1] = f"**{cells[1]}**"
        elif best:
            cells[2] = f"**{cells[2]}**"
        note = f" ({r['note']})" if r.get("note") else ""
        out.append(f"| {r['model']}{note} | {r['batch']} | {r['images']} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), metavar="A,B",
                    help=f"of {', '.join(MODELS)} (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="netc's and PyTorch's threads (default 1)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each run (default 3; the first is not counted)")
    ap.add_argument("--images", type=int, default=0,
                    help="training images per epoch (default: LeNet-5 8192, the small nets 2048, resnet18 96)")
    ap.add_argument("--cpus", metavar="0,1", help="run everything on these CPUs only (as tools/bench.py)")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table and the conditions to FILE")
    ap.add_argument("--netc", default=os.path.join(ROOT, "build", "netc"), help="default build/netc")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench-train"), help="default build/bench-train")
    ap.add_argument("--keep", action="store_true", help="keep the data and trainers")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scaling", type=int, default=0, metavar="K",
                    help="with --threads T > 1: also K back-to-back pairs of netc runs at 1 and T threads, "
                         "and the median speed-up")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed for each build and run")
    args = ap.parse_args(argv)
    args.netc, args.work = os.path.abspath(args.netc), os.path.abspath(args.work)
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            sys.exit(f"bench_train: unknown model '{m}' (the models: {', '.join(MODELS)})")
    if args.threads < 1 or args.epochs < 1 or args.images < 0:
        sys.exit("bench_train: --threads and --epochs must be positive")
    if not os.access(args.netc, os.X_OK):
        sys.exit(f"bench_train: no netc at {args.netc} (build it first: make build)")
    if args.cpus:
        try:
            os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",") if c.strip()})
        except (ValueError, OSError) as e:
            sys.exit(f"bench_train: --cpus {args.cpus}: {e}")
    torch.set_num_interop_threads(1)
    bench.OPENBLAS = bench.openblas()
    conditions = [
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {bench.cpu_name()}, {os.cpu_count()} cores"
        + (f" (the run on CPU(s) {args.cpus} only)" if args.cpus else "")
        + f"; torch {torch.__version__}; {args.threads} thread(s); {args.epochs} epochs, the first not counted",
        f"- netc {os.path.relpath(args.netc, ROOT)} -O2, compiled by {bench.cc_version()}",
        bench.blas_line(),
        f"- load average (1, 5, 15 min) before the run: {bench.load_str()}",
    ]
    print("\n".join(conditions), flush=True)
    rows, failed = [], []
    for name in models:
        images = args.images or DEFAULT_IMAGES[name]
        work = os.path.join(args.work, name)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        r = {"model": name, "batch": MODELS[name][1], "images": images}
        x, y, xp, yp = data(name, images, work, args.seed)
        try:
            r["netc"] = bench_netc(name, args, work, xp, yp)["rate"]
        except (bench.BenchError, subprocess.TimeoutExpired) as e:
            lines = str(e).strip().replace(ROOT + "/", "").splitlines()
            r["note"] = "netc: " + lines[1 if len(lines) > 1 else 0][:120]
            failed.append(name)
        if args.scaling and args.threads > 1 and name not in failed:
            pairs = scaling(name, args, work, xp, yp)
            r["scaling"] = statistics.median(b / a for a, b in pairs)
            print(f"{name}: netc at 1 and {args.threads} threads, back to back: "
                  + ", ".join(f"{a:,.0f} / {b:,.0f}" for a, b in pairs)
                  + f" images/s; median speed-up {r['scaling']:.2f}", flush=True)
        r["nchw"] = bench_torch(name, args, x, y, False)["rate"]
        r["cl"] = bench_torch(name, args, x, y, True)["rate"]
        rows.append(r)
        print(table([r]).splitlines()[-1], flush=True)
        if not args.keep and name not in failed:
            shutil.rmtree(work, ignore_errors=True)
    for r in rows:
        if "scaling" in r:
            conditions.append(f"- {r['model']}: netc's median speed-up from 1 to {args.threads} threads "
                              f"in {args.scaling} back-to-back pairs: {r['scaling']:.2f}")
    conditions.append(f"- load average after the run: {bench.load_str()}")
    print()
    print(table(rows))
    print("\n".join(c for c in conditions if "speed-up" in c or "after the run" in c))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(conditions) + "\n\n" + table(rows) + "\n")
    if failed:
        print(f"bench_train: netc failed on: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
