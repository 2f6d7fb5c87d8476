#!/usr/bin/python3
"""Write a PyTorch state_dict as safetensors, for `prog --weights` and `netc build --embed`.

    torch2safetensors.py model.pth -o model.safetensors
    torch2safetensors.py --torchvision resnet50 --seed 1 --randomize-bn -o resnet50.safetensors

The source is a file loaded with torch.load (a state_dict, a whole module, or
a checkpoint dict holding the state_dict under "state_dict" or "model"), or,
with --torchvision NAME, torchvision.models.NAME() with its random
initialization after torch.manual_seed(SEED).  Every tensor is written as
float32 under its state_dict key, in state_dict order; batchnorm's
num_batches_tracked counters are dropped (netc ignores them), as is any other
non-floating tensor (with a warning).  --randomize-bn gives every batchnorm
(every prefix with a running_mean and a running_var) a random affine map and
running statistics, so that it is not the identity:  weight in [0.5, 1.5),
bias in [-0.5, 0.5), running_mean ~ N(0, 0.5^2), running_var in [0.5, 2),
drawn from a generator seeded with SEED + 1, as tests/golden/gen.py does.

Needs only Debian's python3-torch (python3-torchvision for --torchvision):
the safetensors header (8-byte little-endian length, JSON, data) is written
by hand.  Run it with Debian's interpreter, /usr/bin/python3.
"""

import argparse
import json
import struct
import sys
from collections import OrderedDict

import torch


# ------------------------------------------------------------------ safetensors

def write_safetensors(path, tensors):
    """tensors: (name, torch.Tensor) pairs, written in order as float32."""
    header = OrderedDict()
    offset = 0
    arrays = []
    for name, t in tensors:
        a = t.detach().to("cpu", torch.float32).contiguous().numpy()
        n = a.size * 4
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + n]}
        offset += n
        arrays.append(a)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)           # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in arrays:
            f.write(a.astype("<f4", copy=False).tobytes())


def read_safetensors(path):
    """Parses a float32 safetensors file; returns an OrderedDict of tensors."""
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    body = memoryview(data)[8 + n:]
    out = OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name}: dtype {info['dtype']}, expected F32")
        b, e = info["data_offsets"]
        a = np.frombuffer(body[b:e], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out


# ------------------------------------------------------------------ state_dicts

def float_params(state_dict, warn=True):
    """(name, float32 tensor) in state_dict order, num_batches_tracked and
    other non-floating tensors left out."""
    out = []
    for k, v in state_dict.items():
        if k.endswith("num_batches_tracked"):
            continue
        if not torch.is_tensor(v) or not v.is_floating_point():
            if warn:
                print(f"torch2safetensors: warning: skipping '{k}' (not a floating-point tensor)",
                      file=sys.stderr)
            continue
        out.append((k, v.detach().to(torch.float32)))
    return out


def randomize_batchnorm(state_dict, generator):
    """Gives every batchnorm of the state_dict (in place) a random affine map
    and running statistics.  A batchnorm is a prefix P with P.running_mean and
    P.running_var; P.weight and P.bias are randomized when present."""
    done = 0
    for k in list(state_dict):
        if not k.endswith(".running_mean") and k != "running_mean":
            continue
        p = k[: -len("running_mean")]
        if p + "running_var" not in state_dict:
            continue
        c = state_dict[k].numel()
        with torch.no_grad():
            if p + "weight" in state_dict:
                state_dict[p + "weight"].copy_(torch.rand(c, generator=generator) + 0.5)         # [0.5, 1.5)
            if p + "bias" in state_dict:
                state_dict[p + "bias"].copy_(torch.rand(c, generator=generator) - 0.5)           # [-0.5, 0.5)
            state_dict[p + "running_mean"].copy_(torch.randn(c, generator=generator) * 0.5)
            state_dict[p + "running_var"].copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)  # [0.5, 2)
        done += 1
    return done


def torchvision_model(name, seed):
    """torchvision.models.NAME() with its random initialization, seeded."""
    import torchvision
    fn = getattr(torchvision.models, name, None)
    if fn is None or not callable(fn) or name.startswith("_") or not name.islower():
        raise ValueError(f"torchvision.models has no model '{name}'")
    torch.manual_seed(seed)
    return fn()


def load_state_dict(path):
    """The state_dict in a torch.load-able file."""
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # pickle of a module whose class is not importable, etc.
        raise ValueError(f"{path}: torch.load failed: {e}") from e
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                return inner.state_dict()
            if isinstance(inner, dict) and inner and all(torch.is_tensor(v) for v in inner.values()):
                return inner
        if obj and any(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise ValueError(f"{path}: holds neither a state_dict nor a module "
                     f"(a {type(obj).__name__})")


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write a PyTorch state_dict (or a torchvision model) as float32 safetensors.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("source", nargs="?", help="a .pt/.pth file loaded with torch.load")
    src.add_argument("--torchvision", metavar="NAME",
                     help="instantiate torchvision.models.NAME() with random initialization")
    ap.add_argument("-o", "--output", required=True, help="the safetensors file to write")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed for --torchvision's initialization (SEED) and --randomize-bn (SEED + 1); default 0")
    ap.add_argument("--randomize-bn", action="store_true",
                    help="give every batchnorm random weight, bias and running statistics")
    ap.add_argument("--print", action="store_true", help="print each tensor's name and shape")
    args = ap.parse_args(argv)

    try:
        if args.torchvision:
            sd = torchvision_model(args.torchvision, args.seed).state_dict()
        else:
            sd = load_state_dict(args.source)
    except ValueError as e:
        print(f"torch2safetensors: error: {e}", file=sys.stderr)
        return 1
    sd = OrderedDict((k, v.detach().clone() if torch.is_tensor(v) else v) for k, v in sd.items())
    if args.randomize_bn:
        n = randomize_batchnorm(sd, torch.Generator().manual_seed(args.seed + 1))
        if n == 0:
            print("torch2safetensors: warning: --randomize-bn: no batchnorm found", file=sys.stderr)
    params = float_params(sd)
    write_safetensors(args.output, params)
    if args.print:
        for k, v in params:
            print(f"{k} [{', '.join(str(d) for d in v.shape)}]")
    total = sum(v.numel() for _, v in params)
    print(f"torch2safetensors: {args.output}: {len(params)} tensors, {total:,} parameters", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
