"""Expected outputs of the trainer's augmentation, from PyTorch.

For a seeded float32 batch x [S, C, H, W] and, per sample, a crop window
(dy, dx) and a flip, computes what torchvision's
RandomCrop(size=(H, W), padding=P) followed by RandomHorizontalFlip gives
for those random choices: the image zero-padded by P on each side
(torch.nn.functional.pad), the window [dy : dy + H, dx : dx + W], then
flipped along the width (torch.flip).  Writes x.npy, choices.txt and
expected.npy here; tests/training/augment.sh applies netc's runtime to the
same choices and compares exactly.  Run with /usr/bin/python3.
"""
import os
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
P = 2
S, C, H, W = 12, 3, 5, 7

g = torch.Generator().manual_seed(12)
x = torch.rand(S, C, H, W, generator=g, dtype=torch.float32) + 0.5  # no zeros: a padding zero shows
# every corner of the window range, the centre, and both flips
choices = [(0, 0, 0), (0, 0, 1), (2 * P, 2 * P, 0), (2 * P, 2 * P, 1), (0, 2 * P, 0), (2 * P, 0, 1),
           (P, P, 0), (P, P, 1), (1, 3, 0), (3, 1, 1), (P, 0, 1), (4, 2, 0)]
assert len(choices) == S
out = []
for s, (dy, dx, fl) in enumerate(choices):
    padded = F.pad(x[s], (P, P, P, P))  # zero padding, as RandomCrop(padding=P)
    crop = padded[:, dy:dy + H, dx:dx + W]
    if fl:
        crop = torch.flip(crop, dims=[2])
    out.append(crop)
expected = torch.stack(out)
np.save(os.path.join(HERE, "x.npy"), x.numpy())
np.save(os.path.join(HERE, "expected.npy"), expected.numpy())
with open(os.path.join(HERE, "choices.txt"), "w") as f:
    f.write(";".join("%d,%d,%d" % c for c in choices) + "\n")
print("wrote x.npy, expected.npy, choices.txt (P = %d, %d samples [%d, %d, %d])" % (P, S, C, H, W))
