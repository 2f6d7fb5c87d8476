#!/bin/sh
# --output-bias frequencies: the trainer sets the head's bias from the
# training labels (unbalanced, one class absent); softmax of the saved bias
# must equal the frequencies PyTorch counted (gen.py) within 1e-6.  Then the
# errors: a head without a bias, an unknown value.
#   run_output_bias.sh NETC INITKS DIR WORK
set -e
netc=$1 initks=$2 dir=$3 work=$4
mkdir -p "$work"
"$netc" build --train "$dir/output_bias.net" -o "$work/ob" --batch 50
"$work/ob" --train-images "$dir/ob_images.npy" --train-labels "$dir/ob_labels.npy" --epochs 0 \
    --output-bias frequencies --save "$work/ob.safetensors" --quiet > "$work/ob.out"
cat "$work/ob.out"
grep -q "^ob: output bias head.bias = log of the class frequencies of 1000 labels: 0.5997 0.2499 0.1499 0.0004998$" "$work/ob.out"
"$initks" --softmax "$work/ob.safetensors" head.bias "$dir/ob_freqs.npy"
# errors: exit status 1 and one line naming the problem
"$netc" build --train "$dir/no_output_bias.net" -o "$work/nob" --batch 50
if "$work/nob" --train-images "$dir/ob_images.npy" --train-labels "$dir/ob_labels.npy" --epochs 0 \
    --output-bias frequencies 2> "$work/nob.err"; then exit 1; fi
cat "$work/nob.err"
grep -q "^nob: error: --output-bias: the net has no output bias" "$work/nob.err"
if "$work/ob" --train-images "$dir/ob_images.npy" --train-labels "$dir/ob_labels.npy" --epochs 0 \
    --output-bias prior 2> "$work/bad.err"; then exit 1; fi
cat "$work/bad.err"
grep -q "^ob: error: --output-bias: unknown value 'prior' (the only one is frequencies)$" "$work/bad.err"
