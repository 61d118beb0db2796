#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite with ctest.
#   bash scripts/test.sh                  normal build in build/
#   SANITIZE=1 bash scripts/test.sh       ASan + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [[ "${SANITIZE:-0}" == "1" ]]; then
  export BUILD_DIR=build-asan
  bash scripts/build.sh -DLUASYNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
  export BUILD_DIR=build
  bash scripts/build.sh
fi
# The tests talk to their own servers on 127.0.0.1: a proxy set for this machine must not take those requests.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 600
