#!/bin/sh
# Runs one golden case: build with netc, run on the committed input, compare
# every output with PyTorch's.
#   run_case.sh NETC NPYCMP CASE_DIR WORK_DIR -O0|-O2 [embed]
# With "embed" the weights are compiled in (--embed) and the program runs
# without --weights.
set -eu
netc=$1 npycmp=$2 dir=$3 work=$4 opt=$5 mode=${6:-}
rm -rf "$work" && mkdir -p "$work"
batch=$(cat "$dir/batch")
if [ "$mode" = embed ]; then
    "$netc" build "$dir/model.net" -o "$work/prog" --batch "$batch" "$opt" --embed "$dir/weights.safetensors"
    set --
else
    "$netc" build "$dir/model.net" -o "$work/prog" --batch "$batch" "$opt"
    set -- --weights "$dir/weights.safetensors"
fi
for f in "$dir"/input_*.npy; do
    n=${f##*/input_}; n=${n%.npy}
    set -- "$@" --input "$n=$f"
done
for f in "$dir"/expected_*.npy; do
    n=${f##*/expected_}; n=${n%.npy}
    set -- "$@" --output "$n=$work/out_$n.npy"
done
"$work/prog" "$@"
status=0
for f in "$dir"/expected_*.npy; do
    n=${f##*/expected_}; n=${n%.npy}
    "$npycmp" "$work/out_$n.npy" "$f" 1e-4 || status=1
done
exit $status
