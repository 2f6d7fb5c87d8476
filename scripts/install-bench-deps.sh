#!/bin/sh
# Installs what `make bench` needs besides netc's own dependencies
# (scripts/install-deps.sh), from Debian's packages, skipping what is already
# there: PyTorch and torchvision, and OpenBLAS.  Debian's PyTorch calls
# whichever libblas.so.3 the alternatives system selects, and with only
# libblas3 installed that is the unoptimized reference BLAS, on which eager
# PyTorch's BLAS-based convolutions (1x1 at one thread) and linear layers are
# several times slower than they need to be; OpenBLAS registers itself with a
# higher priority.  tools/bench.py reports which libblas.so.3 torch loaded.
set -eu
pkgs="python3-torch python3-torchvision python3-numpy libopenblas0-pthread"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
if [ -n "$missing" ]; then
    echo "netc bench: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q || echo "netc bench: apt-get update failed; trying with the current package lists"
    $sudo apt-get install -y -q --no-install-recommends $missing
fi
# If the alternative was pinned by hand to the reference BLAS, point it at
# OpenBLAS (in auto mode, installing OpenBLAS already did).
alt=libblas.so.3-x86_64-linux-gnu
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if [ -e "$openblas" ] && command -v update-alternatives >/dev/null &&
    ! update-alternatives --query "$alt" 2>/dev/null | grep -q "^Value: $openblas\$"; then
    echo "netc bench: selecting OpenBLAS for $alt"
    $sudo update-alternatives --set "$alt" "$openblas"
fi
