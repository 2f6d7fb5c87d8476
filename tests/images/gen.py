"""Images and what torchvision makes of them, for tests/images/images.net.

Run with Debian's interpreter (python3-torch, python3-torchvision, Pillow):
    /usr/bin/python3 tests/images/gen.py
Writes small PNG and JPEG files of odd sizes and kinds (RGB, grey, RGBA,
palette; shrunk and enlarged), and for each net's input the tensor
torchvision's usual preprocessing gives:
    Image.open(f).convert("L" or "RGB") -> Resize((H, W)) -> ToTensor() [-> Normalize]
as .npy files [S, C, H, W], one per batch the test runs.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def smooth(h, w, c):
    """A picture with gradients, edges and noise (so that every filter tap matters)."""
    y, x = np.mgrid[0:h, 0:w]
    base = [(np.sin(x / 3.0 + k) * 60 + np.cos(y / 5.0 - k) * 60 + 128) for k in range(c)]
    a = np.stack(base, axis=-1) + rng.integers(-40, 40, size=(h, w, c))
    a[h // 3: h // 2, w // 4: w // 2] = 250  # an edge
    return np.clip(a, 0, 255).astype(np.uint8)


def write_images():
    Image.fromarray(smooth(23, 37, 3), "RGB").save(os.path.join(HERE, "rgb_37x23.png"))
    Image.fromarray(smooth(30, 40, 1)[:, :, 0], "L").save(os.path.join(HERE, "grey_40x30.png"))
    Image.fromarray(smooth(20, 20, 4), "RGBA").save(os.path.join(HERE, "rgba_20x20.png"))
    Image.fromarray(smooth(17, 30, 3), "RGB").quantize(16).save(os.path.join(HERE, "palette_30x17.png"))
    Image.fromarray(smooth(8, 10, 3), "RGB").save(os.path.join(HERE, "small_10x8.png"))
    Image.fromarray(smooth(41, 50, 3), "RGB").save(os.path.join(HERE, "photo_50x41.jpg"), quality=90)
    Image.fromarray(smooth(33, 33, 1)[:, :, 0], "L").save(os.path.join(HERE, "grey_33x33.jpg"), quality=85)


def expected(names, mode, size, norm=None):
    steps = [transforms.Resize(size), transforms.ToTensor()]
    if norm:
        steps.append(transforms.Normalize(*norm))
    t = transforms.Compose(steps)
    xs = [t(Image.open(os.path.join(HERE, n)).convert(mode)) for n in names]
    return torch.stack(xs).numpy().astype("<f4")


write_images()
ALL = ["rgb_37x23.png", "grey_40x30.png", "rgba_20x20.png", "palette_30x17.png", "small_10x8.png",
       "photo_50x41.jpg", "grey_33x33.jpg"]
np.save(os.path.join(HERE, "grey_28.npy"), expected(ALL, "L", (28, 28)))
np.save(os.path.join(HERE, "rgb_24x32.npy"), expected(ALL, "RGB", (24, 32)))
np.save(os.path.join(HERE, "rgb_24x32_norm.npy"),
        expected(["photo_50x41.jpg", "rgb_37x23.png"], "RGB", (24, 32),
                 ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])))
np.save(os.path.join(HERE, "grey_28_norm.npy"), expected(["grey_40x30.png"], "L", (28, 28), ([0.5], [0.25])))
# The probabilities --print shows for the classifier net (classes.net: a
# linear layer on the grey image with weights cls.safetensors), from PyTorch.
torch.manual_seed(3)
w = torch.randn(7, 28 * 28) * 0.05
b = torch.randn(7) * 0.1
x = torch.from_numpy(expected(["grey_40x30.png", "photo_50x41.jpg"], "L", (28, 28)))
p = torch.softmax(x.reshape(2, -1) @ w.T + b, dim=1)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from torch2safetensors import write_safetensors  # noqa: E402
write_safetensors(os.path.join(HERE, "cls.safetensors"), [("fc.weight", w), ("fc.bias", b)])
with open(os.path.join(HERE, "cls_expected.txt"), "w") as f:
    for s in range(2):
        order = torch.argsort(p[s], descending=True)[:5]
        f.write(", ".join("%d %.2f%%" % (int(k), 100 * float(p[s, k])) for k in order) + "\n")
