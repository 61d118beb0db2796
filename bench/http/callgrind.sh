#!/usr/bin/env bash
# Instructions per small request (valgrind --tool=callgrind), for the floor and luasync: a figure that does not
# move with the machine's load, unlike req/s and CPU time. Each peer runs 2,000 and 10,000 GETs of /small; the
# difference divided by 8,000 leaves out startup and shutdown.
#
#   bench/http/callgrind.sh                 concurrency 256
#   C=1 bench/http/callgrind.sh --ttfb      sequential, streamed (the time-to-first-byte workload)
#   LUASYNC_BIN=build/luasync PEERS="floor luasync" bench/http/callgrind.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${HTTP_BENCH_BUILD:-$repo/build-http-bench}"
luasync_bin="${LUASYNC_BIN:-$repo/build/luasync}"
peers="${PEERS:-floor luasync}"
conc="${C:-256}"
command -v valgrind > /dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 2; }

mkdir -p "$build"
cc -O2 -Wall -Wextra -o "$build/floor" "$here/floor.c" -lcurl -luv
cc -O2 -Wall -Wextra -o "$build/server" "$here/server.c" -luv

out="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2> /dev/null || true; wait "$server_pid" 2> /dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT
coproc SERVER { exec "$build/server" --port 0; }
server_pid=$SERVER_PID
read -r port <&"${SERVER[0]}"
url="http://127.0.0.1:$port/small"

for peer in $peers; do
  case "$peer" in
    floor) cmd=("$build/floor") ;;
    luasync) cmd=("$luasync_bin" "$here/luasync_get.lua") ;;
    *) echo "callgrind.sh: unknown peer $peer" >&2; exit 2 ;;
  esac
  declare -A total=()
  for n in 2000 10000; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$peer.$n.out" "${cmd[@]}" "$url" "$n" "$conc" "$@" \
      > /dev/null 2> "$out/$peer.$n.err"
    total[$n]="$(grep -o 'Collected : [0-9]*' "$out/$peer.$n.err" | grep -o '[0-9]*$')"
  done
  echo "$peer: $(((total[10000] - total[2000]) / 8000)) instructions per request (concurrency $conc${*:+, $*})"
  unset total
done
