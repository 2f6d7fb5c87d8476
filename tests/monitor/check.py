#!/usr/bin/python3
"""Compares a --monitor directory with PyTorch's expected.txt (gen.py) and
checks that monitor.html is well-formed XML with an <svg> for every layer
and parameter.  Exit status 1 with a message on any difference.

    check.py MONITOR_DIR EXPECTED_TXT
"""
import csv
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}svg"
XH = "{http://www.w3.org/1999/xhtml}"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def close(a, b, rel, absol=0.0):
    return abs(a - b) <= max(rel * abs(b), absol)


def main():
    mdir, expected = sys.argv[1], sys.argv[2]
    rows = [r for r in csv.DictReader(open(mdir + "/monitor.csv")) if r["step"] == "1"]
    if not rows:
        fail("no row of step 1 in monitor.csv")
    acts = [r for r in rows if r["kind"] == "activation"]
    params = {r["name"]: r for r in rows if r["kind"] == "param"}
    relus = [r for r in acts if r["zero_fraction"] != ""]
    checked = 0
    for line in open(expected):
        f = line.split()
        if f[0] == "relu":
            k = int(f[1])
            if k >= len(relus):
                fail("expected ReLU %d, the monitor has %d ReLU outputs" % (k, len(relus)))
            r = relus[k]
            units = int(r["units"])
            # the zero fraction within one element of the batch's values, the dead units exactly
            per = {"6": 12 * 12, "8": 6 * 6, "16": 1}[f[4]]
            if not close(float(r["zero_fraction"]), float(f[2]), 0, 1.0 / (8 * units * per) + 1e-9):
                fail("%s: zero fraction %s, PyTorch %s" % (r["name"], r["zero_fraction"], f[2]))
            if int(r["dead_units"]) != int(f[3]) or units != int(f[4]):
                fail("%s: %s dead of %s units, PyTorch %s of %s" % (r["name"], r["dead_units"], r["units"], f[3], f[4]))
            checked += 1
        elif f[0] == "preact":
            r = [a for a in acts if a["name"] == f[1] and a["layer"] in ("conv", "linear")]
            if not r:
                continue  # fused with its ReLU on this target: its tap is post-activation
            sd = float(f[3])
            if not close(float(r[0]["mean"]), float(f[2]), 0, 1e-4 * sd) or not close(float(r[0]["std"]), sd, 1e-4):
                fail("%s: mean %s std %s, PyTorch %s %s" % (f[1], r[0]["mean"], r[0]["std"], f[2], f[3]))
            checked += 1
        elif f[0] == "param":
            r = params.get(f[1])
            if r is None:
                fail("no row for parameter " + f[1])
            if not close(float(r["grad_norm"]), float(f[2]), 1e-4):
                fail("%s: gradient norm %s, PyTorch %s" % (f[1], r["grad_norm"], f[2]))
            # the update of a float32 parameter is rounded to its ulp: 1% for the large biases
            if not close(float(r["update_ratio"]), float(f[3]), 1e-2):
                fail("%s: update ratio %s, PyTorch %s" % (f[1], r["update_ratio"], f[3]))
            checked += 1
    try:
        root = ET.parse(mdir + "/monitor.html").getroot()
    except ET.ParseError as e:
        fail("monitor.html does not parse: %s" % e)
    with_svg = {}
    for div in root.iter(XH + "div"):
        b = div.find(XH + "b")
        if b is not None and div.find(SVG) is not None:
            with_svg[b.text] = True
    for name in [a["name"] for a in acts] + list(params):
        if name not in with_svg:
            fail("monitor.html has no <svg> for " + name)
    print("ok: %d values match PyTorch; monitor.html parses, with an <svg> for each of %d layers and parameters"
          % (checked, len(acts) + len(params)))


main()
