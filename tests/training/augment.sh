#!/bin/sh
# --augment crop=P,flip (runtime/augment.c):
# 1. the crop and flip of given choices equal PyTorch's (zero padding by P,
#    the window at (dy, dx), torch.flip: tests/training/augment/gen_augment.py),
#    exactly, on a 3-channel batch;
# 2. the choices: each window offset in [0, 2P] about equally often, flips
#    about half the time, none of what is not asked for, and new ones for
#    another epoch or seed;
# 3. the trainer: crop=0 alone is no augmentation (the same bits as
#    without), crop=2,flip changes the result, the same bits at 1 and 2
#    threads and when resumed from a checkpoint (the choices depend only on
#    the seed, the epoch and the sample), and bad specs are one-line errors.
#   augment.sh NETC EXAMPLES_DIR WORK_DIR AUGTOOL NPYCMP
set -eu
netc=$1 examples=$2 work=$3 augtool=$4 npycmp=$5
data=$(dirname "$0")/augment
rm -rf "$work" && mkdir -p "$work"

# 1. against PyTorch
"$augtool" apply "$data/x.npy" 2 "$(cat "$data/choices.txt")" "$work/got.npy"
"$npycmp" "$work/got.npy" "$data/expected.npy" 0
echo "crop and flip: as PyTorch's, exactly"

# 2. the choices of 20000 samples
"$augtool" choose crop=2,flip 7 3 20000 > "$work/c1"
awk '{ dy[$1]++; dx[$2]++; f += $3 }
     END { for (v = 0; v <= 4; v++) if (dy[v] < 3600 || dy[v] > 4400 || dx[v] < 3600 || dx[v] > 4400) {
               print "FAIL: offset " v " drawn " dy[v] ", " dx[v] " times of 20000"; exit 1 }
           for (v in dy) if (v < 0 || v > 4) { print "FAIL: offset " v; exit 1 }
           if (f < 9600 || f > 10400) { print "FAIL: " f " flips of 20000"; exit 1 } }' "$work/c1"
"$augtool" choose crop=2,flip 7 4 20000 > "$work/c2"
"$augtool" choose crop=2,flip 8 3 20000 > "$work/c3"
! cmp -s "$work/c1" "$work/c2" && ! cmp -s "$work/c1" "$work/c3"
[ "$(paste -d' ' "$work/c1" "$work/c2" | awk '$1 == $4 && $2 == $5 && $3 == $6' | wc -l)" -lt 1500 ]
"$augtool" choose crop=3 7 3 1000 | awk '$1 > 6 || $2 > 6 || $3 != 0 { exit 1 }'
"$augtool" choose flip 7 3 1000 | awk '$1 != 0 || $2 != 0 { exit 1 }'
echo "choices: uniform offsets, half flipped, new per epoch and seed"

# 3. the trainer
"$netc" build --train "$examples/lenet5.net" -o "$work/trainer" --batch 32
set -- --limit 256 --test-limit 64 --lr 0.02 --seed 3 --quiet
"$work/trainer" "$@" --epochs 2 --save "$work/plain.safetensors" > /dev/null
"$work/trainer" "$@" --epochs 2 --augment crop=0 --save "$work/crop0.safetensors" > /dev/null
cmp "$work/plain.safetensors" "$work/crop0.safetensors"
"$work/trainer" "$@" --epochs 3 --augment crop=2,flip --threads 1 --save "$work/aug1.safetensors" | tee "$work/aug1.log"
grep -q "augmented by random crops (padding 2) and horizontal flips;" "$work/aug1.log"
"$work/trainer" "$@" --epochs 2 --augment crop=2,flip --save "$work/aug2e.safetensors" > /dev/null
! cmp -s "$work/plain.safetensors" "$work/aug2e.safetensors"
"$work/trainer" "$@" --epochs 3 --augment crop=2,flip --threads 2 --save "$work/aug2.safetensors" > /dev/null
cmp "$work/aug1.safetensors" "$work/aug2.safetensors"
"$work/trainer" "$@" --epochs 2 --augment crop=2,flip --checkpoint "$work/ck.safetensors" > /dev/null
"$work/trainer" "$@" --epochs 3 --augment crop=2,flip --resume "$work/ck.safetensors" --save "$work/resumed.safetensors" > /dev/null
cmp "$work/aug1.safetensors" "$work/resumed.safetensors"
echo "trainer: crop=0 changes nothing, the same bits at any thread count and resumed"

# bad specs: status 1, one line, nothing written
for spec in crop=-1 crop= crop=x rotate crop=2,flip, flip,flip crop=2,crop=3 crop=1001; do
    if "$work/trainer" "$@" --augment "$spec" --save "$work/bad.safetensors" 2> "$work/err"; then
        echo "FAIL: --augment $spec accepted"; exit 1
    fi
    [ "$(wc -l < "$work/err")" = 1 ] && grep -q "error: --augment" "$work/err" || { cat "$work/err"; exit 1; }
    [ ! -e "$work/bad.safetensors" ]
done
cat "$work/err"
echo "errors: ok"
