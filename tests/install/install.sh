#!/bin/sh
# make install, tested: installs the build into a temporary prefix, moves
# the installed tree (it must not depend on where it was installed, nor on
# the source and build trees), and there
#   1. the installed netc says it uses the installed runtime, and builds
#      LeNet-5 into a program whose output equals the build tree's program's;
#   2. the C of `netc emit --main` compiles (by $CC or clang, as netc build) against the runtime through
#      pkg-config (netrt.pc), and gives the same output;
#   3. a CMake project finds it with find_package(netrt) and does the same;
#   4. the installed netc builds a data-parallel trainer (--mpi: the
#      installed libnetrt_mpi.a) that trains on 2 ranks under mpirun.
# usage: install.sh BUILD_DIR SOURCE_DIR NPYCMP
set -eu
build=$1 src=$2 npycmp=$3
work=$(mktemp -d /tmp/netc-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
unset NETC_RUNTIME_INCLUDE NETC_RUNTIME_LIB
extra=${NETC_CFLAGS:-} # a sanitizer build's runtime needs its -fsanitize= in what links it
cmake --install "$build" --prefix "$work/first" >/dev/null
mv "$work/first" "$work/prefix" # installed trees can move
p=$work/prefix
for f in bin/netc lib/libnetrt.a lib/libnetrt_mpi.a include/netrt/netrt.h include/netrt/netrt_math.h lib/pkgconfig/netrt.pc \
         lib/cmake/netrt/netrtConfig.cmake lib/cmake/netrt/netrtConfigVersion.cmake lib/cmake/netrt/netrtTargets.cmake; do
    [ -f "$p/$f" ] || { echo "install.sh: $f was not installed"; exit 1; }
done
cd "$work"
cp "$src/examples/lenet5.net" .

# 1. netc build with the installed runtime
"$p/bin/netc" --print-runtime > runtime.txt
grep -qx "include $p/include/netrt" runtime.txt || { echo "install.sh: not the installed headers:"; cat runtime.txt; exit 1; }
grep -qx "lib $p/lib/libnetrt.a" runtime.txt || { echo "install.sh: not the installed library:"; cat runtime.txt; exit 1; }
"$p/bin/netc" init lenet5.net -o w.safetensors --seed 3
# the reference: the same net built by the build tree's netc, on 4 test images
"$build/netc" build lenet5.net -o ref --batch 2 --target generic
"$p/bin/netc" build lenet5.net -o prog --batch 2 --target generic
data=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
./ref --weights w.safetensors --input "image=$data" --limit 4 --output ref.npy >/dev/null
./prog --weights w.safetensors --input "image=$data" --limit 4 --output got.npy >/dev/null
"$npycmp" got.npy ref.npy 0

# 2. pkg-config
"$p/bin/netc" emit lenet5.net -o model.c --batch 2 --target generic --main
cc_flags=$(PKG_CONFIG_PATH="$p/lib/pkgconfig" pkg-config --cflags --libs netrt)
# shellcheck disable=SC2086
"${CC:-clang}" -std=c11 -O2 $extra model.c -o prog_pc $cc_flags
./prog_pc --weights w.safetensors --input "image=$data" --limit 4 --output pc.npy >/dev/null
"$npycmp" pc.npy ref.npy 0

# 3. find_package(netrt)
mkdir consumer
cp "$src/tests/install/consumer/CMakeLists.txt" consumer/
cmake -S consumer -B consumer/build -DCMAKE_PREFIX_PATH="$p" -DMODEL_C="$work/model.c" \
    -DCMAKE_C_COMPILER="${CC:-clang}" -DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" >/dev/null
cmake --build consumer/build >/dev/null
consumer/build/prog --weights w.safetensors --input "image=$data" --limit 4 --output cm.npy >/dev/null
"$npycmp" cm.npy ref.npy 0

# 4. netc build --train --mpi with the installed libnetrt_mpi.a
grep -qx "mpi_lib $p/lib/libnetrt_mpi.a" runtime.txt || { echo "install.sh: not the installed MPI layer:"; cat runtime.txt; exit 1; }
"$p/bin/netc" build --train --mpi lenet5.net -o trainer --batch 4
dist=$src/tests/dist
. "$dist/env.sh"
mpirun --oversubscribe -np 2 ./trainer --limit 16 \
    --test-limit 0 --threads 1 --quiet > mpi.log
grep -q "on each of 2 ranks" mpi.log || { echo "install.sh: the --mpi trainer did not train on 2 ranks:"; cat mpi.log; exit 1; }
echo "install.sh: installed, moved, and built LeNet-5 three ways with the same output, and trained it on 2 ranks"
