#!/usr/bin/python3
"""netc's zoo against torchvision: every model at full size, same weights, same input.

    tools/conformance.py [--models a,b] [--opt O0,O2] [--target T] [--run-threads 1,2]
                         [--netc PATH] [--work DIR] [--keep] [--no-train] [--no-onnx]
    tools/conformance.py names [--models a,b]

For each zoo model (by default every one of MODELS and OWN_MODELS whose
examples/<model>.net exists), the run
  1. instantiates torchvision.models.<model>() with its random initialization
     (torch.manual_seed(SEED)), or for the models torchvision lacks
     (MobileNetV1, ZFNet, YOLOv3-tiny) the PyTorch reference in
     tools/zoo_reference.py, and
     gives every batchnorm a random affine map and running statistics
     (tools/torch2safetensors.py --randomize-bn), then for every model but
     the first six, running statistics measured on a random batch of 4
     (seed SEED + 3; zoo_reference.calibrate_batchnorm), so that the output
     depends on the input (fcn_resnet50's residual branches damped first,
     zoo_reference.damp_residual_branches);  googlenet is built with
     aux_logits=False, transform_input=False; fcn_resnet50 is
     torchvision.models.segmentation.fcn_resnet50 without the auxiliary head
     and without pretrained backbone weights, its output "out";
  2. checks that `netc params examples/<model>.net` lists the state_dict's keys
     and shapes, in order (num_batches_tracked left out);
  3. draws one input [1, 3, 224, 224] ([1, 3, 416, 416] for yolov3_tiny)
     ~ N(0, 1) (seed SEED + 2) and computes the reference outputs in eval mode
     under torch.no_grad in float64, from the same float32 weights and input;
  4. builds the program with `netc build -O0` and `-O2` (and `--target T`
     if given; by default netc's, the host's best), runs it with the weights
     as safetensors at `--threads 1` and `--threads 2` (--run-threads), whose
     outputs must be the same bytes, and compares each output: the largest absolute
     difference divided by the reference output's scale (its largest absolute
     value) must be at most 1e-4, as in the golden tests.  yolov3_tiny has two
     outputs, the decoded boxes and those nms keeps; the run notes how near
     nms's decisions come to its thresholds.
  5. the training column (unless --no-train): the trainer (`netc build --train
     -O2 --batch 2`) computes one step's gradients (`--grads-out`, dropout off
     with `--no-dropout`) on a random batch of 2 (seed SEED + 4, labels SEED
     + 5), at each --run-threads count (the same bytes), against PyTorch's in
     float64 with the module in training mode (batch statistics) and its
     dropouts off: for every parameter tensor ||netc - torch|| / ||torch||
     (floored at 1e-4 of the largest tensor's norm), the worst must be at
     most 4 times PyTorch's own float32 worst, or 1e-4 (TRAIN_FACTOR: at
     batch 2 a full-size net's float32 gradients are far from its float64
     ones).  fcn_resnet50's loss is per pixel (label maps); yolov3_tiny
     would need a detection loss (NO_TRAIN).
  6. the ONNX column (unless --no-onnx): the same module (float32, eval mode)
     exported by torch.onnx.export (opset 14, batchnorms kept, so that the
     imported parameters keep the state_dict's names), `netc import`ed, its
     parameter names and shapes checked against the state_dict's, built
     with -O2 at batch 1, run on the same input with the imported weights,
     and each output compared with the float64 reference by the same
     criterion.  yolov3_tiny's ONNX model ends at its two heads
     (zoo_reference.YoloV3Tiny.heads; their float64 outputs are the
     reference): yolo_decode and nms are netc's own ops, which ONNX writes
     as reshapes, permutes and NonMaxSuppression (docs/interop.md).
It prints a table (parameters, PyTorch's own float32 error against the float64
reference for scale, netc's error, build and run times for each level, and
the training column, the ONNX column) and exits with status 1 if any model fails.  `make conformance` runs it.

`names` writes tests/golden/<model>_names/expected_params.txt (`name [shape]`
per line, the state_dict order) for the given models, by default every zoo
model but resnet18, whose list tests/golden/gen.py writes.  For MobileNetV1,
ZFNet and YOLOv3-tiny the list is that of the reference module.

Needs Debian's python3-torch and python3-torchvision: run with /usr/bin/python3.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch2safetensors as t2s  # noqa: E402
import zoo_reference as zr  # noqa: E402

# The zoo models torchvision has, in the order the run takes them.
MODELS = ["resnet18", "resnet34", "resnet50", "resnext50_32x4d", "vgg16", "vgg16_bn",
          "mobilenet_v2", "alexnet", "densenet121", "googlenet", "shufflenet_v2_x1_0",
          "efficientnet_b0", "fcn_resnet50"]
# The zoo models torchvision lacks: their PyTorch reference (tools/zoo_reference.py).
OWN_MODELS = {
    "mobilenet_v1": lambda: zr.MobileNetV1(),
    "zfnet": lambda: zr.zfnet(),
    "yolov3_tiny": lambda: zr.YoloV3Tiny(),
}
# Models built with other than torchvision.models.<name>()'s defaults.
SPECIAL = {
    "googlenet": lambda: __import__("torchvision").models.googlenet(
        aux_logits=False, transform_input=False, init_weights=True),
    "fcn_resnet50": lambda: __import__("torchvision").models.segmentation.fcn_resnet50(
        weights=None, weights_backbone=None, aux_loss=False),
}
ALL_MODELS = MODELS + list(OWN_MODELS)
# The first six keep purely random batchnorm statistics (their outputs depend
# on the input with them); the others get running statistics measured on a
# random batch (zoo_reference.calibrate_batchnorm), without which the output
# of the nets with depthwise convolutions is the same for every input.
UNCALIBRATED = MODELS[:6]
# Models whose residual branches' last batchnorm weights are scaled by 1/4
# before calibration (zoo_reference.damp_residual_branches): calibrated, the
# FCN's deep trunk would amplify float32 rounding to the tolerance.
DAMPED = {"fcn_resnet50"}
# The outputs of the .net program (and the keys of the module's dict, where it
# returns one): one name, or a list; "logits" when not listed.
OUTPUT = {"fcn_resnet50": "out", "yolov3_tiny": ["detections", "boxes"]}
# Input shapes other than INPUT_SHAPE.
INPUT = {"yolov3_tiny": [1, 3, 416, 416]}
# Notes on how near a model's discrete decisions come to their thresholds
# (nms: a box scoring within rounding of the threshold, or two boxes
# overlapping by an IoU within rounding of it, could go either way).
MARGINS = {"yolov3_tiny": lambda ref: "nms margins: score {:.2g}, IoU {:.2g}".format(
    *zr.nms_margins(ref["detections"][0], 0.45, 0.25))}
INPUT_SHAPE = [1, 3, 224, 224]
TOLERANCE = 1e-4
# The training column: one step's gradients at batch 2 against PyTorch's in
# float64.  A full-size net's float32 gradients at batch 2 are far from its
# float64 ones: PyTorch's own float32 gradients of MobileNetV2 differ by up to
# 1% (in norm) on some tensors, the batch statistics of 50 batchnorms over 2
# samples amplifying rounding; and an activation within rounding of relu's or
# relu6's kink may fall on either side, which changes one channel's gradient
# outright (netc's float32 and PyTorch's float32 need not agree there).  So
# the error of a tensor is its relative error in norm, ||netc - ref|| /
# max(||ref||, 1e-4 * the largest tensor's norm) (the floor for gradients
# that are zero up to rounding: a batchnorm's bias feeding a 1x1 conv and
# another batchnorm), and the worst tensor's must be at most TRAIN_FACTOR
# times PyTorch's own float32 worst, or TRAIN_TOLERANCE if that is larger.
TRAIN_BATCH = 2
TRAIN_TOLERANCE = 1e-4
TRAIN_FACTOR = 4
# The ONNX column: the outputs the exported model has where they are not the
# .net program's (yolov3_tiny: its two heads, before decoding).
ONNX_OUTPUTS = {"yolov3_tiny": ["coarse", "fine"]}
ONNX_OPSET = 14

# Models the training column cannot check yet, and why.
NO_TRAIN = {
    "yolov3_tiny": "detection needs a target-assignment loss: out of scope (docs/training.md)",
}


def shape_str(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def params_text(params):
    return "".join(f"{k} {shape_str(v.shape)}\n" for k, v in params)


def build_model(name, seed):
    """The model with its random initialization, seeded."""
    if name in OWN_MODELS or name in SPECIAL:
        torch.manual_seed(seed)
        return (OWN_MODELS.get(name) or SPECIAL[name])()
    return t2s.torchvision_model(name, seed)


def outputs(name):
    """The names of the model's outputs, in the .net file's order."""
    o = OUTPUT.get(name, "logits")
    return [o] if isinstance(o, str) else list(o)


def input_shape(name):
    return INPUT.get(name, INPUT_SHAPE)


def forward(name, m, x):
    """{output name: tensor}."""
    y = m(x)
    if isinstance(y, dict):
        return {k: y[k] for k in outputs(name)}
    return {outputs(name)[0]: y}


def make_model(name, seed):
    """The model with random weights and batchnorms, in eval mode."""
    m = build_model(name, seed)
    t2s.randomize_batchnorm(m.state_dict(keep_vars=False), torch.Generator().manual_seed(seed + 1))
    if name in DAMPED:
        zr.damp_residual_branches(m)
    if name not in UNCALIBRATED:
        x = torch.randn([4] + input_shape(name)[1:], generator=torch.Generator().manual_seed(seed + 3))
        zr.calibrate_batchnorm(m, x)
    return m.eval()


def written(models):
    """The models of the list whose examples/<model>.net exists."""
    return [m for m in models if os.path.exists(os.path.join(ROOT, "examples", f"{m}.net"))]


def parse_models(text):
    models = [m for m in text.split(",") if m] if text else written(ALL_MODELS)
    for m in models:
        if m not in ALL_MODELS:
            sys.exit(f"conformance: unknown model '{m}' (the zoo models: {', '.join(ALL_MODELS)})")
    return models


# ------------------------------------------------------------------------ names

def cmd_names(args):
    models = parse_models(args.models) if args.models else [m for m in written(ALL_MODELS) if m != "resnet18"]
    for name in models:
        m = build_model(name, 0)
        params = t2s.float_params(m.state_dict(), warn=False)
        d = os.path.join(ROOT, "tests", "golden", f"{name}_names")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "expected_params.txt")
        with open(path, "w") as f:
            f.write(params_text(params))
        print(f"{os.path.relpath(path, ROOT)}: {len(params)} tensors")
    return 0


# -------------------------------------------------------------------------- run

def train_mode(m):
    """Puts the module in training mode (batch statistics) as the trainer's
    --no-dropout runs it: its dropouts off, and EfficientNet's stochastic
    depth (torchvision.ops.StochasticDepth, which the .net file leaves out:
    the identity at inference) too.  Returns m."""
    from torchvision.ops import StochasticDepth
    m.train()
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Dropout, StochasticDepth)):
            mod.eval()
    return m


def train_grads(name, m, x, y, dtype):
    """{parameter name: gradient} of the mean cross-entropy of one batch, the
    module in training mode but its dropouts off (train_mode)."""
    m = train_mode(m.to(dtype))
    m.zero_grad()
    logits = forward(name, m, x.to(dtype))[outputs(name)[0]]
    torch.nn.functional.cross_entropy(logits, y).backward()
    return {k: p.grad.detach().clone() for k, p in m.named_parameters()}


def grad_error(got, ref):
    """The worst tensor's ||got - ref|| / max(||ref||, 1e-4 * the largest
    ||ref||), and that tensor's name."""
    floor = 1e-4 * max(float(r.double().norm()) for r in ref.values())
    worst, at = 0.0, None
    for k, r in ref.items():
        r = r.double()
        scale = max(float(r.norm()), floor)
        g = got.get(k)
        if g is None or list(g.shape) != list(r.shape):
            return float("inf"), k
        e = float((g.double() - r).norm()) / scale if scale > 0 else 0.0
        if not e <= worst:
            worst, at = e, k
    return worst, at


def conform_train(name, args, m, net, work, weights, res, fail):
    """The training column: one step of netc's trainer (--grads-out) at batch
    TRAIN_BATCH against PyTorch's gradients in float64, at each run thread
    count (the same bytes)."""
    if name in NO_TRAIN:
        res["notes"].append("training: " + NO_TRAIN[name])
        return
    shape = [TRAIN_BATCH] + input_shape(name)[1:]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed + 4))
    m.eval()
    with torch.no_grad():
        scores = forward(name, m.float(), x[:1])[outputs(name)[0]].shape
    # class indices, one per sample, or per position for per-pixel scores (FCN)
    y = torch.randint(0, scores[1], [TRAIN_BATCH] + list(scores[2:]),
                      generator=torch.Generator().manual_seed(args.seed + 5))
    xpath, ypath = os.path.join(work, "train_x.npy"), os.path.join(work, "train_y.npy")
    np.save(xpath, x.numpy().astype("<f4"))
    np.save(ypath, y.numpy().astype("<i8"))
    ref = train_grads(name, m, x, y, torch.float64)
    f32 = train_grads(name, m, x, y, torch.float32)
    res["train.f32"] = grad_error(f32, ref)[0]
    prog = os.path.join(work, "trainer")
    rc, out, tb = run(build_cmd(args, net, prog, "--train", "-O2", "--batch", str(TRAIN_BATCH)), args.timeout)
    res["train.build"] = tb
    if rc != 0:
        return fail(f"training: netc build --train failed (status {rc}):\n{tail(out)}")
    got = {}
    for threads in args.run_threads:
        gpath = os.path.join(work, f"grads-{threads}.safetensors")
        cmd = [prog, "--load", weights, "--train-images", xpath, "--train-labels", ypath, "--grads-out", gpath,
               "--no-dropout", "--threads", str(threads)]
        rc, out, tr = run(cmd, args.timeout)
        res.setdefault("train.run", tr)
        if rc != 0:
            return fail(f"training: the trainer failed at --threads {threads} (status {rc}):\n{tail(out)}")
        got[threads] = open(gpath, "rb").read()
    first = args.run_threads[0]
    for threads in args.run_threads[1:]:
        if got[threads] != got[first]:
            fail(f"training: the gradients differ between --threads {first} and --threads {threads}")
    err, at = grad_error(t2s.read_safetensors(os.path.join(work, f"grads-{first}.safetensors")), ref)
    res["train.err"] = err
    limit = max(TRAIN_TOLERANCE, TRAIN_FACTOR * res["train.f32"])
    res["train.limit"] = limit
    if not err <= limit:
        fail(f"training: gradient of {at}: error {err:.3g} exceeds {limit:.3g} ({TRAIN_FACTOR} times PyTorch's "
             f"float32 error {res['train.f32']:.3g}, or {TRAIN_TOLERANCE:g})")


# ------------------------------------------------------------------------- onnx

def conform_onnx(name, args, m, x, xpath, work, params, ref, res, fail):
    """The ONNX column: torch.onnx.export of the float32 module, netc import,
    build -O2, run, compare with the float64 reference `ref` (the heads' for
    yolov3_tiny)."""
    outs = ONNX_OUTPUTS.get(name, outputs(name))
    if name in ONNX_OUTPUTS:
        with torch.no_grad():
            ref = dict(zip(outs, m.double().eval().heads(x.double())))
    ref = {k: v.numpy() for k, v in ref.items()}
    m = m.float().eval()
    model = os.path.join(work, "model.onnx")
    t0 = time.perf_counter()
    if name in ONNX_OUTPUTS:
        m.forward = m.heads   # the module itself, so that the parameter names stay the state_dict's
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the exporter's advice on constant folding and shape inference
            torch.onnx.export(m, x, model, opset_version=ONNX_OPSET, training=torch.onnx.TrainingMode.PRESERVE,
                              input_names=["image"], output_names=outs)
    finally:
        m.__dict__.pop("forward", None)
    res["onnx.export"] = time.perf_counter() - t0
    net, weights = os.path.join(work, "onnx.net"), os.path.join(work, "onnx.safetensors")
    rc, out, ti = run([args.netc, "import", model, "-o", net, "--weights", weights], args.timeout)
    res["onnx.import"] = ti
    os.remove(model)
    if rc != 0:
        return fail(f"onnx: netc import failed (status {rc}):\n{tail(out)}")
    rc, out, _ = run([args.netc, "params", net], 600)
    want = params_text(params)
    if rc != 0 or sorted(out.splitlines()) != sorted(want.splitlines()):
        extra = sorted(set(out.splitlines()) - set(want.splitlines()))[:3]
        missing = sorted(set(want.splitlines()) - set(out.splitlines()))[:3]
        return fail(f"onnx: the imported parameters are not the state_dict's: netc has {extra}, lacks {missing}")
    prog = os.path.join(work, "prog-onnx")
    rc, out, tb = run(build_cmd(args, net, prog, "-O2", "--batch", "1"), args.timeout)
    res["onnx.build"] = tb
    if rc != 0:
        return fail(f"onnx: netc build failed (status {rc}):\n{tail(out)}")
    cmd = [prog, "--weights", weights, "--input", f"image={xpath}", "--threads", str(args.run_threads[0])]
    ypaths = {k: os.path.join(work, f"onnx-{k}.npy") for k in outs}
    for k, path in ypaths.items():
        cmd += ["--output", f"{k}={path}"]
    rc, out, tr = run(cmd, args.timeout)
    res["onnx.run"] = tr
    if rc != 0:
        return fail(f"onnx: the program failed (status {rc}):\n{tail(out)}")
    errs = {}
    for k, path in ypaths.items():
        y, scale = np.load(path), float(np.abs(ref[k]).max())
        if y.shape != ref[k].shape:
            fail(f"onnx: output {k} has shape {list(y.shape)}, expected {list(ref[k].shape)}")
            errs[k] = float("inf")
            continue
        err = float(np.abs(y.astype(np.float64) - ref[k]).max()) / scale if scale > 0 else float("inf")
        errs[k] = err if np.isfinite(err) else float("inf")
        if not errs[k] <= TOLERANCE:
            fail(f"onnx: output {k}: max error {errs[k]:.3g} of its scale {scale:.4g} exceeds {TOLERANCE:g}")
    res["onnx.err"] = max(errs.values())
    if len(errs) > 1 or name in ONNX_OUTPUTS:
        res["notes"].append("onnx: " + ", ".join(f"{k} {e:.2e}" for k, e in errs.items())
                            + (" (the heads, before yolo_decode and nms)" if name in ONNX_OUTPUTS else ""))


def build_cmd(args, net, prog, *opts):
    """netc build's command line for net -> prog with opts, at --target if given."""
    cmd = [args.netc, "build", net, "-o", prog, *opts]
    return cmd + ["--target", args.target] if args.target else cmd


def run(cmd, timeout):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), time.perf_counter() - t0


def tail(text, n=6):
    lines = text.strip().splitlines()
    return "\n".join("    " + line for line in lines[-n:])


def conform(name, args, opts):
    """Runs one model; returns a result dict for the table."""
    res = {"model": name, "ok": True, "notes": []}
    net = os.path.join(ROOT, "examples", f"{name}.net")
    work = os.path.join(args.work, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    def fail(msg):
        res["ok"] = False
        res["notes"].append(msg)
        return res

    m = make_model(name, args.seed)
    res["params"] = sum(p.numel() for p in m.parameters())
    params = t2s.float_params(m.state_dict(), warn=False)

    # 1. The names and shapes netc finds in the program are torchvision's.
    rc, out, _ = run([args.netc, "params", net], 600)
    if rc != 0:
        return fail(f"netc params failed (status {rc}):\n{tail(out)}")
    want = params_text(params)
    if out != want:
        got_lines, want_lines = out.splitlines(), want.splitlines()
        for i in range(max(len(got_lines), len(want_lines))):
            g = got_lines[i] if i < len(got_lines) else "(none)"
            w = want_lines[i] if i < len(want_lines) else "(none)"
            if g != w:
                return fail(f"parameter {i}: netc has '{g}', torchvision '{w}'")

    # 2. Weights, input, the float64 reference (and PyTorch's float32 error).
    weights = os.path.join(work, "weights.safetensors")
    t2s.write_safetensors(weights, params)
    x = torch.randn(input_shape(name), generator=torch.Generator().manual_seed(args.seed + 2))
    xpath = os.path.join(work, "input.npy")
    np.save(xpath, x.numpy().astype("<f4"))
    with torch.no_grad():
        y32 = forward(name, m, x)
        ref = forward(name, m.double(), x.double())
    if name in MARGINS:
        res["notes"].append(MARGINS[name](ref))
    scales = {k: float(v.abs().max()) for k, v in ref.items()}
    res["scale"] = scales[outputs(name)[0]]
    res["f32"] = max(float((y32[k].double() - ref[k]).abs().max()) / scales[k] if scales[k] > 0
                     else float("inf") for k in ref)
    del y32
    if args.onnx:   # before the training step, whose batch statistics would move the running ones
        conform_onnx(name, args, m, x, xpath, work, params, ref, res, fail)
    if args.train:
        conform_train(name, args, m, net, work, weights, res, fail)
    del m
    ref = {k: v.numpy() for k, v in ref.items()}

    # 3. netc at each level.
    for opt in opts:
        prog = os.path.join(work, f"prog-{opt}")
        ypaths = {k: os.path.join(work, f"output-{k}-{opt}.npy") for k in ref}
        build = build_cmd(args, net, prog, f"-{opt}", "--batch", "1")
        rc, out, tb = run(build, args.timeout)
        res[f"{opt}.build"] = tb
        if rc != 0:
            fail(f"-{opt}: netc build failed (status {rc}):\n{tail(out)}")
            continue
        got = {}  # by thread count: each output's bytes
        for threads in args.run_threads:
            cmd = [prog, "--weights", weights, "--input", f"image={xpath}", "--threads", str(threads)]
            for k, path in ypaths.items():
                cmd += ["--output", f"{k}={path}"]
            rc, out, tr = run(cmd, args.timeout)
            res.setdefault(f"{opt}.run", tr)
            if rc != 0:
                fail(f"-{opt}: the program failed at --threads {threads} (status {rc}):\n{tail(out)}")
                break
            got[threads] = {k: open(path, "rb").read() for k, path in ypaths.items()}
        if len(got) < len(args.run_threads):
            continue
        first = args.run_threads[0]
        for threads in args.run_threads[1:]:
            for k in ypaths:
                if got[threads][k] != got[first][k]:
                    fail(f"-{opt}: output {k} differs between --threads {first} and --threads {threads}")
        errs = {}
        for k, path in ypaths.items():
            y = np.load(path)
            if y.shape != ref[k].shape:
                fail(f"-{opt}: output {k} has shape {list(y.shape)}, expected {list(ref[k].shape)}")
                errs[k] = float("inf")
                continue
            err = float(np.abs(y.astype(np.float64) - ref[k]).max()) / scales[k]
            errs[k] = err if np.isfinite(err) else float("inf")
            if not errs[k] <= TOLERANCE:
                fail(f"-{opt}: output {k}: max error {errs[k]:.3g} of its scale {scales[k]:.4g} "
                     f"exceeds {TOLERANCE:g}")
        res[f"{opt}.err"] = max(errs.values())
        if len(errs) > 1:
            res["notes"].append(f"-{opt}: " + ", ".join(f"{k} {e:.2e} (scale {scales[k]:.4g})"
                                                       for k, e in errs.items()))

    if res["ok"] and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    elif not res["ok"]:
        res["notes"].append(f"files kept in {os.path.relpath(work, ROOT)}")
    return res


def fmt_err(res, key, tolerance=TOLERANCE):
    v = res.get(key)
    if v is None:
        return "-"
    return f"{v:.2e}" + ("" if v <= tolerance else " !")


TRAIN_COLUMN = [True]  # whether the table has the training columns (--no-train clears it)
ONNX_COLUMN = [True]   # whether it has the ONNX columns (--no-onnx clears it)


def fmt_time(res, key):
    v = res.get(key)
    return "-" if v is None else f"{v:.1f}s"


def row(res, opts):
    cells = [f"{res['model']:16s}", f"{res.get('params', 0):>12,}",
             f"{res.get('scale', 0):>8.3g}", f"{fmt_err(res, 'f32'):>9s}"]
    for opt in opts:
        cells += [f"{fmt_err(res, opt + '.err'):>10s}", f"{fmt_time(res, opt + '.build'):>7s}",
                  f"{fmt_time(res, opt + '.run'):>7s}"]
    if TRAIN_COLUMN[0]:
        cells += [f"{fmt_err(res, 'train.f32', float('inf')):>9s}",
                  f"{fmt_err(res, 'train.err', res.get('train.limit', float('inf'))):>10s}",
                  f"{fmt_time(res, 'train.build'):>7s}", f"{fmt_time(res, 'train.run'):>7s}"]
    if ONNX_COLUMN[0]:
        cells += [f"{fmt_err(res, 'onnx.err'):>10s}", f"{fmt_time(res, 'onnx.import'):>7s}",
                  f"{fmt_time(res, 'onnx.build'):>7s}", f"{fmt_time(res, 'onnx.run'):>7s}"]
    cells.append("ok" if res["ok"] else "FAIL")
    return "  ".join(cells)


def header(opts):
    top = ["model".ljust(16), "params".rjust(12), "max|y|".rjust(8), "torch f32".rjust(9)]
    for opt in opts:
        top += [f"-{opt} error".rjust(10), "build".rjust(7), "run".rjust(7)]
    if TRAIN_COLUMN[0]:
        top += ["grad f32".rjust(9), "train err".rjust(10), "build".rjust(7), "step".rjust(7)]
    if ONNX_COLUMN[0]:
        top += ["onnx error".rjust(10), "import".rjust(7), "build".rjust(7), "run".rjust(7)]
    top.append("result")
    return "  ".join(top)


def cmd_run(args):
    models = parse_models(args.models)
    opts = [o.strip().lstrip("-") for o in args.opt.split(",") if o.strip()]
    for o in opts:
        if o not in ("O0", "O1", "O2", "O3"):
            sys.exit(f"conformance: unknown optimization level '{o}' (O0, O2)")
    if not os.access(args.netc, os.X_OK):
        sys.exit(f"conformance: no netc at {args.netc} (build it first: cmake --build build)")
    if args.threads:
        torch.set_num_threads(args.threads)
    TRAIN_COLUMN[0] = args.train
    ONNX_COLUMN[0] = args.onnx
    print(f"netc {args.netc} against torch {torch.__version__}; seed {args.seed}; input {shape_str(INPUT_SHAPE)}; "
          f"error = max|netc - torch float64| / max|torch float64|, tolerance {TOLERANCE:g}")
    if args.train:
        print(f"training: one step at batch {TRAIN_BATCH} (netc build --train -O2, the trainer's --grads-out "
              f"--no-dropout), each parameter's gradient against PyTorch's in float64 (train mode, dropout off): "
              f"the worst tensor's relative error in norm; grad f32 is PyTorch's own float32 one, and netc's may be "
              f"{TRAIN_FACTOR} times that (or {TRAIN_TOLERANCE:g})")
    if args.onnx:
        print(f"onnx: torch.onnx.export (opset {ONNX_OPSET}, batchnorms kept) -> netc import -> netc build -O2, "
              f"run at --threads {args.run_threads[0]}: onnx error by the same criterion")
    print(header(opts), flush=True)
    results = []
    for name in models:
        try:
            res = conform(name, args, opts)
        except subprocess.TimeoutExpired as e:
            res = {"model": name, "ok": False, "notes": [f"timed out after {e.timeout:.0f}s: {' '.join(e.cmd)}"]}
        results.append(res)
        print(row(res, opts), flush=True)
        for note in res["notes"]:
            print(f"  {name}: {note}", flush=True)
    failed = [r["model"] for r in results if not r["ok"]]
    print(f"{len(results) - len(failed)} of {len(results)} models agree with PyTorch"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    names = bool(argv) and argv[0] == "names"
    if names:
        argv.pop(0)
    ap = argparse.ArgumentParser(
        prog="conformance.py" + (" names" if names else ""),
        description=("Write tests/golden/<model>_names/expected_params.txt from torchvision."
                     if names else __doc__.split("\n")[0]))
    ap.add_argument("--models", metavar="A,B", help=f"a subset of {','.join(ALL_MODELS)}")
    if not names:
        ap.add_argument("--opt", default="O0,O2", metavar="O0,O2", help="the levels to build at (default O0,O2)")
        ap.add_argument("--target", help="netc build --target (default: netc's, the host's best)")
        ap.add_argument("--run-threads", default="1,2", metavar="1,2",
                        help="run each program at these --threads; the outputs must be the same bytes "
                             "(default 1,2; the run time shown is the first's)")
        ap.add_argument("--netc", default=os.path.join(ROOT, "build", "netc"), help="default build/netc")
        ap.add_argument("--work", default=os.path.join(ROOT, "build", "conformance"),
                        help="where weights, inputs and programs go (default build/conformance)")
        ap.add_argument("--keep", action="store_true", help="keep each model's files (removed after a pass)")
        ap.add_argument("--seed", type=int, default=1, help="weights SEED, batchnorms SEED + 1, input SEED + 2")
        ap.add_argument("--threads", type=int, default=0, help="PyTorch's thread count (default: its own)")
        ap.add_argument("--timeout", type=float, default=7200, help="seconds allowed for each build and run")
        ap.add_argument("--no-train", dest="train", action="store_false",
                        help="leave out the training column (one step's gradients at batch 2)")
        ap.add_argument("--no-onnx", dest="onnx", action="store_false",
                        help="leave out the ONNX column (torch.onnx.export, netc import, build -O2, run)")
    args = ap.parse_args(argv)
    if names:
        return cmd_names(args)
    args.netc = os.path.abspath(args.netc)
    args.work = os.path.abspath(args.work)
    try:
        args.run_threads = [int(t) for t in args.run_threads.split(",")]
    except ValueError:
        ap.error(f"--run-threads: a comma-separated list of thread counts, not '{args.run_threads}'")
    if not args.run_threads or min(args.run_threads) < 1:
        ap.error("--run-threads: thread counts must be positive")
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
