#!/bin/sh
# netc stats' activation memory at batch 1: the memory plan's peak is the
# committed figure (docs/architecture.md), no more than the arena without a
# plan, and no less than the lower bound.
#   stats_memory.sh NETC MODEL.net PLANNED_PEAK_BYTES [TARGET]
# TARGET (default generic) is the --target the graph is planned for: its
# layouts change the values' sizes and the passes change what is live.
set -eu
out=$("$1" stats "$2" --target "${4:-generic}")
field() { echo "$out" | sed -n "s/^ *$1: *\([0-9]*\) bytes.*/\1/p"; }
planned=$(field "planned peak") unplanned=$(field unplanned) bound=$(field "lower bound")
echo "netc stats: planned peak $planned bytes (expected $3), unplanned $unplanned, lower bound $bound"
[ -n "$planned" ] && [ "$planned" = "$3" ] && [ "$planned" -le "$unplanned" ] && [ "$bound" -le "$planned" ]
