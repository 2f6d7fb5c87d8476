#!/bin/sh
# Runs one golden training case against PyTorch's numbers:
#   1. --grads-out: the loss and every gradient on the first batch;
#   2. --epochs E --no-shuffle --save: every parameter (running statistics
#      included) after one optimizer step per batch, the batches in order
#      (config: epochs E, default 1; flags: the optimizer and its options).
#   run_case.sh NETC NPYCMP STCMP CASE_DIR WORK_DIR -O0|-O2 [target=NAME] [threads]
# "target=NAME" builds with --target NAME (default: netc's, the host's best);
# with "threads" both steps run at --threads 1 and --threads 2, and the two
# runs' gradients and parameters must be the same bytes.
set -eu
netc=$1 npycmp=$2 stcmp=$3 dir=$4 work=$5 opt=$6
shift 6
target= threads=
for a in "$@"; do
    case $a in
    threads) threads=1 ;;
    target=*) target=${a#target=} ;;
    *) echo "run_case.sh: unknown argument '$a'" >&2; exit 2 ;;
    esac
done
rm -rf "$work" && mkdir -p "$work"
conf() { sed -n "s/^$1 //p" "$dir/config"; }
set -- --train "$dir/model.net" -o "$work/trainer" --batch "$(conf batch)" "$opt"
if [ -n "$target" ]; then set -- "$@" --target "$target"; fi
"$netc" build "$@"
epochs=$(conf epochs)
set -- --train-images "$dir/train_images.npy" --train-labels "$dir/train_labels.npy" \
    --load "$dir/weights.safetensors" --lr "$(conf lr)" --momentum "$(conf momentum)" \
    --weight-decay "$(conf weight_decay)" --no-shuffle --quiet
# more trainer options (the optimizer, clipping, the schedule): words without spaces
# shellcheck disable=SC2046
set -- "$@" $(conf flags)
"$work/trainer" "$@" --grads-out "$work/grads.safetensors" | tee "$work/grads.log"
loss=$(sed -n 's/.*loss \([^)]*\)).*/\1/p' "$work/grads.log")
"$npycmp" "--value=$loss" "$dir/expected_loss.npy" 1e-4
"$stcmp" "$work/grads.safetensors" "$dir/expected_grads.safetensors" 1e-4
"$work/trainer" "$@" --epochs "${epochs:-1}" --save "$work/params.safetensors"
"$stcmp" "$work/params.safetensors" "$dir/expected_params.safetensors" 1e-4
if [ -n "$threads" ]; then
    "$work/trainer" "$@" --threads 2 --grads-out "$work/grads2.safetensors" >/dev/null
    "$work/trainer" "$@" --threads 2 --epochs "${epochs:-1}" --save "$work/params2.safetensors" >/dev/null
    "$work/trainer" "$@" --threads 1 --grads-out "$work/grads1.safetensors" >/dev/null
    "$work/trainer" "$@" --threads 1 --epochs "${epochs:-1}" --save "$work/params1.safetensors" >/dev/null
    cmp "$work/grads1.safetensors" "$work/grads2.safetensors"
    cmp "$work/params1.safetensors" "$work/params2.safetensors"
fi
