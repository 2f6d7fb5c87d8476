#!/bin/sh
# make demo: compile examples/lenet5.net to a native program, initialize its
# weights with `netc init`, and classify Fashion-MNIST test images with it,
# predictions beside the true labels.  (Until training lands the weights are
# untrained, so the predictions are no better than chance.)
set -eu
build=${1:-build}
data=${NETC_DATA:-/usr/share/datasets/fashion-mnist}
out=$build/demo
mkdir -p "$out"
netc=$build/netc

echo "== netc build examples/lenet5.net -o $out/lenet5"
"$netc" build examples/lenet5.net -o "$out/lenet5" --batch 8
echo "== netc init examples/lenet5.net -o $out/lenet5-init.safetensors --seed 1"
"$netc" init examples/lenet5.net -o "$out/lenet5-init.safetensors" --seed 1
echo "== $out/lenet5 on the first 16 Fashion-MNIST test images"
"$out/lenet5" --weights "$out/lenet5-init.safetensors" \
    --input "image=$data/t10k-images-idx3-ubyte.gz" \
    --labels "$data/t10k-labels-idx1-ubyte.gz" \
    --classes "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot" \
    --limit 16 --output "logits=$out/logits.npy"
echo "== logits written to $out/logits.npy"
echo "(these weights are untrained: netc init only initializes them, so about 10% right is chance)"
