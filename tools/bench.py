#!/usr/bin/python3
"""netc's zoo against PyTorch: milliseconds per batch, same weights, same input.

    tools/bench.py [--models a,b] [--batches 1,8] [--threads T] [--all-cores N]
                   [--no-channels-last] [--no-torchscript] [--budget S] [--max-runs R]
                   [--peak GFLOPS] [--markdown FILE] [--netc PATH] [--work DIR] [--keep]
                   [--cpus 0,1]

First it measures the machine's single-core peak float32 GFLOP/s with
tools/peak.c (compiled into the work directory with the system C compiler,
`cc -O2`; independent FMA chains at the widest vector width the CPU has, the
best of 5 runs of 0.3 s; --peak GFLOPS gives the number instead).  Then, for
each zoo model (by default every one of tools/conformance.py's ALL_MODELS
whose examples/<model>.net exists, torchvision's and those it takes from
tools/zoo_reference.py, and lenet5, in order of multiply-accumulates per
sample, smallest first; --models picks some) and each batch size B, the run
  1. makes the PyTorch model with random weights and batchnorms as
     tools/conformance.py does (same seed; LeNet-5 is
     tools/pytorch_baseline.py's module, with random biases), writes its
     weights as safetensors, and draws one input [B, ...] ~ N(0, 1) of the
     program's input shape ([B, 3, 224, 224] for the ImageNet models);
  2. builds the program with `netc build -O2 --batch B` and runs it with
     `--threads T --repeat R [--warmup W]` (T = --threads), which times only the compiled forward pass
     (not process start, weight loading or .npy I/O) and prints the median and
     min milliseconds per batch;
  3. times PyTorch on the same input at the same T threads (1 by default;
     torch.set_num_threads(T), and
     OpenBLAS's own thread count set to T too), in eval mode under
     torch.no_grad(), three ways: eager (one warm-up call); eager with the
     model and the input in channels-last memory format (the input's
     conversion is part of each timed call; --no-channels-last leaves it
     out); and TorchScript frozen with optimize_for_inference (batchnorm
     folded, every convolution through oneDNN; two warm-up calls;
     --no-torchscript leaves it out); then R calls each, timed with
     time.perf_counter.  The best of the three medians is "PyTorch's best",
     the reference of the ratio; with --all-cores N also eager at N threads,
     a column of its own, not a candidate for the best;
  4. checks that netc's output agrees with eager PyTorch's: the largest
     absolute difference over the largest absolute value of PyTorch's output
     must be at most 1e-4 (as in the golden tests), or the run fails (a
     channels-last or TorchScript output that does not agree with eager's
     within the same bound is left out of the best, with a note);
  5. computes netc's GFLOP/s: 2 x the multiply-accumulates of a sample
     (`netc stats`) x B / netc's median time, and that as a percentage of
     the peak times T; and PyTorch's best as a percentage of the same.
--cpus LIST runs all of it (the peak, PyTorch, netc's builds and programs)
on those CPUs only (os.sched_setaffinity, inherited by the child
processes).  On a shared machine the cores are not alike: on the 2-core VM
of docs/performance.md, CPU 1 ran ResNet-18 and ResNet-50 25 to 33% slower
than CPU 0 (the same program, pinned with taskset, alternating) while its
FMA peak was the same, so a one-thread run that lets the scheduler place
netc on one core and PyTorch on the other compares the cores, not the
code.  `--cpus 0 --threads 1` puts both on the same one.
The repetitions adapt to a time budget per measurement (--budget, seconds): R
is how many runs fit in it, between 1 and --max-runs, so small models are
timed many times and VGG-16 at batch 8 (about a minute a run) once; a netc
measurement whose single run is expected to take longer than the budget is
made without a warm-up run.  The expected time comes from an untimed
calibration run for the first batch size of a model, then from the time per
sample of the previous batch size.

It prints a markdown table (medians in ms per batch, PyTorch's best in bold;
the ratio netc / PyTorch's best, above 1 where netc is slower; GFLOP/s and
percentages of the peak) and the conditions (machine, peak, the BLAS and
oneDNN torch uses, load average before and after); --markdown FILE writes
them to FILE, rewritten after each row so that an interrupted run keeps what
it measured.  Exit status 1 if a model fails to build, run or agree.
`make bench` runs it, after scripts/install-bench-deps.sh has installed
OpenBLAS (Debian's PyTorch otherwise calls the reference BLAS).

Needs Debian's python3-torch and python3-torchvision: run with /usr/bin/python3.
"""

import argparse
import copy
import ctypes
import os
import platform
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

import conformance  # noqa: E402
import pytorch_baseline  # noqa: E402
import torch2safetensors as t2s  # noqa: E402

TOLERANCE = conformance.TOLERANCE
# The line `prog --repeat R` prints on stderr (runtime/model.c, print_timing).
TIMING = re.compile(r"^\S+: timing: batch=(\d+) batches=(\d+) warmup=(\d+) runs=(\d+) "
                    r"median_ms=([0-9.]+) min_ms=([0-9.]+) mean_ms=([0-9.]+)$", re.M)


# Models the benchmark takes besides conformance.py's: name -> the module.
BENCH_MODELS = {"lenet5": pytorch_baseline.LeNet5}
# The line tools/peak.c prints.
PEAK = re.compile(r"^peak_gflops ([0-9.]+) (\S+)$", re.M)


class BenchError(Exception):
    pass


def make_model(name, seed):
    """The model with random weights (and batchnorms), in eval mode."""
    if name not in BENCH_MODELS:
        return conformance.make_model(name, seed)
    torch.manual_seed(seed)
    m = BENCH_MODELS[name]()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # LeNet-5's biases start at zero: make them count
        for k, v in m.state_dict().items():
            if k.endswith(".bias"):
                v.copy_(0.1 * torch.randn(v.shape, generator=g))
    return m.eval()


def run(cmd, timeout):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise BenchError(f"{os.path.basename(cmd[0])} {cmd[1] if len(cmd) > 1 else ''} failed "
                         f"(status {p.returncode}):\n{conformance.tail(out)}")
    return out


def runs_for(expected, budget, max_runs):
    """How many timed runs of `expected` seconds fit in the budget."""
    return max(1, min(max_runs, int(budget / max(expected, 1e-6))))


# ----------------------------------------------------------------------- netc

def netc_time(prog, io, weights, xpath, ypath, warmup, runs, timeout, threads):
    """Runs the program with --repeat at `threads` threads; returns the median
    and min ms per batch, and the outputs ({name: array}; ypath has a {}
    for the output's name)."""
    cmd = [prog, "--weights", weights, "--input", f"{io['input']}={xpath}"]
    for o in io["outputs"]:
        cmd += ["--output", f"{o}={ypath.format(o)}"]
    out = run(cmd + ["--threads", str(threads), "--repeat", str(runs), "--warmup", str(warmup)], timeout)
    m = TIMING.search(out)
    if not m:
        raise BenchError(f"{prog}: no timing line in its output:\n{conformance.tail(out)}")
    if int(m.group(4)) != runs or int(m.group(3)) != warmup:
        raise BenchError(f"{prog}: timing line '{m.group(0)}' does not match --repeat {runs} --warmup {warmup}")
    return {"median": float(m.group(5)), "min": float(m.group(6)), "runs": runs, "warmup": warmup,
            "y": {o: np.load(ypath.format(o)) for o in io["outputs"]}}


def bench_netc(prog, io, weights, xpath, ypath, expected, args):
    """expected: seconds per batch, or None (then a calibration run first)."""
    calib = None
    if expected is None:
        calib = netc_time(prog, io, weights, xpath, ypath, 0, 1, args.timeout, args.threads)
        expected = calib["median"] / 1e3
    if expected >= args.budget:
        # One run is over budget: time a single run without a warm-up (the
        # calibration run, if there was one, is that run).
        return calib or netc_time(prog, io, weights, xpath, ypath, 0, 1, args.timeout, args.threads)
    runs = runs_for(expected, args.budget, args.max_runs)
    return netc_time(prog, io, weights, xpath, ypath, 1, runs, args.timeout, args.threads)


# -------------------------------------------------------------------- PyTorch

def openblas():
    """The OpenBLAS library torch has loaded (ctypes), or None."""
    for path in loaded_libraries():
        if re.search(r"openblas|blas\.so", os.path.basename(path)) or "openblas" in path:
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_config.restype = ctypes.c_char_p
                lib.openblas_set_num_threads  # noqa: B018 - present in OpenBLAS only
                return lib
            except (OSError, AttributeError):
                continue
    return None


OPENBLAS = None  # set in main, after torch is loaded


def set_threads(threads):
    """PyTorch's intra-op threads, and OpenBLAS's, which torch.set_num_threads
    does not set (Debian's torch does not know which BLAS it calls) and which
    start at one per core."""
    torch.set_num_threads(threads)
    if OPENBLAS is not None:
        OPENBLAS.openblas_set_num_threads(threads)


def bench_torch(name, model, x, threads, warmup, args):
    """warmup calls, then as many timed calls as fit in the budget at the
    last warm-up call's speed; the outputs as {name: array}."""
    set_threads(threads)
    with torch.no_grad():
        for _ in range(warmup):
            t0 = time.perf_counter()
            y = model(x)
            expected = time.perf_counter() - t0
        times = []
        for _ in range(runs_for(expected, args.budget, args.max_runs)):
            t0 = time.perf_counter()
            y = model(x)
            times.append(time.perf_counter() - t0)
    if isinstance(y, tuple):  # a scripted GoogLeNet's GoogLeNetOutputs
        y = y[0]
    if isinstance(y, dict):  # torchvision's segmentation models, YOLOv3-tiny
        y = {k: y[k] for k in conformance.outputs(name)}
    else:
        y = {conformance.outputs(name)[0]: y}
    return {"median": 1e3 * statistics.median(times), "min": 1e3 * min(times), "runs": len(times),
            "y": {k: v.contiguous().numpy() for k, v in y.items()}}


# ------------------------------------------------------------------------ run

def model_macs(netc, models):
    """{model: multiply-accumulates per sample} (`netc stats`; 0 if it does
    not say)."""
    macs = {}
    for name in models:
        out = run([netc, "stats", os.path.join(ROOT, "examples", f"{name}.net")], 600)
        m = re.search(r"(\d+) multiply-accumulates per sample", out)
        macs[name] = int(m.group(1)) if m else 0
    return macs


def channels_last(model):
    """A copy of the model in channels-last memory format, and a function that
    converts the input as part of the call (netc takes NCHW input)."""
    m = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def fn(x):
        return m(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)
    return fn


# The PyTorch configurations at --threads that compete for "PyTorch's best".
BEST_OF = ("torch", "cl", "script")


def torch_variants(model, args):
    """The PyTorch configurations timed, in the table's order: "torch", the
    model as it is (eval, no_grad) at --threads, against which netc's output
    is checked; "cl", the same in channels-last memory format; "script", the
    same model through TorchScript's optimize_for_inference (frozen,
    batchnorm folded into the convolutions, convolutions through oneDNN) at
    --threads; "torch_all", the model as it is at --all-cores threads.  fn is
    None (with a note) for a variant that is off or that PyTorch cannot
    make."""
    out = [{"key": "torch", "fn": model, "threads": args.threads, "warmup": 1}]
    if args.channels_last:
        v = {"key": "cl", "fn": None, "threads": args.threads, "warmup": 1}
        try:
            v["fn"] = channels_last(model)
        except Exception as e:  # noqa: BLE001 - any failure only drops the column
            v["note"] = f"no channels-last column: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        out.append(v)
    if args.torchscript:
        # Two warm-up calls: TorchScript's profiling executor optimizes the
        # graph during the first ones.
        v = {"key": "script", "fn": None, "threads": args.threads, "warmup": 2}
        try:
            with torch.no_grad():
                v["fn"] = torch.jit.optimize_for_inference(torch.jit.script(model))
        except Exception as e:  # noqa: BLE001 - any failure only drops the column
            v["note"] = f"no TorchScript column: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        out.append(v)
    if args.all_cores > args.threads:
        out.append({"key": "torch_all", "fn": model, "threads": args.all_cores, "warmup": 1})
    return out


def program_io(prog, name):
    """The input's name and per-sample shape and the outputs' names, from the
    program's --help ("input  image: [S, 3, 224, 224]", "output logits: ..."),
    which must be the PyTorch model's (conformance.outputs)."""
    out = run([prog, "--help"], 60)
    ins = re.findall(r"^input  (\S+): \[S, ([0-9, ]+)\]$", out, re.M)
    outs = re.findall(r"^output (\S+): ", out, re.M)
    if len(ins) != 1 or sorted(outs) != sorted(conformance.outputs(name)):
        raise BenchError(f"{prog}: the benchmark needs one input and the outputs {conformance.outputs(name)}; "
                         f"--help lists inputs {[i for i, _ in ins]} and outputs {outs}")
    return {"input": ins[0][0], "outputs": outs, "shape": [int(d) for d in ins[0][1].split(",")]}


def rel_err(y, ref):
    """The largest over the outputs ({name: array}, both) of max |y - ref| /
    max |ref| (inf if a shape differs, ref is 0 or the result not finite),
    and the first output's scale max |ref|."""
    worst, first = 0.0, None
    for k, r in ref.items():
        scale = float(np.abs(r).max())
        first = scale if first is None else first
        if y[k].shape != r.shape or scale == 0:
            return float("inf"), first
        err = float(np.abs(y[k].astype(np.float64) - r).max()) / scale
        worst = max(worst, err if np.isfinite(err) else float("inf"))
    return worst, first


def best_of(res):
    """The key of the fastest PyTorch configuration that agrees with eager's
    output, or None."""
    cands = [k for k in BEST_OF if k in res and res[k].get("agrees", True)]
    return min(cands, key=lambda k: res[k]["median"]) if cands else None


def bench_model(name, args, macs, results, report):
    net = os.path.join(ROOT, "examples", f"{name}.net")
    work = os.path.join(args.work, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    model = make_model(name, args.seed)
    weights = os.path.join(work, "weights.safetensors")
    t2s.write_safetensors(weights, t2s.float_params(model.state_dict(), warn=False))

    variants = torch_variants(model, args)
    for v in variants:
        if v["fn"] is None:
            print(f"  {name}: {v['note']}", flush=True)
    per_sample = None  # seconds per sample of netc's last measurement
    for batch in args.batches:
        res = {"model": name, "batch": batch, "ok": False, "load": os.getloadavg()[0],
               "flop": 2 * macs.get(name, 0) * batch}
        results.append(res)
        try:
            prog = os.path.join(work, f"prog-{batch}")
            t0 = time.perf_counter()
            run([args.netc, "build", net, "-O2", "--batch", str(batch), "-o", prog], args.timeout)
            res["build"] = time.perf_counter() - t0
            io = program_io(prog, name)
            x = torch.randn([batch] + io["shape"], generator=torch.Generator().manual_seed(args.seed + 2))
            xpath = os.path.join(work, f"input-{batch}.npy")
            ypath = os.path.join(work, f"output-{{}}-{batch}.npy")
            np.save(xpath, x.numpy().astype("<f4"))

            res["netc"] = bench_netc(prog, io, weights, xpath, ypath,
                                     None if per_sample is None else per_sample * batch, args)
            per_sample = res["netc"]["median"] / 1e3 / batch
            for v in variants:
                if v["fn"] is None:
                    continue
                if v["key"] == "torch":
                    res["torch"] = bench_torch(name, v["fn"], x, v["threads"], v["warmup"], args)
                    continue
                try:  # a failure of an extra column only leaves it empty
                    res[v["key"]] = bench_torch(name, v["fn"], x, v["threads"], v["warmup"], args)
                except Exception as e:  # noqa: BLE001
                    print(f"  {name}, batch {batch}: no {v['key']} time: {type(e).__name__}: {e}", flush=True)

            y, ref = res["netc"]["y"], res["torch"]["y"]
            for v in variants:  # PyTorch's other configurations against eager
                t = res.get(v["key"])
                if v["key"] == "torch" or t is None:
                    continue
                t["err"] = rel_err(t["y"], ref)[0]
                t["agrees"] = t["err"] <= TOLERANCE
                if not t["agrees"]:
                    print(f"  {name}, batch {batch}: {v['key']}'s output differs from eager PyTorch's by "
                          f"{t['err']:.3g} of its scale: left out of the best", flush=True)
            for k in ref:
                if y[k].shape != ref[k].shape:
                    raise BenchError(f"netc's output {k} has shape {list(y[k].shape)}, PyTorch's {list(ref[k].shape)}")
            res["err"], scale = rel_err(y, ref)
            if not res["err"] <= TOLERANCE:
                raise BenchError(f"netc and PyTorch disagree: max error {res['err']:.3g} of the output's "
                                 f"scale {scale:.4g} exceeds {TOLERANCE:g}")
            res["ok"] = True
        except (BenchError, subprocess.TimeoutExpired) as e:
            res["note"] = str(e)
        for k in list(res):  # the outputs are not needed any more
            if isinstance(res[k], dict):
                res[k].pop("y", None)
        report(res)
    del model
    if all(r["ok"] for r in results if r["model"] == name) and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"  {name}: files kept in {os.path.relpath(work, ROOT)}", flush=True)


def fmt_ms(m):
    if m is None:
        return "-"
    v = m["median"]
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def fmt_num(v):
    """Three significant digits or so: 0.123, 1.23, 12.3, 123."""
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def fmt_pct(v):
    return "-" if v is None else f"{v:.0f}%" if v >= 10 else f"{v:.1f}%"


def columns(args):
    """(key, heading) of the PyTorch columns."""
    t = f"{args.threads} thread{'s' * (args.threads > 1)}"
    cols = [("torch", f"PyTorch eager, {t}")]
    if args.channels_last:
        cols.append(("cl", "channels-last"))
    if args.torchscript:
        cols.append(("script", "TorchScript"))
    if args.all_cores > args.threads:
        cols.append(("torch_all", f"PyTorch eager, {args.all_cores} threads"))
    return cols


def figures(r, args):
    """The derived numbers of a row: netc / best, netc's GFLOP/s and its and
    PyTorch's best's % of the one-core peak times --threads; None
    where a number is missing."""
    n, best = r.get("netc"), best_of(r)
    t = r.get(best) if best else None
    f = {"best": best, "ratio": n["median"] / t["median"] if n and t else None,
         "gflops": None, "pct": None, "best_pct": None}
    peak = args.peak_gflops
    if n and r["flop"]:
        f["gflops"] = r["flop"] / (n["median"] / 1e3) / 1e9
        if peak:
            f["pct"] = 100 * f["gflops"] / (peak * args.threads)
    if t and r["flop"] and peak:
        f["best_pct"] = 100 * r["flop"] / (t["median"] / 1e3) / 1e9 / (peak * args.threads)
    return f


def table(results, args):
    cols = columns(args)
    best_cols = [c for c in cols if c[0] in BEST_OF]
    other_cols = [c for c in cols if c[0] not in BEST_OF]
    head = ["model", "batch", "netc -O2"] + [title for _, title in best_cols]
    head += ["netc / best", "netc GFLOP/s", "netc % of peak", "best % of peak"]
    for _, title in other_cols:
        head += [title, "ratio"]
    head += ["runs", "load", "max error"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "--:|" * (len(head) - 1)]
    for r in results:
        n = r.get("netc")
        f = figures(r, args)
        cells = [r["model"], str(r["batch"]), fmt_ms(n)]
        for key, _ in best_cols:
            cell = fmt_ms(r.get(key))
            cells.append(f"**{cell}**" if key == f["best"] and len(best_cols) > 1 else cell)
        cells += [fmt_ratio(f["ratio"]), fmt_num(f["gflops"]),
                  fmt_pct(f["pct"]), fmt_pct(f["best_pct"])]
        for key, _ in other_cols:
            t = r.get(key)
            cells += [fmt_ms(t), fmt_ratio(n["median"] / t["median"] if n and t else None)]
        runs = "-"
        if n:
            runs = f"{n['runs']}{'' if n['warmup'] else ' (cold)'}"
            runs += "; " + "/".join(str(r[k]["runs"]) if k in r else "-" for k, _ in cols)
        err = f"{r['err']:.1e}" if "err" in r else "-"
        if not r["ok"]:
            err += " FAIL"
        cells += [runs, f"{r['load']:.1f}", err]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            name = m.group(1).strip()
            fam = re.search(r"^CPU family:\s*(\d+)$", out, re.M)
            return f"{name} (family {fam.group(1)})" if fam else name
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def loaded_libraries():
    """The shared libraries this process has mapped (after `import torch`:
    torch's), resolved to the files."""
    try:
        with open("/proc/self/maps") as f:
            return sorted({line.split()[-1] for line in f if line.rstrip().endswith(".so") or ".so." in line})
    except OSError:
        return []


def torch_libraries():
    """The BLAS and oneDNN libraries this process has loaded (through torch):
    Debian's PyTorch uses whichever libblas.so.3 the alternatives system
    picks, and its speed depends on it."""
    libs = [p for p in loaded_libraries() if re.search(r"blas|dnnl|mkl", os.path.basename(p))]
    return ", ".join(libs) if libs else "none found"


def torch_config():
    """What torch.__config__.show() says about its BLAS, oneDNN and CPU
    kernels."""
    try:
        text = torch.__config__.show()
    except Exception:  # noqa: BLE001
        return "unknown"
    out = [m.group(0) for m in re.finditer(r"\b(BLAS_INFO|LAPACK_INFO|USE_MKLDNN|USE_OPENMP)=[^,\s]*", text)]
    for pat in (r"Intel\(R\) MKL-DNN v[0-9.]+", r"Intel\(R\) Math Kernel Library[^\n]*",
                r"CPU capability usage: \S+"):
        m = re.search(pat, text)
        if m:
            out.append(m.group(0).strip())
    return ", ".join(out) if out else "unknown"


def blas_line():
    if OPENBLAS is not None:
        cfg = OPENBLAS.openblas_get_config().decode("utf-8", "replace").strip()
        return f"- BLAS: {cfg} (its thread count set to each PyTorch column's)"
    libs = [p for p in loaded_libraries() if re.search(r"blas", os.path.basename(p))]
    if any("/blas/" in p for p in libs):
        print("bench: warning: torch calls the reference BLAS (run scripts/install-bench-deps.sh, as "
              "`make bench` does, to install OpenBLAS): eager PyTorch's 1x1 convolutions and linear "
              "layers are slow on it", file=sys.stderr)
        return "- BLAS: the reference (netlib) BLAS, unoptimized: not OpenBLAS"
    return f"- BLAS: {', '.join(libs) if libs else 'none loaded'}"


def cc_version(cc=None):
    cc = cc or os.environ.get("CC") or "clang"
    try:
        out = subprocess.run([cc, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        return out.splitlines()[0].strip() if out else cc
    except OSError:
        return cc


PEAK_CC = "cc"


def measure_peak(args):
    """Builds and runs tools/peak.c: (GFLOP/s, the condition line), or
    (None, line) if it cannot."""
    if args.peak:
        return args.peak, f"- peak: {args.peak:g} GFLOP/s float32 on one core (given: --peak)"
    exe = os.path.join(args.work, "peak")
    try:
        os.makedirs(args.work, exist_ok=True)
        run([PEAK_CC, "-O2", "-o", exe, os.path.join(HERE, "peak.c")], 120)
        load = os.getloadavg()[0]
        m = PEAK.search(run([exe], 300))
        if not m:
            raise BenchError("tools/peak.c printed no peak_gflops line")
    except (BenchError, OSError, subprocess.TimeoutExpired) as e:
        print(f"bench: warning: no peak measured, no % of peak: {e}", file=sys.stderr)
        return None, "- peak: not measured"
    g = float(m.group(1))
    return g, (f"- peak: {g:g} GFLOP/s float32 on one core, {m.group(2)} (tools/peak.c: independent FMA "
               f"chains, best of 5 runs of 0.3 s, built by {cc_version(PEAK_CC)} -O2; load {load:.2f})")


def load_str():
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None):
    global OPENBLAS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", metavar="A,B",
                    help="zoo models (default: every one, smallest first)")
    ap.add_argument("--batches", default="1,8", metavar="1,8", help="batch sizes (default 1,8)")
    ap.add_argument("--threads", type=int, default=1, help="the thread count of PyTorch and of netc's programs (default 1)")
    ap.add_argument("--all-cores", type=int, default=0, metavar="N",
                    help=f"also time eager PyTorch at N threads when N > --threads (this machine has "
                         f"{os.cpu_count()} cores; default 0: not)")
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                    help="leave out the channels-last eager column")
    ap.add_argument("--no-torchscript", dest="torchscript", action="store_false",
                    help="leave out the TorchScript (optimize_for_inference) column")
    ap.add_argument("--budget", type=float, default=4, metavar="S",
                    help="seconds of timed runs per measurement (default 4)")
    ap.add_argument("--max-runs", type=int, default=20, help="at most this many timed runs (default 20)")
    ap.add_argument("--peak", type=float, default=0, metavar="GFLOPS",
                    help="the one-core peak GFLOP/s instead of measuring it with tools/peak.c")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table and the conditions to FILE")
    ap.add_argument("--netc", default=os.path.join(ROOT, "build", "netc"), help="default build/netc")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench"),
                    help="where weights, inputs and programs go (default build/bench)")
    ap.add_argument("--keep", action="store_true", help="keep each model's files (kept anyway if it fails)")
    ap.add_argument("--seed", type=int, default=1, help="as tools/conformance.py (default 1)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed for each build and run")
    ap.add_argument("--cpus", metavar="0,1",
                    help="run everything on these CPUs only (default: wherever the scheduler puts it); "
                         "--cpus 0 with --threads 1 times netc and PyTorch on the same core")
    args = ap.parse_args(argv)
    if args.cpus:
        try:
            cpus = {int(c) for c in args.cpus.split(",") if c.strip()}
            os.sched_setaffinity(0, cpus)
        except (ValueError, OSError) as e:
            sys.exit(f"bench: --cpus {args.cpus}: {e}")
        if len(cpus) < args.threads:
            sys.exit(f"bench: --threads {args.threads} on {len(cpus)} CPU(s) of --cpus {args.cpus}")
    args.netc = os.path.abspath(args.netc)
    args.work = os.path.abspath(args.work)
    if not os.access(args.netc, os.X_OK):
        sys.exit(f"bench: no netc at {args.netc} (build it first: make build)")
    known = conformance.written(conformance.ALL_MODELS + list(BENCH_MODELS))
    if args.models:
        models = [m for m in args.models.split(",") if m]
        for m in models:
            if m not in known:
                sys.exit(f"bench: unknown model '{m}' (the zoo models: {', '.join(known)})")
    else:
        models = known
    macs = model_macs(args.netc, models)
    models = sorted(models, key=lambda name: macs[name])
    try:
        args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        sys.exit(f"bench: --batches needs a list of positive integers, not '{args.batches}'")
    if not args.batches or min(args.batches) < 1 or args.threads < 1 or args.budget <= 0 or args.max_runs < 1:
        sys.exit("bench: --batches, --threads, --budget and --max-runs must be positive")
    if args.peak < 0:
        sys.exit("bench: --peak must be positive")
    torch.set_num_interop_threads(1)
    OPENBLAS = openblas()

    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = load_str()
    args.peak_gflops, peak_line = measure_peak(args)
    conditions = [
        f"- {start}; {cpu_name()}, {os.cpu_count()} cores"
        + (f" (the run on CPU(s) {args.cpus} only)" if args.cpus else "")
        + f"; torch {torch.__version__}; seed {args.seed}",
        f"- netc {os.path.relpath(args.netc, ROOT)} -O2, compiled by {cc_version()}",
        peak_line,
        f"- PyTorch's libraries: {torch_libraries()}",
        f"- torch.__config__.show(): {torch_config()}",
        blas_line(),
        f"- load average (1, 5, 15 min) before the run: {load_before}",
    ]
    for var in ("CC", "NETC_CFLAGS"):
        if os.environ.get(var):
            conditions.append(f"- netc build with ${var}={os.environ[var]}")
    print("\n".join(conditions), flush=True)
    cols = columns(args)
    print(f"{'model':16s} {'batch':>5s} {'build':>6s} {'netc':>9s}"
          + "".join(f" {key:>9s}" for key, _ in cols)
          + f" {'/best':>6s} {'GFLOP/s':>8s} {'%peak':>6s} {'best%':>6s}   error  runs", flush=True)

    def write_markdown(done):
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write("\n".join(conditions + done) + "\n\n" + table(results, args) + "\n")

    def report(r):
        write_markdown(["- (the run is not finished)"])
        n = r.get("netc")
        f = figures(r, args)
        line = f"{r['model']:16s} {r['batch']:5d} {r.get('build', 0):5.1f}s {fmt_ms(n):>9s}"
        for key, _ in cols:
            line += f" {fmt_ms(r.get(key)) + ('*' if key == f['best'] else ''):>9s}"
        line += (f" {fmt_ratio(f['ratio']):>6s} {fmt_num(f['gflops']):>8s}"
                 f" {fmt_pct(f['pct']):>6s} {fmt_pct(f['best_pct']):>6s}")
        line += f"  {r.get('err', float('nan')):.1e}  {n['runs'] if n else '-'}"
        line += "/".join([""] + [str(r[k]["runs"]) if k in r else "-" for k, _ in cols])
        print(line + ("" if r["ok"] else "  FAIL"), flush=True)
        if "note" in r:
            print("  " + r["note"].replace("\n", "\n  "), flush=True)

    results = []
    t0 = time.perf_counter()
    for name in models:
        bench_model(name, args, macs, results, report)
    minutes = (time.perf_counter() - t0) / 60
    conditions.append(f"- load average after the run ({minutes:.1f} minutes): {load_str()}")
    print()
    print(table(results, args))
    print(conditions[-1])
    write_markdown([])
    failed = [f"{r['model']} (batch {r['batch']})" for r in results if not r["ok"]]
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
