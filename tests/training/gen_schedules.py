#!/usr/bin/python3
"""PyTorch's learning rates for the trainer's --schedule and --warmup.

    /usr/bin/python3 tests/training/gen_schedules.py

For each case of CASES it steps torch.optim.lr_scheduler's scheduler (and a
LinearLR warm-up per batch, chained by multiplication as ChainedScheduler
does) through EPOCHS epochs of STEPS optimizer steps, and writes
tests/training/schedules/<case>.txt: one line per epoch, the rate of its
first step and of its last, printed as the trainer prints them (", lr A" or
", lr A to B", %.6g).  tests/training/schedules.sh compares the trainer's
epoch lines with these files.  The output is committed; the tests never run
this script.
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCHS, STEPS, LR = 7, 2, 0.1

# name: (trainer flags, scheduler per epoch, warm-up steps and start factor)
CASES = {
    "step": ("--schedule step:3", lambda o: torch.optim.lr_scheduler.StepLR(o, 3), None),
    "step_gamma": ("--schedule step:2:0.5", lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.5), None),
    "multistep": ("--schedule multistep:2,5:0.3",
                  lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], gamma=0.3), None),
    "cosine": ("--schedule cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS), None),
    "cosine_tmax": ("--schedule cosine:4:0.001",
                    lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 4, eta_min=0.001), None),
    "warmup": ("--warmup 5", None, (5, 0.1)),
    "warmup_cosine": ("--schedule cosine --warmup 3:0.25",
                      lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS), (3, 0.25)),
    # stepped per batch (BATCH marks it): the whole run is EPOCHS * STEPS steps
    "onecycle": ("--schedule onecycle:0.4", ("BATCH", lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.4, total_steps=EPOCHS * STEPS)), None),
    "onecycle_pct": ("--schedule onecycle:0.25:0.5", ("BATCH", lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.25, total_steps=EPOCHS * STEPS, pct_start=0.5)), None),
}


def rates(epoch_sched, warmup):
    """[(first, last)] per epoch: the rate each optimizer step uses."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=LR, momentum=0.9)
    per_batch = None
    if isinstance(epoch_sched, tuple):
        per_batch = epoch_sched[1](opt)
        epoch_sched = None
    epoch = epoch_sched(opt) if epoch_sched else None
    base = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)  # the warm-up's factor alone
    warm = torch.optim.lr_scheduler.LinearLR(base, start_factor=warmup[1], total_iters=warmup[0]) if warmup else None
    out = []
    for _ in range(EPOCHS):
        used = []
        for _ in range(STEPS):
            factor = base.param_groups[0]["lr"] if warm else 1.0
            used.append(opt.param_groups[0]["lr"] * factor)
            opt.step()
            if per_batch:
                per_batch.step()
            if warm:
                base.step()
                warm.step()
        out.append((used[0], used[-1]))
        if epoch:
            epoch.step()
    return out


def main():
    os.makedirs(os.path.join(HERE, "schedules"), exist_ok=True)
    for name, (flags, sched, warmup) in CASES.items():
        lines = [flags]
        for first, last in rates(sched, warmup):
            lines.append(f", lr {first:.6g}" if f"{first:.6g}" == f"{last:.6g}" else f", lr {first:.6g} to {last:.6g}")
        with open(os.path.join(HERE, "schedules", f"{name}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        print(name, lines[1:3])


if __name__ == "__main__":
    main()
