#!/usr/bin/env bash
# HTTP client benchmarks on loopback: the C floor (floor.c: curl multi + libuv), luasync's C++ transport with
# no Lua (transport.cpp), Node's http and fetch, and luasync once its Lua binding exists. See bench/README-http.md.
#
#   bench/http/run.sh                 build, start the server, run every workload RUNS times, print medians
#   RUNS=5 bench/http/run.sh          more runs (default 3)
#   PEERS="floor node_http" bench/http/run.sh
#   LUASYNC_BIN=build/luasync bench/http/run.sh
#   PIN=1 bench/http/run.sh           pin the server to the last CPU and the clients to the others (quiet machines)
#   PIN=same bench/http/run.sh        server and clients on one CPU: sequential TTFB without the scheduler's
#                                     choice of where the woken server runs (see bench/README-http.md)
#
# Every program prints key=value lines (requests, elapsed_ms, req_per_s, mb_per_s, cpu_us_per_req, errors,
# ttfb_us_*) and exits non-zero if any request failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${HTTP_BENCH_BUILD:-$repo/build-http-bench}"
runs="${RUNS:-3}"
peers="${PEERS:-floor transport node_http node_fetch luasync}"
luasync_bin="${LUASYNC_BIN:-$repo/build/luasync}"
pin="${PIN:-0}"

mkdir -p "$build"
cc -O2 -Wall -Wextra -o "$build/floor" "$here/floor.c" -lcurl -luv
cc -O2 -Wall -Wextra -o "$build/server" "$here/server.c" -luv
c++ -std=c++20 -O2 -Wall -Wextra -I"$repo/src" -o "$build/transport" "$here/transport.cpp" \
  "$repo/src/http/multi.cpp" "$repo/src/http/request.cpp" -lcurl -luv

ncpu="$(nproc)"
server_pin=() client_pin=()
if [[ "$pin" == 1 && "$ncpu" -ge 2 ]] && command -v taskset > /dev/null; then
  server_pin=(taskset -c "$((ncpu - 1))")
  client_pin=(taskset -c "0-$((ncpu - 2))")
elif [[ "$pin" == same ]] && command -v taskset > /dev/null; then
  server_pin=(taskset -c "$((ncpu - 1))")
  client_pin=(taskset -c "$((ncpu - 1))")
fi

out="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2> /dev/null || true; wait "$server_pid" 2> /dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

coproc SERVER { exec "${server_pin[@]}" "$build/server" --port 0; }
server_pid=$SERVER_PID
read -r port <&"${SERVER[0]}"
base="http://127.0.0.1:$port"

# name | path | requests | concurrency | extra flags
workloads=(
  "small_20k_c256|/small|20000|256|"
  "download_1MiB_200_c16|/bytes/1048576|200|16|"
  "ttfb_sequential_2k|/small|2000|1|--ttfb"
  "download_1MiB_200_c16_buf64k|/bytes/1048576|200|16|--buffer 65536"  # floor and transport only
)

command_for() {  # peer -> the command prefix, or nothing if the peer can't run here
  case "$1" in
    floor) echo "$build/floor" ;;
    transport) echo "$build/transport" ;;
    node_http) command -v node > /dev/null && echo "node $here/node_http.mjs" ;;
    node_fetch) command -v node > /dev/null && echo "node $here/node_fetch.mjs" ;;
    # bench/http/luasync_get.lua takes the same arguments (URL N C [--ttfb]) and prints the same key=value lines.
    luasync) [[ -x "$luasync_bin" && -f "$here/luasync_get.lua" ]] && echo "$luasync_bin $here/luasync_get.lua" ;;
  esac
  return 0
}

status=0
read -r -a peer_list <<< "$peers"
for ((run = 1; run <= runs; run++)); do
  # Each run starts the order one peer later, so no peer always runs right after the same other one.
  shift_by=$(((run - 1) % ${#peer_list[@]}))
  turn=("${peer_list[@]:shift_by}" "${peer_list[@]:0:shift_by}")
  for w in "${workloads[@]}"; do
    IFS='|' read -r name path n c flags <<< "$w"
    for peer in "${turn[@]}"; do
      cmd="$(command_for "$peer")"
      [[ -z "$cmd" ]] && continue
      [[ "$flags" == *--buffer* && "$peer" != floor && "$peer" != transport ]] && continue
      # shellcheck disable=SC2086  # cmd and flags are word lists
      if ! "${client_pin[@]}" $cmd "$base$path" "$n" "$c" $flags > "$out/$name.$peer.$run" 2> "$out/$name.$peer.$run.err"; then
        echo "FAILED: $peer $name (run $run):" >&2
        tail -5 "$out/$name.$peer.$run.err" >&2
        status=1
      fi
    done
  done
done

python3 - "$out" "$peers" "$runs" <<'EOF'
import os, statistics, sys
out, peers, runs = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
names = sorted({f.split(".")[0] for f in os.listdir(out)}, key=lambda s: ("ttfb" in s, "download" in s, s))
order = ["small_20k_c256", "download_1MiB_200_c16", "download_1MiB_200_c16_buf64k", "ttfb_sequential_2k"]
names = [n for n in order if n in names] + [n for n in names if n not in order]
keys = ["req_per_s", "mb_per_s", "cpu_us_per_req", "ttfb_us_p50", "ttfb_us_mean", "ttfb_us_p99"]
print(f"medians of {runs} runs\n")
print("| workload | peer | " + " | ".join(keys) + " |")
print("|---|---|" + "---|" * len(keys))
for name in names:
    for peer in peers:
        rows = []
        for r in range(1, runs + 1):
            path = os.path.join(out, f"{name}.{peer}.{r}")
            if os.path.exists(path):
                rows.append(dict(l.strip().split("=", 1) for l in open(path) if "=" in l))
        if not rows:
            if peer == "luasync" and "buf64k" not in name:
                print(f"| {name} | luasync | " + " | ".join(["(no Lua binding yet)"] + [""] * (len(keys) - 1)) + " |")
            continue
        cells = []
        for k in keys:
            vals = [float(r[k]) for r in rows if k in r]
            cells.append(f"{statistics.median(vals):.1f}" if vals else "")
        print(f"| {name} | {peer} | " + " | ".join(cells) + " |")
EOF
exit $status
