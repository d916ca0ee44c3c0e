#!/usr/bin/env bash
# Builds memvirt and runs the whole test suite, then a sanitizer build (AddressSanitizer and
# UndefinedBehaviorSanitizer) of the same tests, then the threaded tests under
# ThreadSanitizer. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
echo "== release build and tests"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs"
echo "== ASan+UBSan build and tests"
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$jobs"
ctest --preset dev -j "$jobs"
echo "== ThreadSanitizer build of the threaded tests"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
ctest --preset tsan
