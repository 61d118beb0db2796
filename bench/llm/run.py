#!/usr/bin/env python3
"""LLM streaming benchmark: N concurrent OpenAI streaming completions of T tokens.

Builds bench/llm/floor.c (the C floor: curl multi on libuv, SSE framing in C,
cJSON per event when libcjson is installed) and bench/llm/sse_server.c (a libuv
fake server, so the server is not what is measured), starts the server on a free
loopback port, then runs each peer --runs times, peers alternating (each run
starting one peer later), and prints the medians as a markdown table.

Peers print key=value lines (elapsed_ms, tokens_per_s, setup_ms, ttft_median_ms,
ttft_p99_ms, cpu_ms, errors); a run with errors != 0 or a non-zero exit fails the
benchmark.

    python3 bench/llm/run.py [--runs 5] [--warmup 1] [--streams 1000] [--tokens 200]
                             [--server c|python] [--luasync PATH] [--build DIR]
                             [--peers floor,node,luasync]

The luasync peer (bench/llm/luasync_stream.lua) runs when that file exists and
a luasync binary is found (--luasync, else build/luasync).
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KEYS = ("elapsed_ms", "tokens_per_s", "setup_ms", "ttft_median_ms", "ttft_p99_ms", "cpu_ms")


def pkg_config(*args):
    try:
        return subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None


def build(build_dir):
    os.makedirs(build_dir, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    uv = pkg_config("--cflags", "--libs", "libuv")
    curl = pkg_config("--cflags", "--libs", "libcurl")
    if uv is None or curl is None:
        sys.exit("bench/llm: needs pkg-config, libuv1-dev and libcurl4-openssl-dev")
    cjson = pkg_config("--cflags", "--libs", "libcjson")
    json_flags = ["-DHAVE_CJSON", *cjson] if cjson is not None else []
    if cjson is None:
        print("note: libcjson-dev not installed; floor.c uses its string scan for JSON", file=sys.stderr)
    server = os.path.join(build_dir, "sse_server")
    floor = os.path.join(build_dir, "floor")
    subprocess.run([cc, "-O2", "-o", server, os.path.join(HERE, "sse_server.c"), *uv], check=True)
    subprocess.run([cc, "-O2", "-o", floor, os.path.join(HERE, "floor.c"), *json_flags, *uv, *curl], check=True)
    return server, floor


def start_server(kind, server_bin, tokens):
    if kind == "c":
        cmd = [server_bin, "--port", "0", "--tokens", str(tokens)]
    else:
        cmd = [sys.executable, os.path.join(ROOT, "tests", "fixtures", "llm_server.py"), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    port = int(proc.stdout.readline())
    return proc, port


def run_peer(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    vals = {}
    for line in out.stdout.splitlines():
        k, _, v = line.partition("=")
        vals[k] = v
    if out.returncode != 0 or vals.get("errors") != "0":
        sys.stderr.write(out.stderr)
        raise SystemExit("bench/llm: %s failed (exit %d)" % (cmd[0], out.returncode))
    return vals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs per peer first")
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--server", choices=("c", "python"), default="c")
    ap.add_argument("--luasync", default=os.path.join(ROOT, "build", "luasync"),
                    help="luasync binary; several, comma-separated, are compared with each other")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench-llm"))
    ap.add_argument("--peers", default="floor,node,luasync", help="comma-separated subset of floor,node,luasync")
    args = ap.parse_args()

    server_bin, floor = build(args.build)
    size = ["--streams", str(args.streams), "--tokens", str(args.tokens)]
    peers = {"C floor": [floor], "node": [shutil.which("node") or "node", os.path.join(HERE, "node_stream.mjs")]}
    short = {"C floor": "floor", "node": "node"}
    lua_script = os.path.join(HERE, "luasync_stream.lua")
    binaries = args.luasync.split(",")
    for i, binary in enumerate(binaries):
        if os.path.exists(lua_script) and os.access(binary, os.X_OK):
            name = "luasync" if len(binaries) == 1 else "luasync %d (%s)" % (i + 1, binary)
            peers[name] = [binary, lua_script]
            short[name] = "luasync"
        else:
            print("note: luasync peer skipped (needs %s and a luasync binary at %s)" % (
                os.path.relpath(lua_script, ROOT), binary), file=sys.stderr)

    wanted = set(args.peers.split(","))
    peers = {name: cmd for name, cmd in peers.items() if short[name] in wanted}
    proc, port = start_server(args.server, server_bin, args.tokens)
    results = {name: [] for name in peers}
    try:
        for _ in range(args.warmup):
            for cmd in peers.values():
                run_peer(cmd + ["--port", str(port)] + size)
        order = list(peers)
        for r in range(args.runs):
            # each run starts one peer later: no peer always runs right after the same other one
            for name in order[r % len(order):] + order[:r % len(order)]:
                results[name].append(run_peer(peers[name] + ["--port", str(port)] + size))
    finally:
        proc.terminate()
        proc.wait()

    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    print("%d streams x %d tokens, %s server, %d runs (medians); %s, %d CPUs, load %s" % (
        args.streams, args.tokens, args.server, args.runs, platform.machine(), os.cpu_count(), " ".join(load)))
    print()
    print("| peer | wall ms | tokens/s | setup ms | TTFT median ms | TTFT p99 ms | CPU ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        med = [statistics.median(float(r[k]) for r in runs) for k in KEYS]
        print("| %s | %.0f | %.0f | %.1f | %.1f | %.1f | %.0f |" % (name, *med))
    if "C floor" in results and len(results) > 1:
        # Each run of a peer against the floor's run of the same round: on a machine whose speed drifts from
        # one run to the next, these medians separate small differences that the plain medians above do not.
        floor_runs = results["C floor"]
        print()
        print("Paired with the floor's run of the same round (medians of the per-round ratio or difference):")
        print()
        print("| peer | wall | TTFT median | setup | CPU |")
        print("|---|---:|---:|---:|---:|")
        for name, runs in results.items():
            if name == "C floor":
                continue
            pairs = list(zip(runs, floor_runs))
            ratio = lambda k: statistics.median(float(a[k]) / float(b[k]) for a, b in pairs)
            diff = lambda k: statistics.median(float(a[k]) - float(b[k]) for a, b in pairs)
            print("| %s | %.3fx | %+.1f ms | %+.1f ms | %.3fx |" % (
                name, ratio("elapsed_ms"), diff("ttft_median_ms"), diff("setup_ms"), ratio("cpu_ms")))


if __name__ == "__main__":
    main()
