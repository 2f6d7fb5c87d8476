#!/usr/bin/python3
"""Golden training data of the reduced zoo models, from PyTorch.

    /usr/bin/python3 tests/golden_train/gen_zoo.py               # every model
    /usr/bin/python3 tests/golden_train/gen_zoo.py --only MODEL  # one (repeatable)
    /usr/bin/python3 tests/golden_train/gen_zoo.py --list        # model names

Every reduced zoo model of tests/golden/<model>_small/ (tests/golden/gen_zoo.py's
cases and resnet18_small of tests/golden/gen.py) but yolov3_tiny (detection
has no loss in netc) gets a training case, tests/golden_train/zoo/<model>/,
run by tests/golden_train/run_zoo_case.sh.  The case reuses the golden
directory's model.net, weights.safetensors and input_image.npy (the two
samples of one batch of 2) as they are; it adds only:

    config                      `golden DIR` (the inference case, relative to
                                this directory), `batch 2`, `epochs 2`,
                                `sgd ...` and `adamw ...` (the trainer's
                                options of the two runs), `tol_loss`,
                                `tol_grads`, `tol_sgd`, `tol_adamw` (below)
    train_labels.npy            int64 [2] class indices, or [2, H, W] label
                                maps for the FCN's per-pixel scores; seeded
                                from the model's name
    expected_loss.npy           float32 [1]: the loss of the first step
    expected_grads.safetensors  the first step's gradients, sampled (below);
                                weight decay not included
    expected_sgd.safetensors    every parameter and running statistic after
    expected_adamw.safetensors  the two steps of each run, sampled

The two runs train on the same batch for 2 epochs of one step (`--no-shuffle
--no-dropout`): SGD with momentum 0.9, Nesterov, weight decay 1e-4, lr 0.01;
AdamW with lr 1e-3, weight decay 0.01 and the cosine schedule over the 2
epochs (CosineAnnealingLR(T_max=2) stepped per epoch: the second step at half
the rate).  The loss is the mean cross-entropy (per pixel for the FCN).
PyTorch runs the module of tests/golden/gen_zoo.py (or gen.py) with the
golden weights loaded, in training mode with dropout and EfficientNet's
stochastic depth off (tools/conformance.py's train_mode, as the trainer's
--no-dropout), in float64 from the float32 files.

The sampled format keeps the files small (a full copy of every gradient and
parameter of 15 models would be tens of MB).  For a tensor `NAME` of n
values, the file holds `NAME`, float32 [m + 2]: the flat tensor (row-major)
strided, flat[::k] with k = ceil(n / 32), so m = ceil(n / k) <= 32 (the whole
tensor when n <= 32), then the L2 norm of all n values, then the tensor's
scale.  `stcmp --sampled got.safetensors expected.safetensors TOL` samples
got's full tensors the same way and passes a tensor when every sampled value
is within TOL x scale of the expected one and its norm within TOL x
max(norm, scale) of the expected norm.  The scale is the largest magnitude of
the sampled expected values, at least FLOOR (1e-3) times the largest over the
file.  Gradients that vanish in exact arithmetic (a conv's bias under a
batchnorm, a batchnorm's bias whose shift the next batchnorm removes: 1e-17
in float64, rounding noise in float32), "null" below, get the largest
gradient's magnitude as their scale (netc's must be noise of that size); and
after AdamW, whose first steps move a parameter by about lr whatever the size
of its gradient (g / (|g| + eps)), such a parameter may end anywhere within
the sum of the two rates: its scale is at least that sum / 1e-4.

Tolerances: 1e-4, or where PyTorch's own float32 run from the same files
differs more from the float64 one, TOL_FACTOR (4) times that difference
(measured by stcmp's rule on the full tensors, the worst tensor; rounded up
to 2 digits), each of the loss, the gradients, the SGD and the AdamW
parameters on its own.  At a batch of 2 the batchnorms of a deep net
normalize over few values and amplify rounding, and an activation within
rounding of a relu kink flips a channel's gradient: for some models
PyTorch's float32 gradients differ from float64 by 1e-4 to 9e-4 of their
scale.  Two steps of SGD at lr 0.01 from these random initializations would
move MobileNetV1, MobileNetV2, GoogLeNet and ShuffleNetV2 by more than their
weights' scale (gradients of 10 to 80 through batchnorms over 2 samples),
and the second step, taken on the wrecked net, would be ill-conditioned
(PyTorch's float32 parameters 6 to 11% off its float64 ones), so those four
take SGD at lr 1e-4 (SGD_LR); their SGD tolerances are then 1.5e-3 to 3.5e-2.
Likewise AdamW on parameters with
tiny gradient elements (sign-like first steps) gives DenseNet, EfficientNet,
MobileNetV2 and VGG-16-BN tolerances of 1 to 18%.
The script prints, per model, PyTorch's float32 errors and the tolerances.
The output is committed; tests never run PyTorch.
"""

import argparse
import importlib.util
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "tests", "golden")
OUT = os.path.join(HERE, "zoo")
sys.path.insert(0, os.path.join(ROOT, "tools"))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_golden = _load("netc_golden_gen", os.path.join(GOLDEN, "gen.py"))
_zoo = _load("netc_golden_gen_zoo", os.path.join(GOLDEN, "gen_zoo.py"))
import conformance  # noqa: E402  (tools/, on the path through gen_zoo.py)

write_safetensors = _golden.write_safetensors
read_safetensors = _golden.read_safetensors
seed_of = _golden.seed_of

BATCH = 2
EPOCHS = 2
SAMPLES = 32          # values kept per tensor, at most
FLOOR = 1e-3          # of the file's largest scale: stcmp --sampled's rule
TOLERANCE = 1e-4
TOL_FACTOR = 4
SGD = dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
# The nets whose random initializations give gradients of 10 to 80 at batch
# 2 take SGD at a smaller rate: at 0.01 the first step moves weights by more
# than their scale and the second is ill-conditioned (PyTorch's own float32
# off its float64 by 6-11%), which tests nothing.
SGD_LR = {"googlenet": 1e-4, "mobilenet_v1": 1e-4, "mobilenet_v2": 1e-4, "shufflenet_v2_x1_0": 1e-4}


def sgd_of(name):
    return dict(SGD, lr=SGD_LR.get(name, SGD["lr"]))


def sgd_flags(name):
    return f"--optimizer sgd --lr {sgd_of(name)['lr']:g} --momentum 0.9 --nesterov --weight-decay 1e-4"


ADAMW = dict(lr=1e-3, weight_decay=0.01)
ADAMW_FLAGS = "--optimizer adamw --lr 1e-3 --weight-decay 0.01 --schedule cosine"


class Model:
    """name: the zoo model; golden: its tests/golden directory; build(): the
    PyTorch module; forward(m, x) -> the net's one output."""

    def __init__(self, name, build, forward):
        self.name, self.build, self.forward = name, build, forward
        self.golden = os.path.join(GOLDEN, f"{name}_small")


def _models():
    out = []
    for c in _zoo.CASES:
        if c.model == "yolov3_tiny":       # detection: no loss in netc
            continue
        assert len(c.outputs) == 1, c.name
        out.append(Model(c.model, c.build,
                         lambda m, x, c=c: _zoo.forward(c, m, x)[c.outputs[0]]))
    r18 = [c for c in _golden.CASES if c.name == "resnet18_small"][0]
    out.append(Model("resnet18", r18.build, lambda m, x: r18.forward(m, {"image": x})["logits"]))
    return sorted(out, key=lambda m: m.name)


MODELS = _models()
NAMES = [m.name for m in MODELS]


# ------------------------------------------------------------------ training

def load_module(model, weights):
    """The module with the golden weights (every state_dict entry but
    num_batches_tracked), float32."""
    m = model.build()
    sd = m.state_dict()
    keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    assert keys == list(weights), (model.name, "state_dict and weights differ")
    for k in keys:
        assert tuple(sd[k].shape) == tuple(weights[k].shape), (model.name, k)
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()}, strict=False)
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            assert mod.momentum == 0.1 and mod.track_running_stats, (model.name, "batchnorm momentum")
    return m


def train(model, weights, x, y, dtype, optim):
    """Two epochs of one step on (x, y) from the golden weights; returns (the
    first loss, {param: first gradient}, {name: value after} over the
    state_dict without num_batches_tracked), float64 tensors."""
    m = conformance.train_mode(load_module(model, weights).to(dtype))
    params = dict(m.named_parameters())
    if optim == "sgd":
        opt = torch.optim.SGD(m.parameters(), **sgd_of(model.name))
        sched = None
    else:
        opt = torch.optim.AdamW(m.parameters(), **ADAMW)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    x = x.to(dtype)
    loss0 = grads0 = None
    for _ in range(EPOCHS):
        opt.zero_grad()
        loss = F.cross_entropy(model.forward(m, x), y)
        loss.backward()
        if loss0 is None:
            loss0 = loss.detach().double()
            grads0 = {k: p.grad.detach().double().clone() for k, p in params.items()}
        opt.step()
        if sched:
            sched.step()
    after = {k: v.detach().double().clone() for k, v in m.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    return loss0, grads0, after


# ------------------------------------------------------------------ sampling

def stride_of(n):
    return max(1, math.ceil(n / SAMPLES))


def scales(ref, loose=None):
    """{name: the scale stcmp --sampled measures a tensor's differences by}:
    the largest of its sampled values' magnitudes and FLOOR times the
    largest over the file; for a tensor of `loose`, {name: slack}, at least
    slack / TOLERANCE."""
    own = {k: float(v.reshape(-1)[::stride_of(v.numel())].abs().max()) for k, v in ref.items()}
    floor = FLOOR * max(own.values())
    loose = loose or {}
    return {k: max(own[k], floor, loose.get(k, 0.0) / TOLERANCE) for k in ref}


def sampled(tensors, scale):
    """[(name, float32 array)] in the sampled format (the module docstring)."""
    out = []
    for k, v in tensors.items():
        flat = v.reshape(-1)
        a = flat[::stride_of(flat.numel())].float().numpy()
        out.append((k, np.concatenate([a, np.array([float(flat.norm()), scale[k]], dtype="<f4")])))
    return out


def error(got, ref, scale):
    """stcmp --sampled's measure over every value (not only the sampled
    ones): the worst tensor's largest difference over its scale, or its
    norm's difference over max(norm, scale) if larger; and that tensor."""
    worst, at = 0.0, None
    for k, r in ref.items():
        g, r = got[k].reshape(-1), r.reshape(-1)
        e = float((g - r).abs().max()) / scale[k]
        e = max(e, abs(float(g.norm()) - float(r.norm())) / max(float(r.norm()), scale[k]))
        if e > worst:
            worst, at = e, k
    return worst, at


def tolerance(f32_err):
    t = max(TOLERANCE, TOL_FACTOR * f32_err)
    return float(f"{t:.1g}") if t == TOLERANCE else float(f"{t * 1.05:.2g}")


# ---------------------------------------------------------------- generation

def generate(model):
    d = os.path.join(OUT, model.name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    weights = read_safetensors(os.path.join(model.golden, "weights.safetensors"))
    x = torch.from_numpy(np.load(os.path.join(model.golden, "input_image.npy")))
    assert x.shape[0] == BATCH, model.name
    with torch.no_grad():
        m = load_module(model, weights).eval()
        out = model.forward(m, x[:1])
    classes = out.shape[1]
    gen = torch.Generator().manual_seed(seed_of(model.name) + 7)
    y = torch.randint(0, classes, [BATCH] + list(out.shape[2:]), generator=gen, dtype=torch.int64)

    loss, grads, sgd = train(model, weights, x, y, torch.float64, "sgd")
    loss2, grads2, adamw = train(model, weights, x, y, torch.float64, "adamw")
    assert float(loss) == float(loss2) and all(torch.equal(grads[k], grads2[k]) for k in grads)
    assert list(sgd) == list(weights) and list(grads) == [k for k in weights if k in grads]

    # PyTorch's own float32 run from the same files
    l32, g32, sgd32 = train(model, weights, x, y, torch.float32, "sgd")
    _, _, adamw32 = train(model, weights, x, y, torch.float32, "adamw")
    # A gradient that vanishes in exact arithmetic (a conv's bias under a
    # batchnorm, a batchnorm's bias whose shift the next one removes) is
    # rounding noise, and AdamW's first steps move by about lr whatever
    # the gradient's size (g / (|g| + eps)): such a parameter ends anywhere
    # within the sum of the rates of where it started.
    gmax = max(float(v.norm()) for v in grads.values())
    gmax_abs = max(float(v.abs().max()) for v in grads.values())
    null = [k for k, v in grads.items() if float(v.norm()) < 1e-9 * gmax]
    lrs = ADAMW["lr"] * sum(0.5 * (1 + math.cos(math.pi * e / EPOCHS)) for e in range(EPOCHS))
    # A null gradient itself is checked against the largest gradient's
    # scale: netc's must be rounding noise too.
    scale = {"grads": scales(grads, {k: gmax_abs * TOLERANCE for k in null}), "sgd": scales(sgd),
             "adamw": scales(adamw, {k: lrs for k in null})}
    errs = {"loss": abs(float(l32) - float(loss)) / abs(float(loss)),
            "grads": error(g32, grads, scale["grads"]), "sgd": error(sgd32, sgd, scale["sgd"]),
            "adamw": error(adamw32, adamw, scale["adamw"])}
    tols = {"loss": tolerance(errs["loss"])}
    for k in ("grads", "sgd", "adamw"):
        tols[k] = tolerance(errs[k][0])

    rel = os.path.relpath(model.golden, d)
    config = (f"golden {rel}\nbatch {BATCH}\nepochs {EPOCHS}\nsgd {sgd_flags(model.name)}\nadamw {ADAMW_FLAGS}\n"
              + "".join(f"tol_{k} {tols[k]:g}\n" for k in ("loss", "grads", "sgd", "adamw")))
    _golden.write_text(os.path.join(d, "config"), config)
    # label maps as uint8 (the trainer takes any integer dtype): an eighth of int64's bytes
    np.save(os.path.join(d, "train_labels.npy"), y.numpy().astype("<i8" if y.dim() == 1 else "u1"))
    np.save(os.path.join(d, "expected_loss.npy"), np.array([float(loss)], dtype="<f4"))
    for f, t in [("grads", grads), ("sgd", sgd), ("adamw", adamw)]:
        pairs = sampled(t, scale[f])
        path = os.path.join(d, f"expected_{f}.safetensors")
        write_safetensors(path, pairs)
        back = read_safetensors(path)
        assert list(back) == [k for k, _ in pairs]
        assert all(np.array_equal(back[k], v) and np.all(np.isfinite(v)) for k, v in pairs)
    moved = {o: max(float((t[k] - torch.from_numpy(weights[k].copy()).double()).abs().max())
                    / max(float(np.abs(weights[k]).max()), 1e-30) for k in grads)
             for o, t in [("sgd", sgd), ("adamw", adamw)]}
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{model.name:20s} loss={float(loss):.4f} f32err: loss {errs['loss']:.1g} "
          f"grads {errs['grads'][0]:.2g} ({errs['grads'][1]}) sgd {errs['sgd'][0]:.2g} "
          f"adamw {errs['adamw'][0]:.2g} ({errs['adamw'][1]}); tol {tols['grads']:g} {tols['sgd']:g} "
          f"{tols['adamw']:g}; {len(null)} null gradients; moved {moved['sgd']:.2g} {moved['adamw']:.2g}; {size} bytes", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", metavar="MODEL", help="one model (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the models")
    args = ap.parse_args()
    if args.list:
        print("\n".join(NAMES))
        return 0
    for n in args.only or []:
        if n not in NAMES:
            sys.exit(f"gen_zoo.py: unknown model {n!r} (models: {', '.join(NAMES)})")
    torch.set_num_threads(1)
    for model in MODELS:
        if not args.only or model.name in args.only:
            generate(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
