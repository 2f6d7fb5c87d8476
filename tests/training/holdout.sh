#!/bin/sh
# --val-split F and --early-stop P (runtime/holdout.c), on LeNet-5 and 300
# Fashion-MNIST images: the split's counts; early stopping triggers when the
# validation loss stops falling (half the images held out, so the net
# overfits the other half), the restored parameters are the best epoch's
# (bit for bit those of the same run stopped there by --epochs, and their
# test figures those printed after that epoch); the bad values are one-line
# errors.
#   holdout.sh NETC EXAMPLES_DIR WORK_DIR
set -eu
netc=$1 examples=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
"$netc" build --train "$examples/lenet5.net" -o "$work/trainer" --batch 32

# the split's counts: round(0.15 * 1000) = 150 held out
"$work/trainer" --limit 1000 --test-limit 64 --val-split 0.15 --quiet | tee "$work/split.log"
grep -q "; 850 training images \[1, 28, 28\], 64 test images;.* 150 images held out for validation (--val-split 0.15);" "$work/split.log"
grep -q "^epoch 1/1: train loss .*; val loss [0-9.]*, val accuracy [0-9.]*%; test loss" "$work/split.log"

set -- --limit 300 --test-limit 200 --val-split 0.5 --lr 0.05 --seed 2 --quiet
"$work/trainer" "$@" --early-stop 3 --epochs 40 --save "$work/early.safetensors" | tee "$work/early.log"
grep -q "^early stop: the validation loss has not improved for 3 epochs$" "$work/early.log"
best=$(sed -n 's/^best epoch \([0-9]*\): val loss .*; its parameters restored$/\1/p' "$work/early.log")
[ -n "$best" ] || { echo "FAIL: no restored best epoch"; exit 1; }
last=$(grep -c '^epoch ' "$work/early.log")
[ "$last" -eq $((best + 3)) ] || { echo "FAIL: stopped after epoch $last, best $best"; exit 1; }
# the best epoch has the lowest validation loss of all
sed -n 's/^epoch \([0-9]*\)\/40: .*val loss \([0-9.]*\),.*/\1 \2/p' "$work/early.log" |
    awk -v best="$best" '{ if (n == 0 || $2 < min) { min = $2; at = $1 } n++ }
        END { if (at != best) { print "FAIL: lowest val loss at epoch " at ", best said " best; exit 1 } }'
# the test figures after restoring are those of the best epoch
want=$(sed -n "s/^epoch $best\/40: .*; \(test loss .*\)$/\1/p" "$work/early.log")
got=$(sed -n "s/^best epoch's \(test loss .*\)$/\1/p" "$work/early.log")
[ "$want" = "$got" ] || { echo "FAIL: restored: '$got', epoch $best: '$want'"; exit 1; }
# the saved parameters are the best epoch's: the same run stopped there
"$work/trainer" "$@" --epochs "$best" --checkpoint "$work/ck.safetensors" --save "$work/at_best.safetensors" > /dev/null
cmp "$work/early.safetensors" "$work/at_best.safetensors"
echo "early stop after epoch $last: the parameters of epoch $best kept"

# errors: status 1, one line
check() {
    if "$work/trainer" "$@" 2> "$work/err"; then echo "FAIL: accepted: $*"; exit 1; fi
    [ "$(wc -l < "$work/err")" = 1 ] || { cat "$work/err"; exit 1; }
    cat "$work/err"
}
check --limit 64 --val-split 0
check --limit 64 --val-split 1
check --limit 64 --val-split abc
check --limit 5 --val-split 0.05
check --limit 64 --early-stop 2
check --limit 64 --val-split 0.5 --early-stop 0
check --limit 64 --val-split 0.5 --early-stop 2 --resume "$work/ck.safetensors"
grep -q "error: --early-stop cannot be combined with --resume" "$work/err"
echo "errors: ok"
