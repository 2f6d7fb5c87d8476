#!/bin/sh
# A rank that fails or dies ends the whole job, with a message naming the
# rank, in bounded time (never a hang), and --verify-replicas catches ranks
# that diverge.  Each job runs under `timeout`; a job still running after
# LIMIT seconds is a hang, and fails the test.
#   faults.sh NETC MPIRUN WORK_DIR
set -eu
netc=$1 mpirun=$2 work=$3
LIMIT=60
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/plain_conv
rm -rf "$work" && mkdir -p "$work"
dist=$here
. "$dist/env.sh"
"$netc" build --train --mpi --batch 4 "$dir/model.net" -o "$work/trainer"
ln -s trainer "$work/trainer_rank1" # rank 1's own name, for pkill
common="--train-labels $dir/train_labels.npy --load $dir/weights.safetensors --quiet --test-limit 0 --threads 1"
fail() { echo "faults.sh: $*" >&2; exit 1; }

# expect NAME STATUS LOG PATTERN...: the job's status is not 0 and not the
# timeout's, and the log has every pattern
expect() {
    name=$1 status=$2 log=$3
    shift 3
    [ "$status" -ne 0 ] || fail "$name: the job succeeded"
    [ "$status" -ne 124 ] || fail "$name: still running after ${LIMIT}s (a hang)"
    for p in "$@"; do grep -q -- "$p" "$log" || { cat "$log" >&2; fail "$name: no '$p' in the output"; }; done
    echo "faults.sh: $name: ended with status $status: ok"
}

# 1. A bad file on one rank (its path is another rank's): rank 1 reports
#    and aborts while rank 0 waits for it in the first broadcast.
status=0
timeout $LIMIT "$mpirun" --oversubscribe -np 1 "$work/trainer" --train-images "$dir/train_images.npy" $common : \
    -np 1 "$work/trainer" --train-images "$work/missing.npy" $common >"$work/bad_file.log" 2>&1 || status=$?
expect bad_file $status "$work/bad_file.log" "rank 1 of 2: error: " "missing.npy"

# 2. A NaN in one rank's shard, found by --check-numerics: sample 1 is rank
#    1's first (positions 1, 3, 5, ... are its), so rank 0 is waiting in the
#    gradient sum when rank 1 stops.
/usr/bin/env python3 - "$dir/train_images.npy" "$work/nan_images.npy" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
hlen = struct.unpack("<H", data[8:10])[0]  # .npy 1.0: float32 [S, 2, 8, 8]
off = 10 + hlen + 1 * 2 * 8 * 8 * 4 + 4 * 17  # sample 1, some pixel
data[off:off + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(data)
PY
status=0
timeout $LIMIT "$mpirun" --oversubscribe -np 2 "$work/trainer" --train-images "$work/nan_images.npy" $common \
    --check-numerics --no-shuffle >"$work/nan.log" 2>&1 || status=$?
expect nan $status "$work/nan.log" "rank 1 of 2: error: " "NaN" "training sample 1"

# 3. A rank killed (SIGKILL) in the middle of a long run: mpirun ends the job.
status=0
timeout $LIMIT "$mpirun" --oversubscribe -np 1 "$work/trainer" --train-images "$dir/train_images.npy" $common \
    --epochs 1000000 : -np 1 "$work/trainer_rank1" --train-images "$dir/train_images.npy" $common \
    --epochs 1000000 >"$work/killed.log" 2>&1 &
job=$!
i=0
until grep -q "^epoch 2/" "$work/killed.log"; do # training is under way
    i=$((i + 1))
    [ $i -lt 300 ] || { kill $job; fail "killed: training never started"; }
    sleep 0.1
done
pkill -KILL -x trainer_rank1
wait $job || status=$?
expect killed $status "$work/killed.log" "signal 9"

# 4. --verify-replicas: rank 1 perturbs a parameter after step 3 (a test
#    switch, NETRT_TEST_DIVERGE_RANK); the check after step 3 reports it.
status=0
timeout $LIMIT "$mpirun" --oversubscribe -np 2 -x NETRT_TEST_DIVERGE_RANK=1 "$work/trainer" \
    --train-images "$dir/train_images.npy" $common --verify-replicas 1 >"$work/diverged.log" 2>&1 || status=$?
expect diverged $status "$work/diverged.log" "verify-replicas: after step 3, rank 1's 'conv0.weight'"
