#!/usr/bin/python3
"""netc's zoo against PyTorch: milliseconds per batch, same weights, same input.

    tools/bench.py [--models a,b] [--batches 1,8] [--threads T] [--all-cores N]
                   [--no-torchscript] [--budget S] [--max-runs R] [--markdown FILE]
                   [--netc PATH] [--work DIR] [--keep]

For each zoo model that torchvision has (by default every one of
tools/conformance.py's MODELS whose examples/<model>.net exists, in order of
multiply-accumulates per sample, smallest first; --models may also name the
models conformance.py takes from tools/zoo_reference.py) and each batch size
B, the run
  1. makes the PyTorch model with random weights and batchnorms as
     tools/conformance.py does (same seed), writes its weights as safetensors,
     and draws one input [B, ...] ~ N(0, 1) of the program's input shape
     ([B, 3, 224, 224] for the ImageNet models);
  2. builds the program with `netc build -O2 --batch B` and runs it with
     `--repeat R [--warmup W]`, which times only the compiled forward pass
     (not process start, weight loading or .npy I/O) and prints the median and
     min milliseconds per batch;
  3. times the PyTorch model on the same input, in eval mode under
     torch.no_grad(), with torch.set_num_threads(T) (T = --threads, 1 by
     default: netc is single-threaded), one warm-up call then R calls, each
     timed with time.perf_counter; then, as extra columns, the same model
     through TorchScript's optimize_for_inference at T threads (frozen,
     batchnorm folded, every convolution through oneDNN; two warm-up calls;
     --no-torchscript leaves it out), and with --all-cores N the plain model
     at N threads;
  4. checks that netc's output agrees with PyTorch's: the largest absolute
     difference over the largest absolute value of PyTorch's output must be
     at most 1e-4 (as in the golden tests), or the run fails.
The repetitions adapt to a time budget per measurement (--budget, seconds): R
is how many runs fit in it, between 1 and --max-runs, so small models are
timed many times and VGG-16 at batch 8 (about a minute a run) once; a netc
measurement whose single run is expected to take longer than the budget is
made without a warm-up run.  The expected time comes from an untimed
calibration run for the first batch size of a model, then from the time per
sample of the previous batch size.

It prints a markdown table (medians in ms per batch; each PyTorch column with
the ratio netc / that column, above 1 where netc is slower) and the
conditions (machine, load average before and after); --markdown FILE writes
them to FILE, rewritten after each row so that an interrupted run keeps what
it measured.  Exit status 1 if a model fails to build, run or agree.
`make bench` runs it.

Needs Debian's python3-torch and python3-torchvision: run with /usr/bin/python3.
"""

import argparse
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
import torch2safetensors as t2s  # noqa: E402

TOLERANCE = conformance.TOLERANCE
# The line `prog --repeat R` prints on stderr (runtime/model.c, print_timing).
TIMING = re.compile(r"^\S+: timing: batch=(\d+) batches=(\d+) warmup=(\d+) runs=(\d+) "
                    r"median_ms=([0-9.]+) min_ms=([0-9.]+) mean_ms=([0-9.]+)$", re.M)


class BenchError(Exception):
    pass


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

def netc_time(prog, io, weights, xpath, ypath, warmup, runs, timeout):
    """Runs the program with --repeat; returns the median and min ms per batch,
    and the output."""
    out = run([prog, "--weights", weights, "--input", f"{io['input']}={xpath}", "--output", f"{io['output']}={ypath}",
               "--repeat", str(runs), "--warmup", str(warmup)], timeout)
    m = TIMING.search(out)
    if not m:
        raise BenchError(f"{prog}: no timing line in its output:\n{conformance.tail(out)}")
    if int(m.group(4)) != runs or int(m.group(3)) != warmup:
        raise BenchError(f"{prog}: timing line '{m.group(0)}' does not match --repeat {runs} --warmup {warmup}")
    return {"median": float(m.group(5)), "min": float(m.group(6)), "runs": runs, "warmup": warmup,
            "y": np.load(ypath)}


def bench_netc(prog, io, weights, xpath, ypath, expected, args):
    """expected: seconds per batch, or None (then a calibration run first)."""
    calib = None
    if expected is None:
        calib = netc_time(prog, io, weights, xpath, ypath, 0, 1, args.timeout)
        expected = calib["median"] / 1e3
    if expected >= args.budget:
        # One run is over budget: time a single run without a warm-up (the
        # calibration run, if there was one, is that run).
        return calib or netc_time(prog, io, weights, xpath, ypath, 0, 1, args.timeout)
    runs = runs_for(expected, args.budget, args.max_runs)
    return netc_time(prog, io, weights, xpath, ypath, 1, runs, args.timeout)


# -------------------------------------------------------------------- PyTorch

def bench_torch(model, x, threads, warmup, args):
    """warmup calls, then as many timed calls as fit in the budget at the
    last warm-up call's speed."""
    torch.set_num_threads(threads)
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
    if isinstance(y, dict):  # torchvision's segmentation models
        y = y["out"]
    elif isinstance(y, tuple):  # a scripted GoogLeNet's GoogLeNetOutputs
        y = y[0]
    return {"median": 1e3 * statistics.median(times), "min": 1e3 * min(times), "runs": len(times),
            "y": y.numpy()}


# ------------------------------------------------------------------------ run

def by_size(netc, models):
    """The models in order of multiply-accumulates per sample (`netc stats`),
    smallest first."""
    macs = {}
    for name in models:
        out = run([netc, "stats", os.path.join(ROOT, "examples", f"{name}.net")], 600)
        m = re.search(r"(\d+) multiply-accumulates per sample", out)
        macs[name] = int(m.group(1)) if m else 0
    return sorted(models, key=lambda name: macs[name])


def torch_variants(model, args):
    """The PyTorch configurations timed, in the table's order: "torch", the
    model as it is (eval, no_grad) at --threads, against which netc's output
    is checked; "script", the same model through TorchScript's
    optimize_for_inference (frozen, batchnorm folded into the convolutions,
    convolutions through oneDNN) at --threads; "torch_all", the model as it is
    at --all-cores threads.  fn is None (with a note) for a variant that is
    off or that PyTorch cannot make."""
    out = [{"key": "torch", "fn": model, "threads": args.threads, "warmup": 1}]
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


def program_io(prog):
    """The input's and output's names and the input's per-sample shape, from
    the program's --help ("input  image: [S, 3, 224, 224]")."""
    out = run([prog, "--help"], 60)
    ins = re.findall(r"^input  (\S+): \[S, ([0-9, ]+)\]$", out, re.M)
    outs = re.findall(r"^output (\S+): ", out, re.M)
    if len(ins) != 1 or len(outs) != 1:
        raise BenchError(f"{prog}: the benchmark needs one input and one output; --help lists "
                         f"inputs {[i for i, _ in ins]} and outputs {outs}")
    return {"input": ins[0][0], "output": outs[0], "shape": [int(d) for d in ins[0][1].split(",")]}


def bench_model(name, args, results, report):
    net = os.path.join(ROOT, "examples", f"{name}.net")
    work = os.path.join(args.work, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    model = conformance.make_model(name, args.seed)
    weights = os.path.join(work, "weights.safetensors")
    t2s.write_safetensors(weights, t2s.float_params(model.state_dict(), warn=False))

    variants = torch_variants(model, args)
    for v in variants:
        if v["fn"] is None:
            print(f"  {name}: {v['note']}", flush=True)
    per_sample = None  # seconds per sample of netc's last measurement
    for batch in args.batches:
        res = {"model": name, "batch": batch, "ok": False, "load": os.getloadavg()[0]}
        results.append(res)
        try:
            prog = os.path.join(work, f"prog-{batch}")
            t0 = time.perf_counter()
            run([args.netc, "build", net, "-O2", "--batch", str(batch), "-o", prog], args.timeout)
            res["build"] = time.perf_counter() - t0
            io = program_io(prog)
            x = torch.randn([batch] + io["shape"], generator=torch.Generator().manual_seed(args.seed + 2))
            xpath = os.path.join(work, f"input-{batch}.npy")
            ypath = os.path.join(work, f"output-{batch}.npy")
            np.save(xpath, x.numpy().astype("<f4"))

            res["netc"] = bench_netc(prog, io, weights, xpath, ypath,
                                     None if per_sample is None else per_sample * batch, args)
            per_sample = res["netc"]["median"] / 1e3 / batch
            for v in variants:
                if v["fn"] is None:
                    continue
                if v["key"] == "torch":
                    res["torch"] = bench_torch(v["fn"], x, v["threads"], v["warmup"], args)
                    continue
                try:  # a failure of an extra column only leaves it empty
                    res[v["key"]] = bench_torch(v["fn"], x, v["threads"], v["warmup"], args)
                except Exception as e:  # noqa: BLE001
                    print(f"  {name}, batch {batch}: no {v['key']} time: {type(e).__name__}: {e}", flush=True)

            y, ref = res["netc"]["y"], res["torch"]["y"]
            if y.shape != ref.shape:
                raise BenchError(f"netc's output has shape {list(y.shape)}, PyTorch's {list(ref.shape)}")
            scale = float(np.abs(ref).max())
            err = float(np.abs(y.astype(np.float64) - ref).max()) / scale if scale > 0 else float("inf")
            res["err"] = err if np.isfinite(err) else float("inf")
            if not res["err"] <= TOLERANCE:
                raise BenchError(f"netc and PyTorch disagree: max error {res['err']:.3g} of the output's "
                                 f"scale {scale:.4g} exceeds {TOLERANCE:g}")
            res["ok"] = True
        except (BenchError, subprocess.TimeoutExpired) as e:
            res["note"] = str(e)
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
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def columns(args):
    """(key, heading) of the PyTorch columns."""
    t = f"{args.threads} thread{'s' * (args.threads > 1)}"
    cols = [("torch", f"PyTorch, {t}")]
    if args.torchscript:
        cols.append(("script", f"TorchScript, {t}"))
    if args.all_cores > args.threads:
        cols.append(("torch_all", f"PyTorch, {args.all_cores} threads"))
    return cols


def table(results, args):
    cols = columns(args)
    head = ["model", "batch", "netc -O2"]
    for _, title in cols:
        head += [title, "ratio"]
    head += ["runs", "load", "max error"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "--:|" * (len(head) - 1)]
    for r in results:
        n = r.get("netc")
        cells = [r["model"], str(r["batch"]), fmt_ms(n)]
        for key, _ in cols:
            t = r.get(key)
            cells += [fmt_ms(t), f"{n['median'] / t['median']:.2f}" if n and t else "-"]
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
            return m.group(1).strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def torch_libraries():
    """The BLAS and oneDNN libraries this process has loaded (through torch):
    Debian's PyTorch uses whichever libblas.so.3 the alternatives system
    picks, and its speed depends on it."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if line.rstrip().endswith(".so") or ".so." in line}
    except OSError:
        return "unknown"
    libs = sorted(p for p in paths if re.search(r"blas|dnnl|mkl", os.path.basename(p)))
    return ", ".join(libs) if libs else "none found"


def cc_version():
    cc = os.environ.get("CC") or "clang"
    try:
        out = subprocess.run([cc, "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        return out.splitlines()[0].strip() if out else cc
    except OSError:
        return cc


def load_str():
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", metavar="A,B",
                    help="zoo models (default: every one torchvision has, smallest first)")
    ap.add_argument("--batches", default="1,8", metavar="1,8", help="batch sizes (default 1,8)")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch's thread count, as netc's (default 1)")
    ap.add_argument("--all-cores", type=int, default=0, metavar="N",
                    help=f"also time eager PyTorch at N threads when N > --threads (this machine has "
                         f"{os.cpu_count()} cores; default 0: not)")
    ap.add_argument("--no-torchscript", dest="torchscript", action="store_false",
                    help="leave out the TorchScript (optimize_for_inference) column")
    ap.add_argument("--budget", type=float, default=4, metavar="S",
                    help="seconds of timed runs per measurement (default 4)")
    ap.add_argument("--max-runs", type=int, default=20, help="at most this many timed runs (default 20)")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table and the conditions to FILE")
    ap.add_argument("--netc", default=os.path.join(ROOT, "build", "netc"), help="default build/netc")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench"),
                    help="where weights, inputs and programs go (default build/bench)")
    ap.add_argument("--keep", action="store_true", help="keep each model's files (kept anyway if it fails)")
    ap.add_argument("--seed", type=int, default=1, help="as tools/conformance.py (default 1)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed for each build and run")
    args = ap.parse_args(argv)
    args.netc = os.path.abspath(args.netc)
    args.work = os.path.abspath(args.work)
    if not os.access(args.netc, os.X_OK):
        sys.exit(f"bench: no netc at {args.netc} (build it first: make build)")
    if args.models:
        models = [m for m in args.models.split(",") if m]
        for m in models:
            if m not in conformance.written(conformance.ALL_MODELS):
                sys.exit(f"bench: unknown model '{m}' (the zoo models: "
                         f"{', '.join(conformance.written(conformance.ALL_MODELS))})")
    else:
        models = conformance.written(conformance.MODELS)
    models = by_size(args.netc, models)
    try:
        args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        sys.exit(f"bench: --batches needs a list of positive integers, not '{args.batches}'")
    if not args.batches or min(args.batches) < 1 or args.threads < 1 or args.budget <= 0 or args.max_runs < 1:
        sys.exit("bench: --batches, --threads, --budget and --max-runs must be positive")
    torch.set_num_interop_threads(1)

    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = load_str()
    conditions = [
        f"- {start}; {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}; "
        f"seed {args.seed}",
        f"- netc {os.path.relpath(args.netc, ROOT)} -O2, compiled by {cc_version()}",
        f"- PyTorch's libraries: {torch_libraries()}",
        f"- load average (1, 5, 15 min) before the run: {load_before}",
    ]
    for var in ("CC", "NETC_CFLAGS"):
        if os.environ.get(var):
            conditions.append(f"- netc build with ${var}={os.environ[var]}")
    print("\n".join(conditions), flush=True)
    cols = columns(args)
    print(f"{'model':16s} {'batch':>5s} {'build':>6s} {'netc':>9s}"
          + "".join(f" {key:>10s} {'ratio':>6s}" for key, _ in cols) + "   error  runs", flush=True)

    def write_markdown(done):
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write("\n".join(conditions + done) + "\n\n" + table(results, args) + "\n")

    def report(r):
        write_markdown(["- (the run is not finished)"])
        n = r.get("netc")
        line = f"{r['model']:16s} {r['batch']:5d} {r.get('build', 0):5.1f}s {fmt_ms(n):>9s}"
        for key, _ in cols:
            t = r.get(key)
            line += f" {fmt_ms(t):>10s} {n['median'] / t['median'] if n and t else float('nan'):6.2f}"
        line += f"  {r.get('err', float('nan')):.1e}  {n['runs'] if n else '-'}"
        line += "/".join([""] + [str(r[k]["runs"]) if k in r else "-" for k, _ in cols])
        print(line + ("" if r["ok"] else "  FAIL"), flush=True)
        if "note" in r:
            print("  " + r["note"].replace("\n", "\n  "), flush=True)

    results = []
    t0 = time.perf_counter()
    for name in models:
        bench_model(name, args, results, report)
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
