#!/usr/bin/env bash
# JSON decode/encode benchmark: luasync.json vs lua-cjson (under luajit) vs
# Node.js JSON.parse/stringify on one generated LLM-response document.
#
#   bench/json/run.sh [SIZE_MB] [RUNS]      defaults: 20 MB, 7 runs (median)
#
# Environment: LUASYNC_BIN (default build/luasync), BENCH_DIR (where the
# document is written; default $TMPDIR or /tmp), PLAIN=1 to also time the
# decoder without its string fast path (builds bench/json/harness.cpp with g++).
set -euo pipefail
cd "$(dirname "$0")/../.."

size=${1:-20}
runs=${2:-7}
bin=${LUASYNC_BIN:-build/luasync}
dir=${BENCH_DIR:-${TMPDIR:-/tmp}/luasync-json-bench}
mkdir -p "$dir"
doc="$dir/llm-${size}mb.json"
[ -f "$doc" ] || python3 bench/json/gen.py "$doc" "$size"

results=()
measure() {  # name command... ; appends "name decode_ms encode_ms first_decode_ms first_encode_ms"
  local name=$1
  shift
  local line
  if ! line=$("$@" 2>&1); then
    echo "skipped $name: $line" >&2
    return
  fi
  results+=("$name $(awk '{print $2, $4, $6, $8}' <<<"$line")")
}

if [ -x "$bin" ]; then
  measure luasync.json "$bin" bench/json/bench.lua "$doc" "$runs"
  measure "  sort_keys=true" "$bin" bench/json/bench.lua "$doc" "$runs" "" sorted
  measure "  pretty=true" "$bin" bench/json/bench.lua "$doc" "$runs" "" pretty
else
  echo "skipped luasync.json: no binary at $bin (set LUASYNC_BIN)" >&2
fi
if [ "${PLAIN:-0}" = 1 ]; then
  harness="$dir/harness"
  g++ -std=c++20 -O2 -Isrc $(pkg-config --cflags luajit) bench/json/harness.cpp src/lua/mod_json.cpp \
    src/lua/json_encode.cpp src/lua/json_split.cpp src/lua/module.cpp -o "$harness" $(pkg-config --libs luajit)
  measure "json, fast path" "$harness" bench/json/bench.lua "$doc" "$runs"
  measure "json, nlohmann only" env JSON_FAST_PATH=0 "$harness" bench/json/bench.lua "$doc" "$runs"
fi
if luajit -e 'require "cjson"' 2>/dev/null; then
  measure lua-cjson luajit bench/json/bench.lua "$doc" "$runs" cjson
else
  echo "skipped lua-cjson: luajit cannot require \"cjson\" (install lua-cjson or set LUA_CPATH)" >&2
fi
if command -v node >/dev/null; then
  measure "node $(node --version)" node --expose-gc bench/json/bench.js "$doc" "$runs"
fi

bytes=$(wc -c <"$doc")
echo "document: $doc ($bytes bytes); CPU time in ms: median of $runs calls after 2 warm-up calls,"
echo "and the process's first call (which also faults in fresh memory)"
printf '%s\n' "${results[@]}" | awk -v mb="$(awk -v b="$bytes" 'BEGIN{print b/1e6}')" '
  { n = NF; name[NR] = $1; for (i = 2; i <= n - 4; i++) name[NR] = name[NR] " " $i
    if (substr($0, 1, 2) == "  ") name[NR] = "  " name[NR]
    dec[NR] = $(n - 3); enc[NR] = $(n - 2); fdec[NR] = $(n - 1); fenc[NR] = $n
    if (name[NR] == "lua-cjson") { cd = dec[NR]; ce = enc[NR] }
    if (name[NR] ~ /^node/) { nd = dec[NR]; ne = enc[NR] } }
  END {
    printf "%-22s %8s %8s %8s %8s %9s %9s %9s %9s %9s %9s\n", "implementation", "decode", "encode",
           "dec MB/s", "enc MB/s", "dec/cjson", "enc/cjson", "dec/node", "enc/node", "1st dec", "1st enc"
    for (i = 1; i <= NR; i++)
      printf "%-22s %8.1f %8.1f %8.0f %8.0f %9s %9s %9s %9s %9.1f %9.1f\n", name[i], dec[i], enc[i],
             mb / dec[i] * 1000, mb / enc[i] * 1000,
             cd ? sprintf("%.2fx", dec[i] / cd) : "-", ce ? sprintf("%.2fx", enc[i] / ce) : "-",
             nd ? sprintf("%.2fx", dec[i] / nd) : "-", ne ? sprintf("%.2fx", enc[i] / ne) : "-", fdec[i], fenc[i]
    print "(ratios are time / time: below 1.00x is faster)"
  }'
