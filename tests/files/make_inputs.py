#!/usr/bin/python3
"""Writes the malformed (and a few good) files of the file-format catalogue
into tests/files/Inputs/, for the net Inputs/small.net:

    input x: [1, 4, 4]; conv0.weight [2, 1, 3, 3], conv0.bias [2],
    linear0.weight [3, 32], linear0.bias [3]; 3 classes.

Run it with Debian's interpreter from anywhere; it needs only the standard
library and numpy, and is deterministic, so the committed files are what it
writes.  Each .net file in tests/files/ feeds one of these files to a program
built from small.net and checks the message.
"""
import gzip
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Inputs")

PARAMS = [
    ("conv0.weight", (2, 1, 3, 3)),
    ("conv0.bias", (2,)),
    ("linear0.weight", (3, 32)),
    ("linear0.bias", (3,)),
]

rng = np.random.default_rng(5)


def write(name, data):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data)
    assert len(data) < 10 * 1024, name


# ---- safetensors --------------------------------------------------------------


def st_bytes(entries, data, raw_header=None, size=None):
    """entries: (name, dtype, shape, [begin, end]); the header padded to 8."""
    if raw_header is None:
        header = {"__metadata__": {"format": "pt"}}
        for name, dtype, shape, offs in entries:
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}
        raw_header = json.dumps(header, separators=(",", ":"))
    h = raw_header.encode()
    h += b" " * (-len(h) % 8)
    n = len(h) if size is None else size
    return struct.pack("<Q", n) + h + data


def st_tensors(tensors):
    """tensors: (name, dtype, shape, bytes), laid out in order."""
    entries, data = [], b""
    for name, dtype, shape, blob in tensors:
        entries.append((name, dtype, shape, (len(data), len(data) + len(blob))))
        data += blob
    return st_bytes(entries, data)


def f32(shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype("<f4")


good_params = [(name, "F32", shape, f32(shape).tobytes()) for name, shape in PARAMS]
good_st = st_tensors(good_params)
write("good.safetensors", good_st)

# Truncated: inside the 8-byte header size, inside the JSON header, inside the data.
write("st_trunc_size.safetensors", good_st[:5])
write("st_trunc_header.safetensors", good_st[:60])
write("st_trunc_data.safetensors", good_st[:-10])

# A header size that overflows any offset arithmetic (2^64 - 1), and one that
# is plausible but larger than the file.
write("st_size_overflow.safetensors", b"\xff" * 8 + good_st[8:])
write("st_size_exceeds.safetensors", struct.pack("<Q", 4096) + good_st[8:])

# The header: invalid JSON, and JSON that is not an object.
write("st_invalid_json.safetensors", st_bytes(None, b"", raw_header='{"conv0.weight": {"dtype": "F32",'))
write("st_json_array.safetensors", st_bytes(None, b"", raw_header="[1, 2, 3]"))
write("st_entry_not_object.safetensors", st_bytes(None, b"", raw_header='{"conv0.weight": [2, 1, 3, 3]}'))

# Offsets: beyond the data, reversed, overlapping, leaving a hole.
blob = b"".join(t[3] for t in good_params)
ent = []
at = 0
for name, dtype, shape, b in good_params:
    ent.append([name, dtype, shape, [at, at + len(b)]])
    at += len(b)


def with_offsets(changes, data=blob):
    e = [list(x) for x in ent]
    for i, offs in changes.items():
        e[i][3] = offs
    return st_bytes([tuple(x) for x in e], data)


end = len(blob)
write("st_offsets_out_of_range.safetensors", with_offsets({3: [end - 12, end + 4]}))
write("st_offsets_reversed.safetensors", with_offsets({1: [ent[1][3][1], ent[1][3][0]]}))
# conv0.bias [2] (8 bytes) moved 4 bytes back into conv0.weight, the data 4 bytes shorter.
overlap = dict((i, [ent[i][3][0] - 4, ent[i][3][1] - 4]) for i in (1, 2, 3))
write("st_offsets_overlap.safetensors", with_offsets(overlap, blob[:-4]))
# 8 unused bytes between conv0.bias and linear0.weight.
hole = dict((i, [ent[i][3][0] + 8, ent[i][3][1] + 8]) for i in (2, 3))
write("st_offsets_hole.safetensors", with_offsets(hole, blob[: ent[2][3][0]] + b"\0" * 8 + blob[ent[2][3][0]:]))

# dtypes: integer weights (a valid file the model cannot use), an unknown dtype string.
i32 = [(n, "I32", s, np.ones(s, "<i4").tobytes()) if n == "conv0.weight" else (n, d, s, b)
       for n, d, s, b in good_params]
write("st_i32_weights.safetensors", st_tensors(i32))
write("st_dtype_unknown.safetensors",
      st_bytes([(n, "F31" if n == "linear0.bias" else d, s, o) for n, d, s, o in ent], blob))

# The data offsets disagree with the shape: linear0.weight claims [3, 33].
write("st_size_mismatch.safetensors",
      st_bytes([(n, d, (3, 33) if n == "linear0.weight" else s, o) for n, d, s, o in ent], blob))

# Valid files with the wrong contents for the model.
write("st_missing.safetensors", st_tensors([t for t in good_params if t[0] != "linear0.bias"]))
write("st_extra.safetensors", st_tensors(good_params + [("fc.weight", "F32", (3,), f32((3,)).tobytes())]))
write("st_wrong_shape.safetensors",
      st_tensors([(n, d, (3, 1, 3, 3), f32((3, 1, 3, 3)).tobytes()) if n == "conv0.weight" else (n, d, s, b)
                  for n, d, s, b in good_params]))
write("st_wrong_rank.safetensors",
      st_tensors([(n, d, (96,), b) if n == "linear0.weight" else (n, d, s, b) for n, d, s, b in good_params]))

# Weights that make the net compute NaN (for --check-numerics): a batchnorm
# with a negative running variance (Inputs/bn.net).
bn = [
    ("conv0.weight", "F32", (2, 1, 3, 3), f32((2, 1, 3, 3)).tobytes()),
    ("conv0.bias", "F32", (2,), np.zeros(2, "<f4").tobytes()),
    ("batchnorm0.weight", "F32", (2,), np.ones(2, "<f4").tobytes()),
    ("batchnorm0.bias", "F32", (2,), np.zeros(2, "<f4").tobytes()),
    ("batchnorm0.running_mean", "F32", (2,), np.zeros(2, "<f4").tobytes()),
    ("batchnorm0.running_var", "F32", (2,), np.array([1, -1], "<f4").tobytes()),
    ("linear0.weight", "F32", (3, 32), f32((3, 32)).tobytes()),
    ("linear0.bias", "F32", (3,), np.zeros(3, "<f4").tobytes()),
]
write("bn_negative_var.safetensors", st_tensors(bn))
# ... and weights that make small.net's linear overflow to Inf: positive conv
# weights (so relu passes everything) and linear weights of 1e38.
huge = [
    ("conv0.weight", "F32", (2, 1, 3, 3), np.full((2, 1, 3, 3), 0.5, "<f4").tobytes()),
    ("conv0.bias", "F32", (2,), np.zeros(2, "<f4").tobytes()),
    ("linear0.weight", "F32", (3, 32), np.full((3, 32), 1e38, "<f4").tobytes()),
    ("linear0.bias", "F32", (3,), np.zeros(3, "<f4").tobytes()),
]
write("huge_linear.safetensors", st_tensors(huge))

# ---- .npy ---------------------------------------------------------------------------


def npy_bytes(dict_text, data, major=1, magic=b"\x93NUMPY"):
    h = dict_text.encode()
    pre = 10 if major == 1 else 12
    h += b" " * (-(pre + len(h) + 1) % 64) + b"\n"
    size = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    return magic + bytes([major, 0]) + size + h + data


def npy_dict(descr, shape, fortran=False):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, repr(tuple(shape)))


x = rng.random((2, 1, 4, 4)).astype("<f4")
write("x_good.npy", npy_bytes(npy_dict("<f4", x.shape), x.tobytes()))
xnan = x.copy()
xnan[1, 0, 2, 3] = np.nan
write("x_nan.npy", npy_bytes(npy_dict("<f4", x.shape), xnan.tobytes()))
# Values beyond relu6's 6 and the special ones, +Inf, -Inf and NaN, for the
# fused epilogues (lit/fuse_epilogue_special.net); no random draw, so the
# files after it stay as they were.
xspecial = (x - 0.5) * 20
xspecial[0, 0, 0, 0], xspecial[0, 0, 1, 1], xspecial[1, 0, 2, 2] = np.inf, -np.inf, np.nan
write("x_special.npy", npy_bytes(npy_dict("<f4", x.shape), xspecial.astype("<f4").tobytes()))
# Training images with a NaN in sample 4 (for the trainer's --check-numerics).
ximg = rng.random((6, 1, 4, 4)).astype("<f4")
ximg[4, 0, 0, 0] = np.nan
write("images_nan.npy", npy_bytes(npy_dict("<f4", ximg.shape), ximg.tobytes()))

write("npy_bad_magic.npy", npy_bytes(npy_dict("<f4", x.shape), x.tobytes(), magic=b"\x93NUMPX"))
write("npy_version.npy", npy_bytes(npy_dict("<f4", x.shape), x.tobytes(), major=4))
write("npy_not_dict.npy", npy_bytes("[('descr', '<f4'), ('shape', (2, 1, 4, 4))]", x.tobytes()))
write("npy_missing_key.npy", npy_bytes("{'descr': '<f4', 'shape': (2, 1, 4, 4), }", x.tobytes()))
write("npy_bad_shape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 4 4), }",
                                     x.tobytes()))
write("npy_complex.npy", npy_bytes(npy_dict("<c8", x.shape), x.astype("<c8").tobytes()))
write("npy_big_endian.npy", npy_bytes(npy_dict(">f4", x.shape), x.astype(">f4").tobytes()))
write("npy_int32.npy", npy_bytes(npy_dict("<i4", x.shape), (x * 255).astype("<i4").tobytes()))
write("npy_fortran.npy", npy_bytes(npy_dict("<f4", x.shape, fortran=True), x.tobytes(order="F")))
x5 = rng.random((2, 1, 5, 5)).astype("<f4")
write("npy_wrong_shape.npy", npy_bytes(npy_dict("<f4", x5.shape), x5.tobytes()))
write("npy_no_samples.npy", npy_bytes(npy_dict("<f4", (0, 1, 4, 4)), b""))
good_npy = npy_bytes(npy_dict("<f4", x.shape), x.tobytes())
write("npy_truncated.npy", good_npy[:-28])
write("npy_trailing.npy", good_npy + b"\0" * 4)
write("npy_header_truncated.npy", good_npy[:40])
# Labels of a float dtype.
write("labels_float.npy", npy_bytes(npy_dict("<f4", (6,)), np.zeros(6, "<f4").tobytes()))

# ---- IDX ----------------------------------------------------------------------------


def idx_bytes(arr, code=0x08, magic=b"\0\0"):
    return magic + bytes([code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + \
        arr.astype(arr.dtype.newbyteorder(">")).tobytes()


images = (rng.random((6, 4, 4)) * 255).astype("u1")
labels = np.array([0, 1, 2, 2, 1, 0], "u1")
write("images.idx", idx_bytes(images))
write("labels.idx", idx_bytes(labels))
write("images.idx.gz", gzip.compress(idx_bytes(images), mtime=0))
write("labels_short.idx", idx_bytes(labels[:5]))
write("labels_range.idx", idx_bytes(np.array([0, 1, 2, 7, 1, 0], "u1")))
write("labels_2d.idx", idx_bytes(labels.reshape(2, 3)))
write("images_5x5.idx", idx_bytes((rng.random((6, 5, 5)) * 255).astype("u1")))

write("idx_bad_magic.idx", idx_bytes(images, magic=b"\0\x01"))
write("idx_gz_bad_magic.idx.gz", gzip.compress(idx_bytes(images, magic=b"\x08\x03"), mtime=0))
write("idx_bad_type.idx", idx_bytes(images, code=0x0A))
write("idx_rank0.idx", b"\0\0\x08\0")
write("idx_trunc_dims.idx", idx_bytes(images)[:10])
write("idx_truncated.idx", idx_bytes(images)[:-7])
write("idx_trailing.idx", idx_bytes(images) + b"\x01\x02")
write("idx_gz_truncated_data.idx.gz", gzip.compress(idx_bytes(images)[:-7], mtime=0))
# Corrupted gzip: a wrong CRC-32 in the trailer; and the stream cut short.
gz = bytearray(gzip.compress(idx_bytes(images), mtime=0))
gz[-8] ^= 0xFF
write("idx_gz_bad_crc.idx.gz", bytes(gz))
write("idx_gz_cut.idx.gz", gzip.compress(idx_bytes(images), mtime=0)[:40])
# A gzip header followed by bytes that are not deflate data.
write("idx_gz_garbage.idx.gz", b"\x1f\x8b\x08\x00\0\0\0\0\0\x03" + bytes(range(0xF0, 0x100)) * 4)
