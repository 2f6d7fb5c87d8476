#!/bin/sh
# examples/embed, tested as a user of an installed netc would build it:
# installs the build into a temporary prefix, builds LeNet-5 as a library
# with the installed netc and classify.c against the installed runtime
# through pkg-config (the example's Makefile), runs it on Fashion-MNIST test
# images, and compares its logits with those of the program the build
# tree's netc makes from the same net and weights: the same bits.
# usage: embed_example.sh BUILD_DIR SOURCE_DIR NPYCMP
set -eu
build=$1 src=$2 npycmp=$3
work=$(mktemp -d /tmp/netc-embed-XXXXXX)
trap 'rm -rf "$work"' EXIT
unset NETC_RUNTIME_INCLUDE NETC_RUNTIME_LIB
extra=${NETC_CFLAGS:-}
cmake --install "$build" --prefix "$work/prefix" >/dev/null
p=$work/prefix
cd "$work"
cp "$src/examples/lenet5.net" .
mkdir embed
cp "$src/examples/embed/classify.c" "$src/examples/embed/Makefile" embed/
data=/usr/share/datasets/fashion-mnist
"$p/bin/netc" init lenet5.net -o w.safetensors --seed 5
# the reference: the build tree's program, on 100 test images (the last batch padded)
"$build/netc" build lenet5.net -o ref --batch 8 --target generic
./ref --weights w.safetensors --input "image=$data/t10k-images-idx3-ubyte.gz" --limit 100 --output ref.npy >/dev/null
# the example, built as its README says, with the installed netc and pkg-config
PKG_CONFIG_PATH="$p/lib/pkgconfig" make -C embed NETC="$p/bin/netc" NETCFLAGS="--target generic" NET=../lenet5.net \
    CC="${CC:-clang}" CFLAGS="-O2 -Wall -Wextra -Werror $extra" >/dev/null
[ -f embed/liblenet5.a ] && [ -f embed/lenet5.h ]
embed/classify w.safetensors "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" 100 got.npy > out.txt
cat out.txt
grep -q "^accuracy: .* of 100 images$" out.txt
"$npycmp" got.npy ref.npy 0
echo "embed_example.sh: examples/embed, built against the installed netc, gives the program's logits bit for bit"
