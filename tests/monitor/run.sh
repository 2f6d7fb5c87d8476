#!/bin/sh
# The monitor against PyTorch (tests/monitor/gen.py): one step of
# model.net on one batch from weights.safetensors, monitored; check.py
# compares the ReLUs' zero fractions and dead units, the conv and linear
# outputs' mean and std, the gradient norms and update ratios, and parses
# the HTML report.
#   run.sh NETC SRC_DIR WORK_DIR TARGET
set -eu
netc=$1 src=$2 work=$3 target=$4
rm -rf "$work" && mkdir -p "$work/mon"
"$netc" build --train "$src/model.net" -o "$work/trainer" --batch 8 --target "$target"
"$work/trainer" --train-images "$src/images.npy" --train-labels "$src/labels.npy" --load "$src/weights.safetensors" \
    --epochs 1 --lr 0.1 --momentum 0.9 --no-shuffle --quiet --monitor "$work/mon" --monitor-every 1 | tee "$work/log"
/usr/bin/python3 "$src/check.py" "$work/mon" "$src/expected.txt"
