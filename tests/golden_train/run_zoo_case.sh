#!/bin/sh
# Runs one golden training case of a reduced zoo model (tests/golden_train/zoo/
# <model>, written by gen_zoo.py) against PyTorch's numbers.  The model.net,
# weights.safetensors and input_image.npy (one batch of 2) are those of the
# inference case the config's `golden` names; the trainer, built once:
#   1. --grads-out: the loss and every gradient of the first step;
#   2. the config's `sgd` options, 2 epochs of one step: every parameter and
#      running statistic after the two steps;
#   3. the same with the `adamw` options (AdamW, cosine schedule).
# The expected files are sampled (stcmp --sampled); the tolerances are the
# config's tol_loss, tol_grads, tol_sgd and tol_adamw.
#   run_zoo_case.sh NETC NPYCMP STCMP CASE_DIR WORK_DIR -O0|-O2
set -eu
netc=$1 npycmp=$2 stcmp=$3 dir=$4 work=$5 opt=$6
rm -rf "$work" && mkdir -p "$work"
conf() { sed -n "s/^$1 //p" "$dir/config"; }
golden=$dir/$(conf golden)
"$netc" build --train "$golden/model.net" -o "$work/trainer" --batch "$(conf batch)" "$opt"
set -- --train-images "$golden/input_image.npy" --train-labels "$dir/train_labels.npy" \
    --load "$golden/weights.safetensors" --no-shuffle --no-dropout --quiet
"$work/trainer" "$@" --grads-out "$work/grads.safetensors" | tee "$work/grads.log"
loss=$(sed -n 's/.*loss \([^)]*\)).*/\1/p' "$work/grads.log")
"$npycmp" "--value=$loss" "$dir/expected_loss.npy" "$(conf tol_loss)"
"$stcmp" --sampled "$work/grads.safetensors" "$dir/expected_grads.safetensors" "$(conf tol_grads)"
for o in sgd adamw; do
    # the optimizer's options: words without spaces
    # shellcheck disable=SC2046
    "$work/trainer" "$@" $(conf $o) --epochs "$(conf epochs)" --save "$work/$o.safetensors"
    "$stcmp" --sampled "$work/$o.safetensors" "$dir/expected_$o.safetensors" "$(conf tol_$o)"
done
