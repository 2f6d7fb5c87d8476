#!/bin/sh
# Runs one golden case: build with netc, run on the committed input, compare
# every output with PyTorch's.
#   run_case.sh NETC NPYCMP CASE_DIR WORK_DIR -O0|-O2 [embed] [target=NAME] [threads]
# With "embed" the weights are compiled in (--embed) and the program runs
# without --weights; "target=NAME" builds with --target NAME (default: netc's,
# the host's best); with "threads" the program runs at --threads 1 and at
# --threads 2, and the two runs' outputs must be the same bytes (without it,
# it runs once at its default, all cores).
set -eu
netc=$1 npycmp=$2 dir=$3 work=$4 opt=$5
shift 5
mode= target= threads=
for a in "$@"; do
    case $a in
    embed) mode=embed ;;
    threads) threads=1 ;;
    target=*) target=${a#target=} ;;
    *) echo "run_case.sh: unknown argument '$a'" >&2; exit 2 ;;
    esac
done
rm -rf "$work" && mkdir -p "$work"
batch=$(cat "$dir/batch")
set -- "$dir/model.net" -o "$work/prog" --batch "$batch" "$opt"
if [ -n "$target" ]; then set -- "$@" --target "$target"; fi
if [ "$mode" = embed ]; then
    "$netc" build "$@" --embed "$dir/weights.safetensors"
    set --
else
    "$netc" build "$@"
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
if [ -n "$threads" ]; then
    "$work/prog" "$@" --threads 2
    for f in "$dir"/expected_*.npy; do
        n=${f##*/expected_}; n=${n%.npy}
        mv "$work/out_$n.npy" "$work/out2_$n.npy"
    done
    "$work/prog" "$@" --threads 1
else
    "$work/prog" "$@"
fi
status=0
for f in "$dir"/expected_*.npy; do
    n=${f##*/expected_}; n=${n%.npy}
    "$npycmp" "$work/out_$n.npy" "$f" 1e-4 || status=1
    if [ -n "$threads" ] && ! cmp -s "$work/out_$n.npy" "$work/out2_$n.npy"; then
        echo "run_case.sh: output $n differs between --threads 1 and --threads 2" >&2
        status=1
    fi
done
exit $status
