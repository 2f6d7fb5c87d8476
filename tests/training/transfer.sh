#!/bin/sh
# Transfer learning in the trainer (docs/training.md, "Transfer learning"):
#   - --load --partial into a net that shares some layers with the file: the
#     loaded / initialized / skipped / not-in-the-net lists, exactly;
#   - the net's frozen parameters (freeze statement, and --freeze) are the
#     loaded ones to the bit after training, a frozen batchnorm's running
#     statistics too; the trained ones moved;
#   - --classes and --per-class pick and relabel samples;
#   - bad options: one-line errors, exit status 1, nothing written.
#   transfer.sh NETC STCMP TESTS_DIR WORK_DIR
# The "pretrained" file is the golden case transfer_freeze's weights: conv0,
# batchnorm0, conv1 (with a bias), batchnorm1, fc [10, 8].
set -eu
netc=$1 stcmp=$2 tests=$3 work=$4
gt=$tests/golden_train/transfer_freeze
rm -rf "$work" && mkdir -p "$work"
fail() { echo "transfer.sh: FAIL: $*" >&2; exit 1; }

# conv1 without a bias (the file's conv1.bias is not in the net), a new
# adapter conv, and a head on 16 features (fc.weight [10, 16] against the
# file's [10, 8]).
cat > "$work/b.net" <<'EOF'
net b {
    input image: [3, 8, 8];
    freeze "conv0.*", "batchnorm0.*";
    x = conv(image, 6, 3, pad = 1, bias = false) |> batchnorm |> relu |> maxpool(2);
    x = conv(x, 8, 3, pad = 1, bias = false) |> batchnorm |> relu;
    x = conv(x, 16, 1) as "adapter" |> relu;
    x = global_avgpool(x) |> flatten;
    output logits = linear(x, 10) as "fc";
}
EOF
"$netc" build --train "$work/b.net" -o "$work/b" --batch 4
data="--train-images $gt/train_images.npy --train-labels $gt/train_labels.npy"
# shellcheck disable=SC2086
"$work/b" $data --load "$gt/weights.safetensors" --partial --epochs 3 --lr 0.1 --quiet \
    --save "$work/b.safetensors" >"$work/b.log"
cat "$work/b.log"
expect() { grep -qxF "$1" "$work/b.log" || fail "no line '$1'"; }
expect "partial load from $gt/weights.safetensors:"
expect "  loaded (11): conv0.weight, batchnorm0.weight, batchnorm0.bias, batchnorm0.running_mean, batchnorm0.running_var, conv1.weight, batchnorm1.weight, batchnorm1.bias, batchnorm1.running_mean, batchnorm1.running_var, fc.bias"
expect "  initialized, not in the file (2): adapter.weight, adapter.bias"
expect "  skipped, shapes differ (initialized) (1): fc.weight [10, 16] (the file's [10, 8])"
expect "  in the file, not in the net (ignored) (1): conv1.bias"
expect "frozen: 5 parameter tensors, 186 values (no gradient, no update)"
# frozen: the loaded bits, running statistics included (eval mode); trained: moved
"$stcmp" --names 'conv0.*' "$work/b.safetensors" "$gt/weights.safetensors" 0
"$stcmp" --names 'batchnorm0.*' "$work/b.safetensors" "$gt/weights.safetensors" 0
for moved in conv1.weight batchnorm1.weight batchnorm1.running_mean fc.bias; do
    if "$stcmp" --names "$moved" "$work/b.safetensors" "$gt/weights.safetensors" 0 >/dev/null; then
        fail "$moved did not change in training"
    fi
done

# --freeze on the command line: conv1 too, and every batchnorm (eval mode).
"$netc" build --train "$work/b.net" -o "$work/c" --batch 4 --freeze 'conv1.*,batchnorm*'
# shellcheck disable=SC2086
"$work/c" $data --load "$gt/weights.safetensors" --partial --epochs 2 --lr 0.1 --quiet \
    --save "$work/c.safetensors" >"$work/c.log"
grep -qxF "frozen: 10 parameter tensors, 650 values (no gradient, no update)" "$work/c.log" || fail "c: frozen count"
"$stcmp" --names 'conv[01].weight' "$work/c.safetensors" "$gt/weights.safetensors" 0
"$stcmp" --names 'batchnorm*' "$work/c.safetensors" "$gt/weights.safetensors" 0

# --classes and --per-class: the golden labels are 3 2 6 4 5 5 1 6: four in
# classes 0-4, six distinct classes; the header counts the samples kept.
labels_kept=$("$work/b" $data --classes 0-4 --epochs 0 --quiet | sed -n 's/.*; \([0-9]*\) training images.*/\1/p')
per1=$("$work/b" $data --classes 0-9 --per-class 1 --epochs 0 --quiet | sed -n 's/.*; \([0-9]*\) training images.*/\1/p')
echo "classes 0-4: $labels_kept samples; classes 0-9, 1 per class: $per1"
[ "$labels_kept" = 4 ] && [ "$per1" = 6 ] || fail "--classes, --per-class: wrong sample counts"

# bad input: one line, status 1, nothing written
bad() {
    want=$1
    shift
    if "$@" >"$work/out" 2>"$work/err"; then fail "succeeded: $*"; fi
    [ "$(wc -l <"$work/err")" -eq 1 ] || fail "not one line: $(cat "$work/err")"
    grep -qF -e "$want" "$work/err" || fail "expected '$want', got: $(cat "$work/err")"
    [ ! -e "$work/bad.safetensors" ] || fail "wrote a file"
}
bad "missing tensor 'adapter.weight'" "$work/b" $data --load "$gt/weights.safetensors" --save "$work/bad.safetensors"
bad "--partial needs --load FILE" "$work/b" $data --partial --save "$work/bad.safetensors"
bad "--lr-for: the pattern 'layer4.*' matches no parameter" "$work/b" $data --lr-for 'layer4.*=0.01' --save "$work/bad.safetensors"
bad "--lr-for: expected PATTERN=RATE" "$work/b" $data --lr-for 'fc.*' --save "$work/bad.safetensors"
bad "the rate must be a number" "$work/b" $data --lr-for 'fc.*=fast' --save "$work/bad.safetensors"
bad "--classes: expected a class or a range" "$work/b" $data --classes 4-2 --save "$work/bad.safetensors"
bad "no sample has a label in 20-30" "$work/b" $data --classes 20-30 --save "$work/bad.safetensors"
bad "--per-class needs --classes" "$work/b" $data --per-class 3 --save "$work/bad.safetensors"
echo "transfer.sh: ok"
