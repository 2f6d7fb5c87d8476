#!/usr/bin/python3
"""Draws each case of stats.net with torch.nn.init and writes the samples
(ref/<name>.npy) and cases.txt, the list initks reads.  Run from anywhere:
    /usr/bin/python3 tests/init/gen.py
PyTorch has no lecun_normal: its reference is normal_(0, sqrt(1 / fan_in))."""
import math
import os

import numpy as np
import torch
import torch.nn.init as I

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(12)

# name, shape, draw, orthogonal gain (or None)
cases = [
    ("kn.weight", (64, 16, 3, 3), lambda w: I.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), None),
    ("ku.weight", (32, 16, 3, 3), lambda w: I.kaiming_uniform_(w, a=0.2), None),
    ("he.weight", (32, 16, 3, 3), lambda w: I.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"), None),
    ("og.weight", (16, 16, 3, 3), lambda w: I.orthogonal_(w, gain=2.0), 2.0),
    ("xu.weight", (100, 120), lambda w: I.xavier_uniform_(w, gain=I.calculate_gain("tanh")), None),
    ("xn.weight", (64, 120), lambda w: I.xavier_normal_(w, gain=2.0), None),
    ("ln.weight", (50, 120), lambda w: I.normal_(w, 0.0, math.sqrt(1.0 / 120)), None),
    ("nm.weight", (40, 120), lambda w: I.normal_(w, mean=1.0, std=0.5), None),
    ("un.weight", (40, 120), lambda w: I.uniform_(w, -0.3, 0.7), None),
    ("ot.weight", (160, 120), lambda w: I.orthogonal_(w), 1.0),
    ("xd.weight", (30, 120), lambda w: I.xavier_uniform_(w), None),
]

os.makedirs(os.path.join(here, "ref"), exist_ok=True)
with open(os.path.join(here, "cases.txt"), "w") as f:
    f.write("# parameter, torch.nn.init's draw (gen.py), orthogonal gain\n")
    for name, shape, draw, gain in cases:
        w = torch.empty(shape)
        with torch.no_grad():
            draw(w)
        ref = name.replace(".weight", "") + ".npy"
        np.save(os.path.join(here, "ref", ref), w.numpy().astype(np.float32).reshape(-1))
        f.write(f"{name} ref/{ref}" + (f" orthogonal {gain}" if gain is not None else "") + "\n")
with open(os.path.join(here, "wrong_cases.txt"), "w") as f:
    f.write("# wrong.net's parameters against stats.net's references: each must fail\n")
    f.write("kn.weight ref/kn.npy\nxu.weight ref/xu.npy\n")

# --output-bias frequencies: an unbalanced label set of 4 classes, one of
# them absent (it counts as half a label), and the frequencies softmax(b)
# must equal.
g = torch.Generator().manual_seed(5)
labels = torch.cat([torch.full((600,), 0), torch.full((250,), 1), torch.full((150,), 2)])
labels = labels[torch.randperm(len(labels), generator=g)]
images = torch.rand((len(labels), 6), generator=g)
counts = torch.bincount(labels, minlength=4).double()
counts[counts == 0] = 0.5
np.save(os.path.join(here, "ob_images.npy"), images.numpy().astype(np.float32))
np.save(os.path.join(here, "ob_labels.npy"), labels.numpy().astype(np.int64))
np.save(os.path.join(here, "ob_freqs.npy"), (counts / counts.sum()).numpy().astype(np.float32))

# tests/lit/init_syntax.net: the constant biases netc init must write
# (torch.full), as safetensors (its format written here: the Debian python3
# has no safetensors package).
import json
import struct

consts = [("stem.bias", 16, 0.5), ("u0.a.bias", 16, 0.2), ("u0.bn.weight", 16, 0.0), ("gate.bias", 16, 1.0),
          ("tail.bias", 8, 0.1), ("side.bias", 8, 0.01), ("dec.bias", 4, 0.01), ("fc1.bias", 32, 0.1)]
header, blob = {}, b""
for name, n, v in consts:
    data = torch.full((n,), v, dtype=torch.float32).numpy().tobytes()
    header[name] = {"dtype": "F32", "shape": [n], "data_offsets": [len(blob), len(blob) + len(data)]}
    blob += data
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
lit_inputs = os.path.join(here, "..", "lit", "Inputs")
with open(os.path.join(lit_inputs, "init_syntax_constants.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + blob)
