#!/bin/sh
# "Fit a tiny data set": LeNet-5 on the first 64 Fashion-MNIST training images
# for 200 epochs must reach 100% training accuracy; a sign error in any
# gradient keeps it from getting there.
#   fit_tiny.sh NETC EXAMPLES_DIR WORK_DIR
set -eu
netc=$1 examples=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$netc" build --train "$examples/lenet5.net" -o "$work/trainer" --batch 16
"$work/trainer" --limit 64 --test-limit 100 --epochs 200 --lr 0.01 --momentum 0.9 --seed 1 --quiet | tee "$work/log"
tail -n 1 "$work/log" | grep -q "train accuracy 100.00%" || { echo "FAIL: the last epoch is not at 100% training accuracy"; exit 1; }
