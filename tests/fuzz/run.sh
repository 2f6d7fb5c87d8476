#!/bin/sh
# Runs every libFuzzer harness for a while: `make fuzz` calls this after
# building them into BUILD (build-fuzz).
#
#   tests/fuzz/run.sh BUILD SECONDS [HARNESS ...]
#   tests/fuzz/run.sh BUILD merge [HARNESS ...]    (make fuzz-merge)
#
# Each harness fuzzes for SECONDS (-max_total_time) from its committed seed
# corpus and regression inputs (tests/fuzz/corpus/<h>, tests/fuzz/regressions/<h>)
# plus a scratch corpus that persists in BUILD/fuzz-corpus/<h>, where new
# inputs go.  A crash, sanitizer report, leak, timeout (-timeout=10) or
# out-of-memory (-rss_limit_mb=2048) stops that harness and leaves the input
# in BUILD/fuzz-artifacts/<h>/; the script goes on with the others, then
# fails if any harness failed.  The log of each is BUILD/fuzz-logs/<h>.log.
set -u
build=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
harnesses=${*:-frontend safetensors npy idx image onnx}
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:handle_abort=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
if [ "$seconds" = merge ]; then
    for h in $harnesses; do
        echo "fuzz: merging $build/fuzz-corpus/$h into $here/corpus/$h"
        mkdir -p "$build/fuzz-corpus/$h" "$build/fuzz-logs"
        "$build/tests/fuzz/fuzz_$h" -merge=1 "$here/corpus/$h" "$build/fuzz-corpus/$h" \
            >"$build/fuzz-logs/$h-merge.log" 2>&1 || { tail -n 20 "$build/fuzz-logs/$h-merge.log"; exit 1; }
        grep 'MERGE-OUTER: [0-9]* new files' "$build/fuzz-logs/$h-merge.log"
    done
    exit 0
fi
failed=""
for h in $harnesses; do
    mkdir -p "$build/fuzz-corpus/$h" "$build/fuzz-artifacts/$h" "$build/fuzz-logs"
    dict=""
    [ -f "$here/$h.dict" ] && dict="-dict=$here/$h.dict"
    [ "$h" = frontend ] && dict="-dict=$here/net.dict"
    log="$build/fuzz-logs/$h.log"
    echo "fuzz: $h for ${seconds}s (log: $log)"
    "$build/tests/fuzz/fuzz_$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$h/" $dict \
        "$build/fuzz-corpus/$h" "$here/corpus/$h" "$here/regressions/$h" >"$log" 2>&1
    rc=$?
    # The last status line and the final statistics.
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | tr '\n' ' '
    echo
    if [ $rc -ne 0 ]; then
        echo "fuzz: $h FAILED (status $rc); the end of its log:"
        tail -n 60 "$log"
        ls "$build/fuzz-artifacts/$h/"
        failed="$failed $h"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: findings in:$failed (inputs in $build/fuzz-artifacts/)"
    exit 1
fi
echo "fuzz: no finding"
