#!/bin/sh
# Runs one data-parallel case (tests/dist/README.md) on 2 ranks over MPI:
#   1. the --mpi trainer at the case's per-rank batch B under mpirun -np 2,
#      --verify-replicas 1 (every step: the ranks hold the same parameters),
#      against PyTorch's parameters after the case's steps (1e-4 of scale);
#      and with tiny gradient buckets (--bucket-mb), the same bytes;
#   2. plain and sync cases: against netc's own one-process trainer at batch
#      2B, which must give the same parameters within 1e-5 of scale (the
#      sums are taken in another order);
#   3. the --mpi program run without mpirun (one process, batch B) against
#      the one-process trainer at batch B: the same bytes.
#   run_case.sh NETC STCMP MPIRUN CASE_DIR WORK_DIR
set -eu
netc=$1 stcmp=$2 mpirun=$3 dir=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
conf() { sed -n "s/^$1 //p" "$dir/config"; }
B=$(conf batch) ranks=$(conf ranks) mode=$(conf mode)
# --oversubscribe: more ranks than cores is fine for a test
dist=$(cd "$(dirname "$0")" && pwd)
. "$dist/env.sh"
"$netc" build --train --mpi --batch "$B" "$dir/model.net" -o "$work/trainer"
set -- --train-images "$dir/train_images.npy" --train-labels "$dir/train_labels.npy" \
    --load "$dir/weights.safetensors" --lr "$(conf lr)" --momentum "$(conf momentum)" \
    --weight-decay "$(conf weight_decay)" --no-shuffle --quiet --epochs 1 --test-limit 0 --threads 1
sync=
if [ "$mode" = sync ]; then sync=--sync-batchnorm; fi
"$mpirun" -np "$ranks" --oversubscribe "$work/trainer" "$@" $sync --verify-replicas 1 \
    --save "$work/ranks.safetensors" | tee "$work/ranks.log"
grep -q "on each of $ranks ranks" "$work/ranks.log"
"$stcmp" "$work/ranks.safetensors" "$dir/expected_params.safetensors" 1e-4
# buckets of 100 bytes: many sums a step, started while the backward pass
# goes on; each element is summed alike, so the same bytes
"$mpirun" -np "$ranks" --oversubscribe "$work/trainer" "$@" $sync --bucket-mb 0.0001 \
    --save "$work/buckets.safetensors" >"$work/buckets.log"
grep -q "on $ranks ranks ([1-9][0-9]* buckets a step, " "$work/buckets.log"
cmp "$work/ranks.safetensors" "$work/buckets.safetensors"
if [ "$mode" != ddp ]; then
    "$netc" build --train --batch $((B * ranks)) "$dir/model.net" -o "$work/single"
    "$work/single" "$@" --save "$work/single.safetensors" >/dev/null
    "$stcmp" "$work/ranks.safetensors" "$work/single.safetensors" 1e-5
fi
"$netc" build --train --batch "$B" "$dir/model.net" -o "$work/single_b"
"$work/single_b" "$@" --save "$work/single_b.safetensors" >/dev/null
"$work/trainer" "$@" --save "$work/alone.safetensors" >/dev/null
cmp "$work/alone.safetensors" "$work/single_b.safetensors"
echo "run_case.sh: $(basename "$dir"): ok"
