#!/bin/sh
# The debugging views' checks (check.py says which).
#   run.sh NETC PNGDUMP SRC_DIR WORK_DIR
set -eu
/usr/bin/python3 "$3/check.py" "$@"
