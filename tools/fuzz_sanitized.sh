#!/usr/bin/env bash
# Build the extensions with ASan/UBSan into build/asan-lib (the normal in-place build is left
# alone) and run every fuzz/fuzz_*.py target against it for a bounded time.  Works in a fresh
# clone (nothing needs to be built first); the targets refuse to run when `import fastfeed`
# resolves anywhere but build/asan-lib (FASTFEED_FUZZ_EXPECT), so an in-place build can never
# be fuzzed by mistake.  The C decoders' fuzz targets run under CTest (CMakeLists.txt).
#   tools/fuzz_sanitized.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
PY=${PYTHON:-python}
out=build/asan-lib
rm -rf "$out"
mkdir -p "$out"
cp -r fastfeed "$out/"
find "$out" -name '*.so' -delete
FASTFEED_SANITIZE=1 "$PY" setup.py -q build_ext -b "$out" -t build/asan-tmp -j 2 >/dev/null
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
status=0
for target in fuzz/fuzz_*.py; do
    echo "--- $target (${secs}s, ASan+UBSan)"
    if ! PYTHONPATH="$PWD/$out" FASTFEED_FUZZ_EXPECT="$PWD/$out" LD_PRELOAD="$asan:$ubsan" \
        ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$PY" "$target" --seconds "$secs"; then
        status=1
    fi
done
exit $status
