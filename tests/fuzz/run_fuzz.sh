#!/usr/bin/env bash
# Builds the SSE and NDJSON libFuzzer targets with clang in their own build dir
# and runs each for a bounded time, starting from tests/fuzz/corpus/<parser>.
#
#   tests/fuzz/run_fuzz.sh [SECONDS]     seconds per target (default 20, or $LUASYNC_FUZZ_SECONDS)
#   LUASYNC_FUZZ_BUILD_DIR               build dir (default build-fuzz in the repo root)
#
# Without clang or its fuzzer runtime (Debian: libclang-rt-14-dev) it says so and
# exits 0. Ends with "N passed, N failed"; exits 1 when a target fails. A failing
# input is copied to <build dir>/fuzz-artifacts/ (rerun: <target> <file>).
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-${LUASYNC_FUZZ_SECONDS:-20}}
build=${LUASYNC_FUZZ_BUILD_DIR:-$root/build-fuzz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

skip() {
  echo "fuzz: skipped: $1"
  echo "0 passed, 0 failed"
  exit 0
}

command -v clang++ >/dev/null 2>&1 || skip "clang++ not found"
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
  >"$work/probe.cpp"
clang++ -fsanitize=fuzzer,address "$work/probe.cpp" -o "$work/probe" >/dev/null 2>&1 ||
  skip "clang cannot link -fsanitize=fuzzer (install libclang-rt-14-dev)"

if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
     -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
     -DLUASYNC_FUZZ=ON -DLUASYNC_TESTS=OFF >"$work/configure.log" 2>&1; then
  cat "$work/configure.log"
  echo "fuzz: configure failed"
  echo "0 passed, 1 failed"
  exit 1
fi
if ! cmake --build "$build" --target luasync_sse_fuzz luasync_ndjson_fuzz; then
  echo "fuzz: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0
failed=0
for parser in sse ndjson; do
  target=luasync_${parser}_fuzz
  mkdir -p "$work/$parser/corpus" "$work/$parser/artifacts"
  # New inputs go to a scratch corpus; the committed seeds stay as they are.
  if "$build/$target" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$work/$parser/artifacts/" \
       "$work/$parser/corpus" "$root/tests/fuzz/corpus/$parser" >"$work/$parser/log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$parser/log")
    echo "ok $target: ${runs:-?} runs in ${secs}s"
    passed=$((passed + 1))
  else
    tail -n 40 "$work/$parser/log"
    mkdir -p "$build/fuzz-artifacts"
    cp "$work/$parser/artifacts/"* "$build/fuzz-artifacts/" 2>/dev/null
    echo "FAIL $target (failing inputs, if any, in $build/fuzz-artifacts/)"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
