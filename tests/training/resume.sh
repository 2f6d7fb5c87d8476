#!/bin/sh
# Resumable runs: the small VGG-style net of the training benchmark (batchnorm,
# dropout) trained 3 epochs straight, and 2 epochs with --checkpoint then
# resumed for the third, give the same parameters, bit for bit: the
# checkpoint holds the parameters and running statistics, AdamW's moments
# and step, the epoch, the shuffling generator and dropout's position, and
# the schedule (cosine over 3 epochs with a warm-up) continues where it was.
# The resumed part runs on 2 threads (any thread count computes the same
# bits).  Then the errors: a file that is not a checkpoint, another
# optimizer, another schedule, and another --epochs where the schedule
# spans the run (one-cycle).
#   resume.sh NETC EXAMPLES_DIR WORK_DIR
set -eu
netc=$1 examples=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$netc" build --train "$examples/bench/fashion_vgg.net" -o "$work/trainer" --batch 32
set -- --limit 320 --test-limit 64 --optimizer adamw --lr 0.002 --schedule cosine:3 --warmup 4 --seed 5 --quiet
"$work/trainer" "$@" --epochs 3 --threads 1 --save "$work/straight.safetensors" | tee "$work/straight.log"
"$work/trainer" "$@" --epochs 2 --threads 1 --checkpoint "$work/ck.safetensors" | tee "$work/first.log"
"$work/trainer" "$@" --epochs 3 --threads 2 --resume "$work/ck.safetensors" --checkpoint "$work/ck.safetensors" \
    --save "$work/resumed.safetensors" | tee "$work/resumed.log"
grep -q "^resumed from .*ck.safetensors after epoch 2 (20 steps)$" "$work/resumed.log"
[ "$(grep -c '^epoch' "$work/resumed.log")" = 1 ]
# the third epoch's line is the same but for the speed
strip() { grep '^epoch 3/3' "$1" | sed 's/[0-9.]* images\/s//'; }
[ "$(strip "$work/straight.log")" = "$(strip "$work/resumed.log")" ] ||
    { echo "FAIL: the resumed third epoch differs:"; strip "$work/straight.log"; strip "$work/resumed.log"; exit 1; }
cmp "$work/straight.safetensors" "$work/resumed.safetensors"
echo "3 epochs straight and 2 + 1 resumed: the same parameters"
# errors: exit status 1, one line
if "$work/trainer" "$@" --epochs 3 --resume "$work/straight.safetensors" 2>"$work/err"; then exit 1; fi
grep -q "straight.safetensors: not a netc checkpoint" "$work/err"
if "$work/trainer" --limit 320 --optimizer sgd --epochs 3 --resume "$work/ck.safetensors" 2>"$work/err"; then exit 1; fi
grep -q "ck.safetensors: the checkpoint is of a run with --optimizer adamw, not sgd" "$work/err"
if "$work/trainer" "$@" --epochs 3 --schedule cosine:4 --resume "$work/ck.safetensors" 2>"$work/err"; then exit 1; fi
grep -q "ck.safetensors: the checkpoint is of a run with --schedule 'cosine:3' --warmup '4', not 'cosine:4' '4'" "$work/err"
"$work/trainer" --limit 64 --epochs 2 --schedule onecycle:0.01 --quiet --checkpoint "$work/oc.safetensors" >/dev/null
if "$work/trainer" --limit 64 --epochs 3 --schedule onecycle:0.01 --resume "$work/oc.safetensors" 2>"$work/err"; then exit 1; fi
grep -q "oc.safetensors: the checkpoint is of a run of --epochs 2, whose --schedule 'onecycle:0.01' spans them all; resume with --epochs 2" "$work/err"
echo "errors: ok"
