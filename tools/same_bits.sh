#!/bin/sh
# Do two netc builds compute the same bits?  For a refactoring that must not
# change behaviour (docs/architecture.md): every golden case is built with
# both compilers at -O2 and run on its committed input, every golden training
# case is built with --train and run for its gradients and one epoch, and
# every output file of one must equal the other's byte for byte (cmp, not a
# tolerance).  The emitted C of each case is compared too and reported, for
# information: a change to the emitter may rewrite the C and keep the bits.
#
#   tools/same_bits.sh OLD_NETC NEW_NETC [WORK_DIR]
#
# Build the old compiler from the commit before the change, e.g.
#   git worktree add /tmp/netc-old HEAD~1 && make -C /tmp/netc-old build
#   tools/same_bits.sh /tmp/netc-old/build/netc build/netc
# Exits 1 if any output differs or the new compiler fails on a case; a case
# the old compiler cannot build (a new op's) is listed and not compared.
set -eu
old=$1 new=$2 work=${3:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work"
fail=0 cases=0 same_c=0

# run_golden NETC DIR OUT: builds and runs one golden case, outputs in OUT.
run_golden() {
    netc=$1 dir=$2 out=$3
    mkdir -p "$out"
    batch=$(cat "$dir/batch")
    "$netc" emit "$dir/model.net" -o "$out/model.c" --batch "$batch" --main >/dev/null
    "$netc" build "$dir/model.net" -o "$out/prog" --batch "$batch" -O2
    set -- --weights "$dir/weights.safetensors"
    for f in "$dir"/input_*.npy; do
        n=${f##*/input_}; n=${n%.npy}
        set -- "$@" --input "$n=$f"
    done
    for f in "$dir"/expected_*.npy; do
        n=${f##*/expected_}; n=${n%.npy}
        set -- "$@" --output "$n=$out/out_$n.npy"
    done
    "$out/prog" "$@" >/dev/null
}

# run_train NETC DIR OUT: the training case's gradients, loss and parameters.
run_train() {
    netc=$1 dir=$2 out=$3
    mkdir -p "$out"
    conf() { sed -n "s/^$1 //p" "$dir/config"; }
    "$netc" emit --train "$dir/model.net" -o "$out/model.c" --batch "$(conf batch)" --main >/dev/null
    "$netc" build --train "$dir/model.net" -o "$out/trainer" --batch "$(conf batch)" -O2
    set -- --train-images "$dir/train_images.npy" --train-labels "$dir/train_labels.npy" \
        --load "$dir/weights.safetensors" --lr "$(conf lr)" --momentum "$(conf momentum)" \
        --weight-decay "$(conf weight_decay)" --no-shuffle --quiet
    "$out/trainer" "$@" --grads-out "$out/grads.safetensors" | sed -n 's/.*loss \([^)]*\)).*/\1/p' >"$out/loss.txt"
    "$out/trainer" "$@" --epochs 1 --save "$out/params.safetensors" >/dev/null
}

# compare KIND CASE: every file both runs wrote must be equal.
compare() {
    kind=$1 case=$2 a=$work/old/$1/$2 b=$work/new/$1/$2
    cases=$((cases + 1))
    status=same
    for f in "$a"/*.npy "$a"/*.safetensors "$a"/loss.txt; do
        [ -e "$f" ] || continue
        if ! cmp -s "$f" "$b/${f##*/}"; then
            status="DIFFERS (${f##*/})"
            fail=1
        fi
    done
    if cmp -s "$a/model.c" "$b/model.c"; then c="C identical"; same_c=$((same_c + 1)); else c="C rewritten"; fi
    printf '%-40s %s, %s\n' "$kind/$case" "$status" "$c"
}

for dir in "$root"/tests/golden/*/; do
    dir=${dir%/}
    [ -f "$dir/model.net" ] && [ -f "$dir/batch" ] || continue
    case=${dir##*/}
    if ! run_golden "$old" "$dir" "$work/old/golden/$case" 2>/dev/null; then
        printf '%-40s new: the old compiler cannot build it (not compared)\n' "golden/$case"
    elif run_golden "$new" "$dir" "$work/new/golden/$case"; then
        compare golden "$case"
    else
        printf '%-40s FAILED to build or run with the new compiler\n' "golden/$case"
        fail=1
    fi
done
for dir in "$root"/tests/golden_train/*/; do
    dir=${dir%/}
    [ -f "$dir/model.net" ] && [ -f "$dir/config" ] || continue
    case=${dir##*/}
    if ! run_train "$old" "$dir" "$work/old/train/$case" 2>/dev/null; then
        printf '%-40s new: the old compiler cannot build it (not compared)\n' "train/$case"
    elif run_train "$new" "$dir" "$work/new/train/$case"; then
        compare train "$case"
    else
        printf '%-40s FAILED to build or run with the new compiler\n' "train/$case"
        fail=1
    fi
done
echo "$cases cases; emitted C identical in $same_c; outputs $([ $fail = 0 ] && echo 'bit-identical in all' || echo 'DIFFER')"
exit $fail
