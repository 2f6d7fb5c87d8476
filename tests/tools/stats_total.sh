#!/bin/sh
# netc stats' parameter total against the count in a PyTorch parameter list
# (`name [d0, d1, ...]` per line, from torchvision's state_dict): the sum of
# every tensor's element count, batchnorm running statistics left out as
# PyTorch's model.parameters() leaves them out.
#   stats_total.sh NETC MODEL.net expected_params.txt
set -eu
want=$(awk '$1 !~ /running_(mean|var)$/ {
    s = $0; sub(/^[^[]*\[/, "", s); sub(/\].*$/, "", s)
    n = split(s, d, ", "); p = 1; for (i = 1; i <= n; i++) p *= d[i]; total += p
} END { printf "%d", total }' "$3")
got=$("$1" stats "$2" | sed -n 's/^total: \([0-9]*\) parameters.*/\1/p')
echo "netc stats: $got parameters; PyTorch: $want"
[ "$got" = "$want" ]
