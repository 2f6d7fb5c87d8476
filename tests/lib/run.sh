#!/bin/sh
# netc build --lib (tests/lib/test_instances.c says what is checked): builds
# LeNet-5 as a program and as a library with the same netc, runs the program
# on two sets of weights, then the C test against the library.
# usage: run.sh NETC EXAMPLES_DIR TEST_DIR WORK_DIR
set -eu
netc=$1 examples=$2 testdir=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
cd "$work"
data=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
samples=64 batch=8
"$netc" init "$examples/lenet5.net" -o w1.safetensors --seed 1
"$netc" init "$examples/lenet5.net" -o w2.safetensors --seed 2
"$netc" build "$examples/lenet5.net" -o prog --batch $batch
./prog --weights w1.safetensors --input "image=$data" --limit $samples --output y1.npy >/dev/null
./prog --weights w2.safetensors --input "image=$data" --limit $samples --output y2.npy >/dev/null
# the two weights give different outputs (else the test could not tell the instances apart)
if cmp -s y1.npy y2.npy; then echo "run.sh: both weights give the same outputs" >&2; exit 1; fi
"$netc" build --lib "$examples/lenet5.net" -o lib/liblenet5.a --batch $batch 2>/dev/null && exit 1 # no lib/ yet: an error
[ ! -e lenet5.h ] && [ ! -e lib ]
mkdir lib
"$netc" build --lib "$examples/lenet5.net" -o lib/liblenet5.a --batch $batch
[ -f lib/liblenet5.a ] && [ -f lib/lenet5.h ] || { echo "run.sh: no lib/liblenet5.a and lib/lenet5.h" >&2; exit 1; }
# the emitted library's header and C compile without a warning
inc=$("$netc" --print-runtime | sed -n 's/^include //p')
rtlib=$("$netc" --print-runtime | sed -n 's/^lib //p')
"${CC:-clang}" -std=c11 -O2 -Wall -Wextra -Werror ${NETC_CFLAGS:-} -pthread -Ilib -I"$inc" "$testdir/test_instances.c" \
    lib/liblenet5.a "$rtlib" -ljansson -lpng -ljpeg -lz -lpthread -lm -o test_instances
./test_instances w1.safetensors w2.safetensors "$data" y1.npy y2.npy $samples 40
# --lib refuses --train, with a message and nothing written
if "$netc" build --lib --train "$examples/lenet5.net" -o lib/libt.a 2>err.txt; then exit 1; fi
grep -q "inference libraries only" err.txt && [ ! -e lib/libt.a ] && [ ! -e lib/t.h ]
# --header and --lib go with build, --header with --lib
if "$netc" emit --lib "$examples/lenet5.net" -o x.c 2>err.txt; then exit 1; fi
grep -q "lib is an option of netc build" err.txt
if "$netc" build --header x.h "$examples/lenet5.net" -o x 2>err.txt; then exit 1; fi
grep -q "header goes with --lib" err.txt && [ ! -e x ] && [ ! -e x.h ]
# --header puts the header elsewhere
"$netc" build --lib "$examples/lenet5.net" -o lib/libother.a --header other_api.h --batch $batch
[ -f other_api.h ] && [ ! -e lib/other.h ] && grep -q "int lenet5_create" other_api.h
echo "run.sh: ok"
