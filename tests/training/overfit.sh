#!/bin/sh
# --overfit 32 on LeNet-5: the first 32 Fashion-MNIST training images, in
# file order, fitted to 100% training accuracy (eval mode) with SGD at lr
# 0.05 and momentum 0.9; the last line says PASSED and the epoch.  And the
# check can fail: at lr 0 nothing is learnt, and the last line says FAILED
# (exit status 0 either way).
#   overfit.sh NETC EXAMPLES_DIR WORK_DIR
set -eu
netc=$1 examples=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$netc" build --train "$examples/lenet5.net" -o "$work/trainer" --batch 32
"$work/trainer" --overfit 32 --epochs 60 --lr 0.05 --seed 1 --quiet | tee "$work/log"
tail -n 1 "$work/log" | grep -q "^overfit: PASSED: 100% training accuracy on 32 images after [0-9]* epochs*$" ||
    { echo "FAIL: --overfit 32 did not reach 100%"; exit 1; }
grep -q "^overfit: epoch 1: loss [0-9.]*, accuracy [0-9.]*% on the 32 training images (eval mode)$" "$work/log" ||
    { echo "FAIL: no per-epoch line"; exit 1; }
"$work/trainer" --overfit 32 --epochs 3 --lr 0 --seed 1 --quiet > "$work/log0"
tail -n 1 "$work/log0" | grep -q "^overfit: FAILED: 32 images not fitted in 3 epochs" ||
    { echo "FAIL: --overfit at lr 0 did not say FAILED"; cat "$work/log0"; exit 1; }
echo ok
