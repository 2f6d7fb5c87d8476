#!/bin/sh
# One ONNX round trip: netc import the case's model.onnx, check the parameter
# names against PyTorch's state_dict (when the case lists them), build at the
# case's batch, run on the committed input with the imported weights and
# compare every output with PyTorch's within 1e-4 (npycmp).
#   run_case.sh NETC NPYCMP CASE_DIR WORK_DIR
set -eu
netc=$1 npycmp=$2 dir=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
"$netc" import "$dir/model.onnx" -o "$work/model.net" --weights "$work/weights.safetensors"
if [ -f "$dir/expected_params.txt" ]; then
    "$netc" params "$work/model.net" | sort | diff -u "$dir/expected_params.txt" -
fi
"$netc" build "$work/model.net" -o "$work/prog" --batch "$(cat "$dir/batch")"
set -- --weights "$work/weights.safetensors"
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
