#!/bin/sh
# Installs what building and testing netc needs, from Debian's packages,
# skipping what is already there.  Called by `make test` and `make demo`.
set -eu
pkgs="make cmake clang gcc flex bison pkg-config check zlib1g-dev libjansson-dev libpng-dev libjpeg-dev llvm-14-tools python3 dataset-fashion-mnist graphviz libprotobuf-c-dev protobuf-c-compiler libonnx-dev libopenmpi-dev openmpi-bin"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "netc: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q || echo "netc: apt-get update failed; trying with the current package lists"
$sudo apt-get install -y -q --no-install-recommends $missing
