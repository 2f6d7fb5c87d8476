#!/bin/sh
# Data-parallel training against one process (docs/distributed.md): LeNet-5
# on Fashion-MNIST, the same global batch G either way:
#   1 process at batch G on T threads, and on 1 thread;
#   P ranks (mpirun -np P) at batch G / P, 1 thread each.
# For each seed it prints every run's seconds per epoch (each epoch's) and
# its final test accuracy.  Measure on a quiet machine.
#   bench_dist.sh NETC [EPOCHS [SEEDS [G [P]]]]     (defaults 5, "1 2 3", 64, 2)
set -eu
netc=$1 epochs=${2:-5} seeds=${3:-1 2 3} G=${4:-64} P=${5:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/bench-dist-XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$netc" build --train --batch "$G" "$here/examples/lenet5.net" -o "$work/single"
"$netc" build --train --mpi --batch $((G / P)) "$here/examples/lenet5.net" -o "$work/ranks"
opts="--epochs $epochs --lr 0.05 --momentum 0.9 --quiet"
# "secs per epoch ...; accuracy A%" from a trainer's log
summary() {
    awk -v ips="$2" '/^epoch [0-9]+\/[0-9]+: / { for (i = 1; i <= NF; i++) if ($i ~ /^images\/s/) r = $(i - 1);
                 gsub(",", "", r); printf "%.2f ", ips / r }
         /test accuracy/ { a = $0 } END { sub(/.*test accuracy /, "", a); sub(/%.*/, "", a); printf "s/epoch; test accuracy %s%%\n", a }' "$1"
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; $(date -u +%F)"
for s in $seeds; do
    "$work/single" $opts --seed "$s" --threads 2 >"$work/t2.log"
    echo "seed $s, 1 process, batch $G, 2 threads: $(summary "$work/t2.log" 60000)"
    "$work/single" $opts --seed "$s" --threads 1 >"$work/t1.log"
    echo "seed $s, 1 process, batch $G, 1 thread:  $(summary "$work/t1.log" 60000)"
    mpirun -np "$P" --oversubscribe "$work/ranks" $opts --seed "$s" --threads 1 >"$work/r.log"
    echo "seed $s, $P ranks, batch $((G / P)) each, 1 thread each: $(summary "$work/r.log" 60000)"
done
