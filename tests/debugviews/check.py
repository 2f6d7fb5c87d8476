#!/usr/bin/python3
"""The debugging views' checks, on tiny.net and tests/monitor/model.net
(pure Python: no numpy, no PyTorch):

  --show-inputs DIR 3   inputs.png decodes (libpng, through pngdump) to the
                        documented sheet: 3 images of 4 x 5 at 3 pixels per
                        value, 2 pixels apart on grey 64, each value v as
                        round(255 (v - lo) / (hi - lo)) over the 3 images
  --worst DIR 2         worst.png decodes, of the documented size with the
                        caption strips, white caption pixels in them;
                        worst.csv lists the 2 test images of highest loss
                        under the saved weights (recomputed here), each
                        with its true and predicted class and probability
  --random-inputs       with zero weights and biases log(class frequency)
                        the mean softmax on noise is the frequencies and
                        the verdict says so; with zero biases it says NOT
  --init-calibrate 1    every conv and linear output (and 2 E[y^2] of a
                        fused conv+relu) has variance 1 +- 0.1 on the batch,
                        as printed and as --monitor measures at step 1
  --monitor warnings    a layer of dead ReLUs and its weight's vanishing
                        gradient are reported, and nothing else
  bad options           one line on stderr, exit status 1, nothing written

    check.py NETC PNGDUMP SRC_DIR WORK_DIR
"""
import csv
import json
import math
import os
import shutil
import struct
import subprocess
import sys

netc, pngdump, src, work = sys.argv[1:5]
mon_src = os.path.join(os.path.dirname(src), "monitor")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(args, ok=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if ok and p.returncode != 0:
        fail("%s: exit status %d: %s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def write_npy(path, fmt, shape, values):
    descr = {"f": "<f4", "q": "<i8"}[fmt]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape))
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


def write_st(path, tensors):
    header, blob = {}, b""
    for name, shape, vals in tensors:
        data = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)


def read_st(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    out = {}
    for name, e in json.loads(data[8:8 + n]).items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        out[name] = list(struct.unpack("<%df" % ((b - a) // 4), data[8 + n + a:8 + n + b]))
    return out


def decode(path):
    p = run([pngdump, path])
    lines = p.stdout.split("\n")
    w, h, ch = map(int, lines[0].split())
    return w, h, ch, [list(map(int, l.split())) for l in lines[1:1 + h]]


shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
S, PER = 10, 20
images = [((k * 20 + i) * 7 % 23) / 4.0 - 2.5 for k in range(S) for i in range(PER)]
labels = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]
x, y = os.path.join(work, "images.npy"), os.path.join(work, "labels.npy")
write_npy(x, "f", [S, 1, 4, 5], images)
write_npy(y, "q", [S], labels)
tr = os.path.join(work, "trainer")
run([netc, "build", "--train", os.path.join(src, "tiny.net"), "-o", tr, "--batch", "4"])
data = ["--train-images", x, "--train-labels", y]

# --show-inputs and --worst
for d in ("show", "worst"):
    os.makedirs(os.path.join(work, d))
wts = os.path.join(work, "trained.safetensors")
run([tr] + data + ["--test-images", x, "--test-labels", y, "--epochs", "2", "--lr", "0.1", "--no-shuffle", "--quiet",
                   "--show-inputs", os.path.join(work, "show"), "3", "--worst", os.path.join(work, "worst"), "2",
                   "--save", wts])
w, h, ch, px = decode(os.path.join(work, "show", "inputs.png"))
if (w, h, ch) != (2 + 3 * (15 + 2), 2 + 12 + 2, 1):
    fail("inputs.png is %dx%d with %d channels" % (w, h, ch))
shown = images[:3 * PER]
lo, hi = min(shown), max(shown)
for yy in range(h):
    for xx in range(w):
        want = 64
        k, cx = divmod(xx - 2, 17)
        if 2 <= yy < 14 and xx >= 2 and cx < 15 and k < 3:
            v = shown[k * PER + (yy - 2) // 3 * 5 + cx // 3]
            want = int(math.floor(255 * (v - lo) / (hi - lo) + 0.5))
        if px[yy][xx] != want:
            fail("inputs.png pixel (%d, %d) is %d, expected %d" % (xx, yy, px[yy][xx], want))

w, h, ch, px = decode(os.path.join(work, "worst", "worst.png"))
if (w, h, ch) != (2 + 2 * (15 + 2), 2 + 12 + 8 + 2, 1):
    fail("worst.png is %dx%d with %d channels" % (w, h, ch))
if not any(v == 255 for row in px[2 + 12:2 + 20] for v in row[2:17]):
    fail("worst.png has no caption under its first image")
p = read_st(wts)
W, b = p["linear0.weight"], p["linear0.bias"]
rows = []
for s in range(S):
    z = [sum(W[c * PER + i] * images[s * PER + i] for i in range(PER)) + b[c] for c in range(3)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    pr = [v / sum(e) for v in e]
    pred = max(range(3), key=lambda c: pr[c])
    rows.append((-math.log(pr[labels[s]]), s, pred, pr[pred]))
rows.sort(key=lambda r: (-r[0], r[1]))
got = list(csv.DictReader(open(os.path.join(work, "worst", "worst.csv"))))
if len(got) != 2:
    fail("worst.csv has %d rows" % len(got))
for g, r in zip(got, rows):
    if (int(g["test_index"]), int(g["true"]), int(g["predicted"])) != (r[1], labels[r[1]], r[2]) or \
            abs(float(g["loss"]) - r[0]) > 1e-4 * max(1, r[0]) or abs(float(g["p_predicted"]) - r[3]) > 1e-4:
        fail("worst.csv row %s, expected index %d true %d predicted %d p %.6f loss %.6f" %
             (dict(g), r[1], labels[r[1]], r[2], r[3], r[0]))

# --random-inputs
freq = [labels.count(c) / S for c in range(3)]
for biased in (True, False):
    f = os.path.join(work, "w%d.safetensors" % biased)
    write_st(f, [("linear0.weight", [3, 20], [0.0] * 60),
                 ("linear0.bias", [3], [math.log(q) if biased else 0.0 for q in freq])])
    out = run([tr] + data + ["--load", f, "--epochs", "0", "--random-inputs", "--quiet"]).stdout
    table = [l.split() for l in out.splitlines() if l.startswith("random-inputs:") and len(l.split()) == 4 and l.split()[1].isdigit()]
    if len(table) != 3:
        fail("--random-inputs printed %d class rows:\n%s" % (len(table), out))
    for c, r in enumerate(table):
        want = freq[c] if biased else 1 / 3
        if abs(float(r[2]) - want) > 1e-4 or abs(float(r[3]) - freq[c]) > 1e-4:
            fail("--random-inputs class %d: %s %s, expected %.4f %.4f" % (c, r[2], r[3], want, freq[c]))
    verdict = [l for l in out.splitlines() if "total variation distance" in l]
    if not verdict or (" NOT " in verdict[0]) == biased:
        fail("--random-inputs verdict: %s" % out)

# --init-calibrate, read back through --monitor
mx, my = os.path.join(mon_src, "images.npy"), os.path.join(mon_src, "labels.npy")
for target in ("native", "generic"):
    ct = os.path.join(work, "calib-" + target)
    md = os.path.join(work, "calib-mon-" + target)
    os.makedirs(md)
    run([netc, "build", "--train", os.path.join(mon_src, "model.net"), "-o", ct, "--batch", "8", "--target", target])
    out = run([ct, "--train-images", mx, "--train-labels", my, "--init-calibrate", "1", "--epochs", "1", "--lr", "0",
               "--no-shuffle", "--quiet", "--monitor", md, "--monitor-every", "1"]).stdout
    printed = {}
    for l in out.splitlines():
        f = l.split()
        if l.startswith("init-calibrate: ") and len(f) > 6 and f[2] == "scale":
            printed[f[1]] = float(f[7])
    if sorted(printed) != ["conv0.weight", "conv1.weight", "linear0.weight", "linear1.weight"]:
        fail("%s: --init-calibrate printed %s:\n%s" % (target, sorted(printed), out))
    for n, v in printed.items():
        if abs(v - 1) >= 0.1:
            fail("%s: %s variance %g after calibration" % (target, n, v))
    seen = 0
    for r in csv.DictReader(open(os.path.join(md, "monitor.csv"))):
        if r["step"] != "1" or r["kind"] != "activation" or r["layer"] not in ("conv", "linear", "conv+relu"):
            continue
        sd, mean = float(r["std"]), float(r["mean"])
        var = 2 * (sd * sd + mean * mean) if r["layer"] == "conv+relu" else sd * sd
        if abs(var - 1) >= 0.1:
            fail("%s: the monitor measures variance %g for %s after calibration" % (target, var, r["name"]))
        seen += 1
    if seen != 4:
        fail("%s: %d calibrated layers in monitor.csv" % (target, seen))

# the monitor's warnings: every conv0 unit dead (biases -100) makes its ReLU
# output dead and the gradients of its parameters and of conv1's weight (whose
# input is zero) zero; linear0's ReLU, 7 of 16 dead, is below the threshold
w = read_st(os.path.join(mon_src, "weights.safetensors"))
w["conv0.bias"] = [-100.0] * 6
shapes = {"conv0.weight": [6, 1, 3, 3], "conv0.bias": [6], "conv1.weight": [8, 6, 3, 3], "conv1.bias": [8],
          "linear0.weight": [16, 288], "linear0.bias": [16], "linear1.weight": [10, 16], "linear1.bias": [10]}
dead = os.path.join(work, "dead.safetensors")
write_st(dead, [(n, shapes[n], w[n]) for n in shapes])
md = os.path.join(work, "dead-mon")
os.makedirs(md)
out = run([os.path.join(work, "calib-generic"), "--train-images", mx, "--train-labels", my, "--load", dead,
           "--epochs", "1", "--quiet", "--monitor", md, "--monitor-every", "1"]).stdout
for want in ("monitor: warning: step 1: 6 of the 6 units of 'relu0' (relu) are dead ReLUs (zero for the whole batch)",
             "monitor: warning: step 1: the gradient of 'conv0.weight' vanishes (norm 0, weight norm "):
    if want not in out:
        fail("no warning '%s' in:\n%s" % (want, out))
if "'relu2'" in out or "'linear0.weight'" in out:
    fail("a warning for a layer that is not dead:\n" + out)

# bad options: one line, exit status 1, nothing written
bad = [["--show-inputs", os.path.join(work, "show")],
       ["--show-inputs", os.path.join(work, "show"), "0"],
       ["--monitor", os.path.join(work, "missing", "deeper")],  # a view's directory is made, not its parents
       ["--monitor-every", "5"],
       ["--overfit", "4", "--limit", "3"],
       ["--init-calibrate", "x"],
       ["--worst", os.path.join(work, "worst"), "2"]]
for args in bad:
    before = sorted(os.listdir(work))
    p = run([tr] + data + args + ["--epochs", "1"], ok=False)
    if p.returncode != 1 or len(p.stderr.splitlines()) != 1 or "error:" not in p.stderr or sorted(os.listdir(work)) != before:
        fail("%s: exit status %d, stderr %r" % (" ".join(args), p.returncode, p.stderr))
# a missing directory (its parent there) is made
made = os.path.join(work, "made")
run([tr] + data + ["--monitor", made, "--epochs", "1"])
if not os.path.isfile(os.path.join(made, "monitor.html")):
    fail("--monitor did not make its directory " + made)
print("ok: --show-inputs, --worst, --random-inputs, --init-calibrate and %d bad options" % len(bad))
