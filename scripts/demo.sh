#!/bin/sh
# make demo: train examples/lenet5.net for one epoch on Fashion-MNIST with a
# training program netc compiled, save the weights, build the inference
# program with them and classify a few test images beside their true labels.
# The PyTorch reference for the same run is tools/pytorch_baseline.py.
set -eu
build=${1:-build}
data=${NETC_DATA:-/usr/share/datasets/fashion-mnist}
out=$build/demo
mkdir -p "$out"
netc=$build/netc
classes="T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"

echo "== netc build --train examples/lenet5.net -o $out/lenet5-train --batch 32"
"$netc" build --train examples/lenet5.net -o "$out/lenet5-train" --batch 32
echo "== $out/lenet5-train: one epoch on the 60,000 training images, tested on the 10,000 test images"
"$out/lenet5-train" --data "$data" --epochs 1 --lr 0.01 --momentum 0.9 --seed 1 --save "$out/lenet5.safetensors"
echo "== netc build examples/lenet5.net -o $out/lenet5"
"$netc" build examples/lenet5.net -o "$out/lenet5" --batch 8
echo "== $out/lenet5 --weights $out/lenet5.safetensors on the first 16 test images"
"$out/lenet5" --weights "$out/lenet5.safetensors" \
    --input "image=$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz" \
    --classes "$classes" --limit 16
