#!/bin/sh
# Every rank resumes from rank 0's checkpoint: 2 ranks trained 2 epochs
# (shuffled, per-rank batchnorm) end with the same parameters, to the byte,
# as 2 ranks that stop after epoch 1 and --resume for epoch 2; and only rank
# 0 speaks (one header line, one line per epoch).
#   resume.sh NETC MPIRUN WORK_DIR
set -eu
netc=$1 mpirun=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/bn_residual_ddp
rm -rf "$work" && mkdir -p "$work"
dist=$here
. "$dist/env.sh"
"$netc" build --train --mpi --batch 3 "$dir/model.net" -o "$work/trainer"
run() { "$mpirun" --oversubscribe -np 2 "$work/trainer" --train-images "$dir/train_images.npy" \
    --train-labels "$dir/train_labels.npy" --load "$dir/weights.safetensors" --quiet --test-limit 0 --threads 1 \
    --lr 0.05 "$@"; }
run --epochs 2 --save "$work/straight.safetensors" >"$work/straight.log"
[ "$(grep -c '^training ' "$work/straight.log")" -eq 1 ] || { cat "$work/straight.log"; echo "resume.sh: not one header" >&2; exit 1; }
[ "$(grep -c '^epoch ' "$work/straight.log")" -eq 2 ] || { cat "$work/straight.log"; echo "resume.sh: not one line per epoch" >&2; exit 1; }
run --epochs 1 --checkpoint "$work/ck.safetensors" >/dev/null
# the resumed run loads the parameters from the checkpoint (--load would
# conflict): the same command without it
"$mpirun" --oversubscribe -np 2 "$work/trainer" --train-images "$dir/train_images.npy" \
    --train-labels "$dir/train_labels.npy" --quiet --test-limit 0 --threads 1 --lr 0.05 \
    --epochs 2 --resume "$work/ck.safetensors" --save "$work/resumed.safetensors" >"$work/resumed.log"
grep -q "resumed from" "$work/resumed.log"
cmp "$work/straight.safetensors" "$work/resumed.safetensors"
# resumed by one process at the per-rank batch: it trains, with a warning
# that this is not the same run (the checkpoint says 6 images a step)
"$work/trainer" --train-images "$dir/train_images.npy" --train-labels "$dir/train_labels.npy" --quiet \
    --test-limit 0 --threads 1 --lr 0.05 --epochs 2 --resume "$work/ck.safetensors" >/dev/null 2>"$work/alone.err"
grep -q "warning: .* is of a run of 6 images a step (2 ranks), this run takes 3 (1 rank)" "$work/alone.err" ||
    { cat "$work/alone.err"; echo "resume.sh: no warning for another batch" >&2; exit 1; }
echo "resume.sh: ok"
