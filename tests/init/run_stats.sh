#!/bin/sh
# Initialization against torch.nn.init: netc init draws stats.net's
# parameters, initks compares each with PyTorch's draw (two-sample
# Kolmogorov-Smirnov at level 0.001, orthogonality); wrong.net's deliberate
# mistakes (fan_in for fan_out, a missing gain) must fail the same test.
#   run_stats.sh NETC INITKS DIR WORK
set -e
netc=$1 initks=$2 dir=$3 work=$4
mkdir -p "$work"
"$netc" init "$dir/stats.net" -o "$work/stats.safetensors" --seed 7
"$initks" "$work/stats.safetensors" "$dir/cases.txt" "$dir"
"$netc" init "$dir/wrong.net" -o "$work/wrong.safetensors" --seed 7
if "$initks" "$work/wrong.safetensors" "$dir/wrong_cases.txt" "$dir" > "$work/wrong.out"; then
    cat "$work/wrong.out"
    echo "run_stats.sh: the wrong schemes passed the test" >&2
    exit 1
fi
cat "$work/wrong.out"
test "$(grep -c FAIL "$work/wrong.out")" = 2
