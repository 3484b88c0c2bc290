#!/usr/bin/env bash
# Serialised in-place rebuild (several people/agents may build the same tree at once).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
exec flock /tmp/fastfeed-build.lock "$PY" setup.py build_ext --inplace -j 2 "$@"
