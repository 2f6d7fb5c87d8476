#!/bin/sh
# make demo-transfer: transfer learning on Fashion-MNIST (docs/training.md,
# "Transfer learning").  A small CNN (examples/transfer/base.net) learns
# classes 0-4 (T-shirt/top, trouser, pullover, dress, coat) on their 30,000
# training images; then classes 5-9 (sandal, shirt, sneaker, bag, ankle
# boot, relabelled 0-4) are learnt from 20 training images each (100 in all)
# three ways, with examples/transfer/target.net (the same features, a new
# head):
#   linear    the base's features loaded (--load --partial) and frozen
#             (--freeze 'conv*,bn*': the batchnorms use their running
#             statistics); only the head trains: a linear classifier on them
#   finetune  the base's features loaded, everything trained, the features
#             at a tenth of the head's rate (--lr-for)
#   scratch   every parameter initialized from the seed
# each for 12 epochs of 10 steps (batch 10), for seeds 1 to 3, and tested on the 5,000 test images
# of classes 5-9.  Prints the test accuracies side by side.
set -eu
build=${1:-build}
data=${NETC_DATA:-/usr/share/datasets/fashion-mnist}
out=$build/demo-transfer
netc=$build/netc
seeds=${DEMO_SEEDS:-1 2 3}
mkdir -p "$out"

echo "== classes 0-4: examples/transfer/base.net, 3 epochs on their 30,000 training images"
"$netc" build --train examples/transfer/base.net -o "$out/base" --batch 64
"$out/base" --data "$data" --classes 0-4 --epochs 3 --lr 0.05 --seed 1 --quiet --save "$out/base.safetensors"

"$netc" build --train examples/transfer/target.net -o "$out/linear" --batch 10 --freeze 'conv*,bn*'
"$netc" build --train examples/transfer/target.net -o "$out/target" --batch 10
few="--data $data --classes 5-9 --per-class 20 --epochs 12 --quiet"
# the test accuracy of the last epoch line of a log
acc() { sed -n 's/.*test accuracy \([0-9.]*%\).*/\1/p' "$1" | tail -n 1; }
for s in $seeds; do
    echo "== classes 5-9 from 100 training images, seed $s: linear on frozen features, fine-tuning, from scratch"
    # shellcheck disable=SC2086
    "$out/linear" $few --seed "$s" --load "$out/base.safetensors" --partial --lr 0.05 | tee "$out/linear-$s.log"
    # shellcheck disable=SC2086
    "$out/target" $few --seed "$s" --load "$out/base.safetensors" --partial --lr 0.005 --lr-for 'head.*=0.05' \
        | tee "$out/finetune-$s.log"
    # shellcheck disable=SC2086
    "$out/target" $few --seed "$s" --lr 0.05 | tee "$out/scratch-$s.log"
done

echo
echo "Fashion-MNIST classes 5-9 from 20 training images per class; test accuracy on their 5,000 test images"
printf '%-6s %28s %22s %16s\n' seed "linear on frozen features" "fine-tuning everything" "from scratch"
for s in $seeds; do
    printf '%-6s %28s %22s %16s\n' "$s" "$(acc "$out/linear-$s.log")" "$(acc "$out/finetune-$s.log")" \
        "$(acc "$out/scratch-$s.log")"
done
