#!/usr/bin/python3
"""Writes the seeds of the corpora in tests/fuzz/corpus/<harness>/: the
repository's test files, plus small synthesized files for the readers.

    /usr/bin/python3 tests/fuzz/seeds.py

Files over 16 KB are skipped (seeds stay small; the fuzzer grows them).
The .net seeds are copied as they are; the idx seeds start with the mode
byte fuzz_idx.c reads (0: as is, 1: gzip-compressed by the harness)."""
import glob
import gzip
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MAX = 16 * 1024


def reset(h):
    """The corpus directory of harness h.  Seeds are (re)written by name;
    nothing is removed, as the directories also hold what the fuzzers found
    (`make fuzz-merge`, files named by their SHA-1)."""
    d = os.path.join(CORPUS, h)
    os.makedirs(d, exist_ok=True)
    return d


def copy(pattern, d, prefix_from, head=b""):
    """Copies files matching pattern into d, named <dir>_<file>, with head
    put before their contents."""
    for src in sorted(glob.glob(os.path.join(ROOT, pattern))):
        if os.path.getsize(src) > MAX:
            continue
        parts = os.path.relpath(src, ROOT).split(os.sep)
        name = "_".join(parts[prefix_from:])
        with open(src, "rb") as f:
            write(d, name, head + f.read())


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- .net ------------------------------------------------------------------
d = reset("frontend")
copy("examples/*.net", d, 0)
copy("tests/golden/*/model.net", d, 1)
copy("tests/golden_train/*/model.net", d, 1)
copy("tests/errors/*.net", d, 1)
copy("tests/gradcheck/*.net", d, 1)
copy("tests/lit/*.net", d, 1)
copy("tests/lit/Inputs/*.net", d, 1)
copy("tests/files/Inputs/*.net", d, 1)

# ---- safetensors -------------------------------------------------------------
def st(tensors, meta=None, pad=True):
    header, data, off = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


d = reset("safetensors")
copy("tests/golden/*/weights.safetensors", d, 2)
copy("tests/golden_train/*/*.safetensors", d, 2)
copy("tests/files/Inputs/*.safetensors", d, 3)
write(d, "syn_empty.safetensors", st([]))
write(d, "syn_meta.safetensors", st([], {"format": "pt"}))
write(d, "syn_dtypes.safetensors", st([
    ("f32", "F32", [2], struct.pack("<2f", 1, 2)),
    ("f64", "F64", [1], struct.pack("<d", 3)),
    ("f16", "F16", [2], b"\x00\x3c\x00\x40"),
    ("bf16", "BF16", [1], b"\x80\x3f"),
    ("u8", "U8", [3], b"\x01\x02\x03"),
    ("i8", "I8", [1], b"\xff"),
    ("i16", "I16", [1], b"\x01\x00"),
    ("i32", "I32", [1], b"\x01\x00\x00\x00"),
    ("i64", "I64", [1], b"\x01" + b"\x00" * 7),
    ("b", "BOOL", [1], b"\x01"),
], {"format": "pt"}))
write(d, "syn_scalar_zero.safetensors", st([("s", "F32", [], b"\x00\x00\x80\x3f"),
                                           ("z", "F32", [0, 3], b"")]))
write(d, "syn_rank4.safetensors", st([("w", "F32", [1, 1, 2, 2], struct.pack("<4f", 1, 2, 3, 4))]))

# ---- .npy ------------------------------------------------------------------
def npy(descr, shape, raw, version=1, fortran=False):
    t = "(" + "".join("%d," % s for s in shape) + ")" if len(shape) == 1 else \
        "(" + ", ".join(str(s) for s in shape) + ")"
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, t)
    pre = 10 if version == 1 else 12
    h = h.encode() + b" " * (-(pre + len(h) + 1) % 64) + b"\n"
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + raw


d = reset("npy")
copy("tests/golden/op_*/input_*.npy", d, 2)
copy("tests/lit/Inputs/*.npy", d, 3)
copy("tests/golden_train/mlp_sigmoid_softmax/*.npy", d, 2)
copy("tests/files/Inputs/*.npy", d, 3)
write(d, "syn_f4.npy", npy("<f4", [2, 3], struct.pack("<6f", *range(6))))
write(d, "syn_f8_v2.npy", npy("<f8", [2], struct.pack("<2d", 1, 2), version=2))
write(d, "syn_u1_v3.npy", npy("|u1", [2, 2], b"\x00\x80\xff\x01", version=3))
write(d, "syn_i8.npy", npy("<i8", [1], struct.pack("<q", -1)))
write(d, "syn_f2.npy", npy("<f2", [1], b"\x00\x3c"))
write(d, "syn_b1.npy", npy("|b1", [3], b"\x01\x00\x01"))
write(d, "syn_scalar.npy", npy("<f4", [], struct.pack("<f", 7)))
write(d, "syn_empty.npy", npy("<f4", [0, 4], b""))
write(d, "syn_i2_i4.npy", npy("<i2", [2], b"\x01\x00\x02\x00"))

# ---- IDX (first byte: the harness's mode) ----------------------------------
def idx(type_byte, shape, raw):
    return b"\x00\x00" + bytes([type_byte, len(shape)]) + \
        b"".join(struct.pack(">I", s) for s in shape) + raw


d = reset("idx")
images = idx(0x08, [2, 3, 3], bytes(range(18)))
labels = idx(0x08, [4], b"\x00\x01\x09\x03")
samples = {
    "u8_images": images,
    "u8_labels": labels,
    "i8": idx(0x09, [3], b"\xff\x00\x7f"),
    "i16": idx(0x0B, [2], struct.pack(">2h", -2, 300)),
    "i32": idx(0x0C, [1, 2], struct.pack(">2i", -5, 70000)),
    "f32": idx(0x0D, [2], struct.pack(">2f", 0.5, -1)),
    "f64": idx(0x0E, [1], struct.pack(">d", 2.5)),
    "zero_dim": idx(0x08, [0, 28, 28], b""),
}
for name, data in samples.items():
    write(d, "plain_" + name, b"\x00" + data)
    write(d, "gzmode_" + name, b"\x01" + data)
write(d, "gzfile_u8_images", b"\x00" + gzip.compress(images, mtime=0))
write(d, "gzfile_u8_labels", b"\x00" + gzip.compress(labels, mtime=0))
write(d, "gzmode_truncated", b"\x07" + images)
copy("tests/files/Inputs/*.idx", d, 3, b"\x00")
copy("tests/files/Inputs/*.idx.gz", d, 3, b"\x00")

# ---- images (first byte: the harness's input: channels, height, width) ------
d = reset("image")
modes = [0x00, 0x5b, 0x7e, 0x2a]  # grey 1x1, RGB 28x13, grey 64x28 (enlarged), grey 2x5
for k, path in enumerate(sorted(glob.glob(os.path.join(ROOT, "tests/images/*.png")) +
                                glob.glob(os.path.join(ROOT, "tests/images/*.jpg")))):
    with open(path, "rb") as f:
        raw = f.read()
    name = os.path.basename(path)
    write(d, name, bytes([modes[k % len(modes)]]) + raw)
    write(d, "cut_" + name, bytes([modes[(k + 1) % len(modes)]]) + raw[: len(raw) // 2])
# ---- ONNX (netc import) --------------------------------------------------------
d = reset("onnx")
copy("tests/onnx/*/model.onnx", d, 2)
copy("tests/onnx/bad/Inputs/*.onnx", d, 4)
