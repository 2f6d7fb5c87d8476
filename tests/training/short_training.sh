#!/bin/sh
# A short training run: LeNet-5, the first 2,000 Fashion-MNIST training
# images, one epoch; the test accuracy on 1,000 test images must be clearly
# above chance (10%): at least 40%.
#   short_training.sh NETC EXAMPLES_DIR WORK_DIR
set -eu
netc=$1 examples=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$netc" build --train "$examples/lenet5.net" -o "$work/trainer" --batch 32
"$work/trainer" --limit 2000 --test-limit 1000 --epochs 1 --lr 0.01 --momentum 0.9 --seed 1 --quiet \
    --save "$work/w.safetensors" | tee "$work/log"
acc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$work/log" | tail -n 1)
echo "test accuracy $acc%"
awk -v a="$acc" 'BEGIN { exit !(a >= 40) }' || { echo "FAIL: test accuracy $acc% is below 40%"; exit 1; }
# The saved weights load into the inference program of the same .net as they are.
"$netc" build "$examples/lenet5.net" -o "$work/classify" --batch 50
"$work/classify" --weights "$work/w.safetensors" --input /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz \
    --labels /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz --limit 1000 | tail -n 1 | tee "$work/classify.log"
inf=$(sed -n 's/^accuracy: .* = \([0-9.]*\)%.*/\1/p' "$work/classify.log")
awk -v a="$acc" -v b="$inf" 'BEGIN { exit !(a + 0 == b + 0) }' ||
    { echo "FAIL: the inference program's accuracy $inf% differs from the trainer's $acc%"; exit 1; }
