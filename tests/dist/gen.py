#!/usr/bin/python3
"""Reference data for netc's data-parallel training, from PyTorch.

Run with Debian's python (it has python3-torch):

    /usr/bin/python3 tests/dist/gen.py                  # every case
    /usr/bin/python3 tests/dist/gen.py --only CASE      # one case (repeatable)
    /usr/bin/python3 tests/dist/gen.py --list           # case names
    /usr/bin/python3 tests/dist/gen.py --no-real-ddp    # skip the check below

The output is committed; the tests only read it and never run this script.
Every case is seeded from its name (or from the name it shares with the
case it is compared with: the `_ddp` and `_sync` variants of one net have
the same weights and data), so regenerating gives the same bytes. The
safetensors writer and reader, Params, param_list, the batchnorm
randomization and the initializations come from tests/golden_train/gen.py
(and through it tests/golden/gen.py).

Layout of one case, tests/dist/<case>/:

    model.net                   the netc program (one input, one output:
                                the logits)
    config                      `batch B` (per rank), `ranks P`, `lr LR`,
                                `momentum M`, `weight_decay WD`,
                                `steps N`, `mode plain|ddp|sync`
    weights.safetensors         initial parameters, float32, netc's names;
                                batchnorm running stats included and random
    train_images.npy            float32 [S, ...], S = P * B * N
    train_labels.npy            int64 [S]
    expected_params.safetensors every entry of weights.safetensors after
                                the N SGD steps of one epoch without
                                shuffling (rank 0's, in mode ddp)

Rank r's batch s holds the samples at positions s*P*B + j*P + r, j = 0..B-1
(DistributedSampler(shuffle=False) followed by a DataLoader of batch B), so
the P ranks' batches s together are the samples s*P*B .. (s+1)*P*B - 1: the
batch s of one process at batch P*B. Each rank's loss is the mean
cross-entropy over its own B samples, the gradients are averaged over the
ranks, and every rank takes the same torch.optim.SGD step (lr, momentum,
weight decay on every parameter).

The modes:

    plain  no batchnorm. Reference: one process at batch P*B. The generator
           also runs P simulated replicas at batch B and checks they agree.
    ddp    DistributedDataParallel's per-rank batchnorm, simulated: P
           replicas; before each forward rank 0's buffers are copied to the
           others (broadcast_buffers=True); each replica runs the forward in
           train mode on its own batch (batchnorm statistics over its B
           samples) and the backward of its own loss; the gradients are
           averaged; every replica steps. The result is rank 0's.
    sync   SyncBatchNorm's statistics over all ranks' samples (the global
           count). This equals one process at batch P*B, which is how it is
           computed.

Everything runs in float64 (the float32 files widened) and is rounded to
float32 once at the end. Unless --no-real-ddp, every case is also trained by
real DistributedDataParallel: P processes (torch.multiprocessing), the gloo
backend over localhost, DistributedSampler(shuffle=False). For `sync`,
torch.nn.SyncBatchNorm needs CUDA in this torch (1.13: "SyncBatchNorm
expected input tensor to be on GPU"), so the real run replaces each
batchnorm by one that all-gathers its input over the ranks with
torch.distributed.nn's autograd-aware all_gather and normalizes the whole
with F.batch_norm, keeping its own rank's rows. The real runs must match the
reference to 1e-12 of each tensor's scale.
"""

import argparse
import copy
import importlib.util
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_train = _load("netc_golden_train_gen", os.path.join(ROOT, "tests", "golden_train", "gen.py"))
write_safetensors = _train.write_safetensors
param_list = _train.param_list
Params = _train.Params
randomize_batchnorm = _train.randomize_batchnorm
seed_of = _train.seed_of
clean_dir = _train.clean_dir
write_text = _train.write_text
init_he_fan_in = _train.init_he_fan_in
init_xavier = _train.init_xavier
to_f32 = _train.to_f32
check_safetensors = _train.check_safetensors
rel_err = _train.rel_err

MODES = ("plain", "ddp", "sync")


# --------------------------------------------------------------------- cases

class DistCase:
    """name: directory; net: program text; in_shape: per-sample input
    shape; classes: number of logits; build(): module whose state_dict keys
    are netc's names; forward(module, x) -> logits; mode: plain, ddp or
    sync; batch: B per rank; ranks: P; steps: N (S = P * B * N samples);
    init(module): weight init after PyTorch's default; seed_name: the name
    seeding weights and data (default name); lr, momentum, weight_decay:
    SGD's."""

    def __init__(self, name, net, in_shape, classes, build, forward, mode, batch,
                 ranks=2, steps=10, init=None, seed_name=None, lr=0.05, momentum=0.9,
                 weight_decay=0.0005):
        assert mode in MODES
        self.name = name
        self.net = net
        self.in_shape = list(in_shape)
        self.classes = classes
        self.build = build
        self.forward = forward
        self.mode = mode
        self.batch = batch
        self.ranks = ranks
        self.steps = steps
        self.samples = ranks * batch * steps
        self.init = init
        self.seed_name = seed_name or name
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay


CASES = []


def case(*args, **kw):
    CASES.append(DistCase(*args, **kw))


# a small conv net without batchnorm ---------------------------------------------

PLAIN_CONV_NET = """\
# data-parallel reference (tests/dist): convs, relu, maxpool, linear, no
# batchnorm, so P ranks at batch B train exactly as one process at P*B.
net plain_conv {
    input image: [2, 8, 8];
    x = conv(image, 6, 3, pad = 1) |> relu |> maxpool(2);
    x = conv(x, 8, 3) |> relu |> flatten;
    output logits = linear(x, 10);
}
"""


def plain_conv_build():
    return Params([("conv0", nn.Conv2d(2, 6, 3, padding=1)),
                   ("conv1", nn.Conv2d(6, 8, 3)),
                   ("linear0", nn.Linear(32, 10))])


def plain_conv_forward(m, x):
    x = F.max_pool2d(F.relu(m["conv0"](x)), 2)
    x = torch.flatten(F.relu(m["conv1"](x)), 1)
    return m["linear0"](x)


case("plain_conv", PLAIN_CONV_NET, [2, 8, 8], 10, build=plain_conv_build,
     forward=plain_conv_forward, mode="plain", batch=4, init=init_he_fan_in)

# conv, batchnorm, relu, a residual block, linear: per-rank and synchronized
# batchnorm on the same weights and data ----------------------------------------

BN_RESIDUAL_NET = """\
# data-parallel reference (tests/dist): conv, batchnorm, relu, maxpool, a
# basic block with an identity shortcut, global_avgpool, linear; MODE
# batchnorm statistics.
# The convs feeding a batchnorm have no bias: in training mode its gradient
# would be zero up to rounding, which no relative tolerance can check.
block basic(x) {
    c = channels(x);
    y = conv(x, c, 3, pad = 1, bias = false) |> batchnorm |> relu;
    y = conv(y, c, 3, pad = 1, bias = false) |> batchnorm;
    return x + y |> relu;
}

net bn_residual {
    input image: [2, 8, 8];
    x = conv(image, 6, 3, pad = 1, bias = false) |> batchnorm |> relu |> maxpool(2);
    x = basic(x) as "block1";
    x = global_avgpool(x) |> flatten;
    output logits = linear(x, 10) as "fc";
}
"""


def bn_residual_build():
    return Params([("conv0", nn.Conv2d(2, 6, 3, padding=1, bias=False)),
                   ("batchnorm0", nn.BatchNorm2d(6)),
                   ("block1.conv0", nn.Conv2d(6, 6, 3, padding=1, bias=False)),
                   ("block1.batchnorm0", nn.BatchNorm2d(6)),
                   ("block1.conv1", nn.Conv2d(6, 6, 3, padding=1, bias=False)),
                   ("block1.batchnorm1", nn.BatchNorm2d(6)),
                   ("fc", nn.Linear(6, 10))])


def bn_residual_forward(m, x):
    x = F.max_pool2d(F.relu(m["batchnorm0"](m["conv0"](x))), 2)
    y = F.relu(m["block1.batchnorm0"](m["block1.conv0"](x)))
    y = m["block1.batchnorm1"](m["block1.conv1"](y))
    x = F.relu(x + y)
    x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    return m["fc"](x)


for _mode, _what in [("ddp", "per-rank (DistributedDataParallel's)"),
                     ("sync", "synchronized (SyncBatchNorm's)")]:
    case("bn_residual_" + _mode, BN_RESIDUAL_NET.replace("MODE", _what), [2, 8, 8], 10,
         build=bn_residual_build, forward=bn_residual_forward, mode=_mode, batch=3,
         init=init_he_fan_in, seed_name="bn_residual")

# a batchnorm on flat features (BatchNorm1d) after a linear ------------------------

MLP_BN_NET = """\
# data-parallel reference (tests/dist): linear, batchnorm on [16]
# (BatchNorm1d), relu, linear; MODE batchnorm statistics.
# The linear feeding the batchnorm has no bias (its gradient would be zero).
net mlp_bn {
    input x: [8];
    h = linear(x, 16, bias = false) |> batchnorm |> relu;
    output logits = linear(h, 5);
}
"""


def mlp_bn_build():
    return Params([("linear0", nn.Linear(8, 16, bias=False)),
                   ("batchnorm0", nn.BatchNorm1d(16)),
                   ("linear1", nn.Linear(16, 5))])


def mlp_bn_forward(m, x):
    return m["linear1"](F.relu(m["batchnorm0"](m["linear0"](x))))


for _mode, _what in [("ddp", "per-rank (DistributedDataParallel's)"),
                     ("sync", "synchronized (SyncBatchNorm's)")]:
    case("mlp_bn_" + _mode, MLP_BN_NET.replace("MODE", _what), [8], 5,
         build=mlp_bn_build, forward=mlp_bn_forward, mode=_mode, batch=4,
         init=init_xavier, seed_name="mlp_bn")

CASE_NAMES = [c.name for c in CASES]


# ---------------------------------------------------------------- training

def shard(c, step, rank):
    """The positions of rank's batch number step: DistributedSampler's
    rank, rank + P, ... cut into batches of B."""
    base = step * c.ranks * c.batch
    return [base + j * c.ranks + rank for j in range(c.batch)]


def make_sgd(c, m):
    return torch.optim.SGD(m.parameters(), lr=c.lr, momentum=c.momentum,
                           weight_decay=c.weight_decay)


def train_single(c, m0, x, y, dtype):
    """One process at batch P*B, the batches in file order: the reference of
    plain and sync. Returns param_list after the steps."""
    m = copy.deepcopy(m0).to(dtype)
    m.train()
    x = x.to(dtype)
    opt = make_sgd(c, m)
    global_batch = c.ranks * c.batch
    for s in range(c.steps):
        lo, hi = s * global_batch, (s + 1) * global_batch
        opt.zero_grad()
        F.cross_entropy(c.forward(m, x[lo:hi]), y[lo:hi]).backward()
        opt.step()
    return [(k, v.detach().clone()) for k, v in param_list(m)]


def train_replicas(c, m0, x, y, dtype):
    """P replicas at batch B with DistributedDataParallel's semantics: rank
    0's buffers copied to every replica before the forward, per-rank
    batchnorm statistics, the gradients averaged as DDP does (each divided
    by P, then summed), the same SGD step everywhere. Returns the
    param_list of every rank after the steps."""
    reps = [copy.deepcopy(m0).to(dtype) for _ in range(c.ranks)]
    opts = [make_sgd(c, m) for m in reps]
    for m in reps:
        m.train()
    x = x.to(dtype)
    for s in range(c.steps):
        for m in reps[1:]:
            for b, b0 in zip(m.buffers(), reps[0].buffers()):
                b.data.copy_(b0.data)
        grads = []
        for r, (m, opt) in enumerate(zip(reps, opts)):
            idx = torch.tensor(shard(c, s, r))
            opt.zero_grad()
            F.cross_entropy(c.forward(m, x[idx]), y[idx]).backward()
            grads.append([p.grad / c.ranks for p in m.parameters()])
        mean = []
        for i in range(len(grads[0])):
            acc = grads[0][i].clone()
            for g in grads[1:]:
                acc += g[i]
            mean.append(acc)
        for m, opt in zip(reps, opts):
            for p, g in zip(m.parameters(), mean):
                p.grad.copy_(g)
            opt.step()
    return [[(k, v.detach().clone()) for k, v in param_list(m)] for m in reps]


def reference(c, m0, x, y, dtype):
    """expected_params of the case's mode."""
    if c.mode == "ddp":
        return train_replicas(c, m0, x, y, dtype)[0]
    return train_single(c, m0, x, y, dtype)


def split(pairs):
    """(trained parameters, running statistics) of a param_list."""
    stats = [(k, v) for k, v in pairs if k.endswith((".running_mean", ".running_var"))]
    return [p for p in pairs if p not in stats], stats


def rel_err_split(a, b):
    """(worst over the parameters, worst over the running stats or None)."""
    pa, sa = split(a)
    pb, sb = split(b)
    return rel_err(pa, pb), (rel_err(sa, sb) if sb else None)


# ----------------------------------------------------- real DDP over gloo

class Wrapped(nn.Module):
    """The case's module with its forward, for DistributedDataParallel."""

    def __init__(self, c, m):
        super().__init__()
        self.m = m
        self.fwd = c.forward

    def forward(self, x):
        return self.fwd(self.m, x)


class GatherBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Synchronized batchnorm for CPU tensors: all-gathers the input of every
    rank (autograd-aware, so the backward reaches each rank's own rows),
    normalizes the whole as one batch in train mode (statistics over the
    global count, running stats updated with them) and returns this rank's
    rows. nn.SyncBatchNorm computes the same but needs CUDA here."""

    group = None

    def _check_input_dim(self, x):
        pass

    def forward(self, x):
        import torch.distributed as dist
        import torch.distributed.nn.functional as dnf
        whole = torch.cat(dnf.all_gather(x, group=GatherBatchNorm.group))
        out = F.batch_norm(whole, self.running_mean, self.running_var, self.weight, self.bias,
                           True, self.momentum, self.eps)
        n = x.shape[0]
        r = dist.get_rank()
        return out[r * n:(r + 1) * n]


def real_ddp_rank(rank, name, state, x, y, init_file, out_dir):
    """One rank of the real run: torch.multiprocessing.spawn's target."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler
    torch.set_num_threads(1)
    c = CASES[CASE_NAMES.index(name)]
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank,
                            world_size=c.ranks)
    m = c.build()
    m.load_state_dict(state)
    if c.mode == "sync":
        # a group of its own, so the gathers never interleave with DDP's
        # gradient all-reduces on one communicator
        GatherBatchNorm.group = dist.new_group(list(range(c.ranks)))
        for path, mod in list(m.named_modules()):
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                g = GatherBatchNorm(mod.num_features, mod.eps, mod.momentum)
                g.load_state_dict(mod.state_dict())
                parent, _, leaf = path.rpartition(".")
                setattr(m[parent] if parent else m, leaf, g)
    m = m.double()
    m.train()
    ddp = DistributedDataParallel(Wrapped(c, m), broadcast_buffers=True)
    opt = make_sgd(c, ddp)
    data = TensorDataset(x.double(), y)
    sampler = DistributedSampler(data, num_replicas=c.ranks, rank=rank, shuffle=False)
    steps = 0
    for xb, yb in DataLoader(data, batch_size=c.batch, sampler=sampler):
        opt.zero_grad()
        F.cross_entropy(ddp(xb), yb).backward()
        opt.step()
        steps += 1
    assert steps == c.steps, (name, steps)
    torch.save([(k, v.detach().clone()) for k, v in param_list(m)],
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


def real_ddp(c, m0, x, y):
    """Every rank's param_list after the steps under real DDP."""
    import torch.multiprocessing as mp
    state = {k: v.clone() for k, v in m0.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(real_ddp_rank, args=(c.name, state, x, y, os.path.join(tmp, "init"), tmp),
                 nprocs=c.ranks)
        return [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(c.ranks)]


# ---------------------------------------------------------------- generation

def fmt_split(e):
    p, s = e
    return f"{p:.2g}" + ("" if s is None else f"/{s:.2g}")


def generate(c, check_real):
    d = os.path.join(HERE, c.name)
    clean_dir(d)
    torch.manual_seed(seed_of(c.seed_name))
    gen = torch.Generator().manual_seed(seed_of(c.seed_name) + 1)

    m = c.build()                      # float32, PyTorch's default init
    if c.init:
        c.init(m)
    randomize_batchnorm(m, gen)
    weights = to_f32(param_list(m))
    x = torch.randn([c.samples] + c.in_shape, generator=gen).float()
    y = torch.randint(0, c.classes, [c.samples], generator=gen, dtype=torch.int64)

    # every rank's result in float64 (they differ only in ddp's buffers)
    if c.mode == "ddp":
        per_rank = train_replicas(c, m, x, y, torch.float64)
    else:
        per_rank = [train_single(c, m, x, y, torch.float64)] * c.ranks
    params = per_rank[0]
    assert [k for k, _ in params] == [k for k, _ in weights]
    notes = []
    if c.mode == "plain":
        # without batchnorm, P ranks at batch B are one process at P*B
        ranks = train_replicas(c, m, x, y, torch.float64)
        for r, pr in enumerate(ranks):
            e = rel_err(pr, params)
            assert e < 1e-12, (c.name, r, e)
        notes.append(f"replicas {rel_err(ranks[0], params):.1g}")
    else:
        other = train_single(c, m, x, y, torch.float64) if c.mode == "ddp" else \
            train_replicas(c, m, x, y, torch.float64)[0]
        e = rel_err_split(other, params)
        # the ddp and sync results must be far apart, or a test at 1e-4
        # could not tell per-rank from synchronized statistics
        assert min(e) > 1e-2, (c.name, e)
        notes.append(f"{'sync' if c.mode == 'ddp' else 'ddp'}-vs-this {fmt_split(e)}")
    if check_real:
        # every rank of the real run, rank 1's buffers (ddp: broadcast from
        # rank 0 before each forward, then updated by its own last batch)
        # included; the ranks' parameters must be the same bytes
        real = real_ddp(c, m, x, y)
        errs = [rel_err(real[r], per_rank[r]) for r in range(c.ranks)]
        assert max(errs) < 1e-12, (c.name, "real DDP", errs)
        pr0, _ = split(real[0])
        for r in range(1, c.ranks):
            pr, _ = split(real[r])
            assert all(torch.equal(a, b) for (_, a), (_, b) in zip(pr, pr0)), (c.name, r)
        notes.append("realDDP " + ",".join(f"{e:.1g}" for e in errs))

    write_text(os.path.join(d, "model.net"), c.net)
    write_text(os.path.join(d, "config"),
               f"batch {c.batch}\nranks {c.ranks}\nlr {c.lr}\nmomentum {c.momentum}\n"
               f"weight_decay {c.weight_decay}\nsteps {c.steps}\nmode {c.mode}\n")
    for f, pairs in [("weights.safetensors", weights),
                     ("expected_params.safetensors", to_f32(params))]:
        write_safetensors(os.path.join(d, f), pairs)
        check_safetensors(os.path.join(d, f), pairs)
    for f, a in [("train_images.npy", x.numpy().astype("<f4")),
                 ("train_labels.npy", y.numpy().astype("<i8"))]:
        np.save(os.path.join(d, f), a)
        back = np.load(os.path.join(d, f))
        assert back.dtype == a.dtype and np.array_equal(back, a), f

    # PyTorch's own float32 run from the same files: a floor for tolerances
    p32 = reference(c, m, x, y, torch.float32)
    moved = rel_err([(k, torch.from_numpy(v)) for k, v in weights], params)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{c.name:16s} {c.mode:5s} P={c.ranks} B={c.batch} S={c.samples} "
          f"params={len(weights):2d} moved={moved:.2g} "
          f"f32err={fmt_split(rel_err_split(p32, params))} {' '.join(notes)} {size} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", metavar="CASE",
                    help="generate only this case (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--no-real-ddp", action="store_true",
                    help="skip the check against real DistributedDataParallel over gloo")
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
            generate(c, not args.no_real_ddp)


if __name__ == "__main__":
    main()
