#!/bin/sh
# The trainer's --schedule and --warmup against PyTorch's schedulers: for
# each tests/training/schedules/<case>.txt (written by gen_schedules.py from
# torch.optim.lr_scheduler: its first line the trainer's flags, then the
# rate of each epoch's first and last step), a small net trains 7 epochs of
# 2 steps at lr 0.1 and its epoch lines must end in those rates.
#   schedules.sh NETC EXAMPLES_DIR WORK_DIR (the examples are not used: the
#   net is a golden training case's)
set -eu
netc=$1 work=$3
here=$(cd "$(dirname "$0")" && pwd)
data=$here/../golden_train/small_bn_residual
rm -rf "$work" && mkdir -p "$work"
"$netc" build --train "$data/model.net" --batch 4 -o "$work/trainer"
status=0
for f in "$here"/schedules/*.txt; do
    name=$(basename "$f" .txt)
    flags=$(head -n 1 "$f")
    # shellcheck disable=SC2086 # the flags are words
    "$work/trainer" --train-images "$data/train_images.npy" --train-labels "$data/train_labels.npy" \
        --load "$data/weights.safetensors" --epochs 7 --lr 0.1 --no-shuffle --quiet $flags \
        > "$work/$name.out"
    sed -n 's/^epoch [0-9]*\/[0-9]*: .* images\/s//p' "$work/$name.out" > "$work/$name.got"
    tail -n +2 "$f" > "$work/$name.want"
    if ! cmp -s "$work/$name.got" "$work/$name.want"; then
        echo "schedules: $name ($flags): the trainer's rates differ from PyTorch's:"
        diff "$work/$name.want" "$work/$name.got" || true
        status=1
    fi
done
# A malformed schedule is an error naming the flag.
if "$work/trainer" --schedule cosine:0 --epochs 1 > "$work/bad.out" 2>&1; then
    echo "schedules: --schedule cosine:0 was accepted"
    status=1
fi
grep -q "error: --schedule: expected" "$work/bad.out" || { echo "schedules: no message for a bad --schedule"; status=1; }
exit $status
