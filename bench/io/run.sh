#!/usr/bin/env bash
# I/O benchmark (issue 4): count the lines and words of a 100 MB text file
# through luasync's line streams, bare LuaJIT's io.lines and Node's readline.
#
#   bench/io/run.sh                      RUNS=5 runs per program, medians and ratios
#   RUNS=9 SIZE_MB=100 bench/io/run.sh
#   LUASYNC_BIN=build/luasync INPUT=/path/to/text bench/io/run.sh
#
# Workloads: words and lines of the file read as a file (luasync fs.lines, and
# stdin:lines() with `< file`), and words read from a pipe (`cat file |`).
# Every program prints lines=, words= and elapsed_ms= (its own wall clock
# around the count: "count ms"). The script adds the whole process's wall and
# CPU (user+sys) time from bash's `time`; ratios use those. A program whose counts differ from bare LuaJIT's is
# reported as an error. Ratios are throughput: peer time / luasync time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${RUNS:-5}"
size="${SIZE_MB:-100}"
luasync="${LUASYNC_BIN:-$repo/build/luasync}"
input="${INPUT:-${TMPDIR:-/tmp}/luasync-bench-io-${size}mb.txt}"
luajit="$(command -v luajit || true)"
node="$(command -v node || true)"

[[ -x "$luasync" ]] || { echo "no luasync binary at $luasync (set LUASYNC_BIN)" >&2; exit 2; }
if [[ ! -s "$input" ]]; then
  echo "generating $input ($size MB)..." >&2
  python3 "$here/gen.py" "$input" "$size"
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
raw="$out/raw"
: > "$raw"

# peer | workload | command (run by bash; $IN is the input path)
programs=(
  "luasync fs.lines|words|\"$luasync\" \"$here/wc.lua\" \"\$IN\" fs words"
  "luasync stdin<file|words|\"$luasync\" \"$here/wc.lua\" - stdin words < \"\$IN\""
  "luasync fs.lines|lines|\"$luasync\" \"$here/wc.lua\" \"\$IN\" fs lines"
  "luasync stdin|pipe words|cat \"\$IN\" | \"$luasync\" \"$here/wc.lua\" - stdin words"
)
if [[ -n "$luajit" ]]; then
  programs+=(
    "luajit io.lines|words|\"$luajit\" \"$here/wc_bare.lua\" \"\$IN\" file words"
    "luajit io.lines|lines|\"$luajit\" \"$here/wc_bare.lua\" \"\$IN\" file lines"
    "luajit io.stdin|pipe words|cat \"\$IN\" | \"$luajit\" \"$here/wc_bare.lua\" - stdin words"
  )
fi
if [[ -n "$node" ]]; then
  programs+=(
    "node readline|words|\"$node\" \"$here/wc.mjs\" \"\$IN\" fs words"
    "node readline|lines|\"$node\" \"$here/wc.mjs\" \"\$IN\" fs lines"
    "node readline|pipe words|cat \"\$IN\" | \"$node\" \"$here/wc.mjs\" - stdin words"
  )
fi

export IN="$input"
TIMEFORMAT='%R %U %S'
for ((run = 0; run <= runs; run++)); do  # run 0 warms the page cache and is not counted
  for p in "${programs[@]}"; do
    IFS='|' read -r peer workload cmd <<< "$p"
    if ! { time bash -c "$cmd" > "$out/stdout" 2> "$out/stderr"; } 2> "$out/time"; then
      echo "FAILED: $peer ($workload): $cmd" >&2
      tail -5 "$out/stderr" >&2
      continue
    fi
    ((run == 0)) && continue
    read -r real user sys < "$out/time"
    lines="$(sed -n 's/^lines=//p' "$out/stdout")"
    words="$(sed -n 's/^words=//p' "$out/stdout")"
    elapsed="$(sed -n 's/^elapsed_ms=//p' "$out/stdout")"
    echo "$workload|$peer|$real|$user|$sys|$elapsed|$lines|$words" >> "$raw"
  done
done

python3 - "$raw" "$input" "$runs" <<'EOF'
import statistics, sys
raw, path, runs = sys.argv[1], sys.argv[2], sys.argv[3]
rows = {}
for line in open(raw):
    w, peer, real, user, sys_, elapsed, lines, words = line.rstrip("\n").split("|")
    r = rows.setdefault((w, peer), {"wall": [], "cpu": [], "inner": [], "count": set()})
    r["wall"].append(float(real) * 1000)
    r["inner"].append(float(elapsed or "nan"))
    r["cpu"].append((float(user) + float(sys_)) * 1000)
    r["count"].add((lines, words))
med = {k: (statistics.median(v["wall"]), statistics.median(v["cpu"])) for k, v in rows.items()}
inner = {k: statistics.median(v["inner"]) for k, v in rows.items()}
print(f"input: {path}, {runs} runs per program (medians; ratios = peer time / luasync time)\n")
print("| workload | program | wall ms | cpu ms | count ms | lines | words | vs luajit (wall, cpu) | vs node (wall, cpu) |")
print("|---|---|---:|---:|---:|---:|---:|---|---|")
status = 0
for (w, peer), (wall, cpu) in sorted(med.items()):
    counts = rows[(w, peer)]["count"]
    ref = rows.get((w, next((p for (ww, p) in med if ww == w and p.startswith("luajit")), "")), {}).get("count")
    lines, words = sorted(counts)[0]
    bad = len(counts) != 1 or (ref is not None and counts != ref)
    def ratio(prefix):
        other = next(((ow, oc) for (ww, p), (ow, oc) in med.items() if ww == w and p.startswith(prefix)), None)
        if other is None or not peer.startswith("luasync"):
            return ""
        return f"{other[0] / wall:.2f}x, {other[1] / cpu:.2f}x"
    print(f"| {w} | {peer} | {wall:.0f} | {cpu:.0f} | {inner[(w, peer)]:.0f} | {lines} | {words} | {ratio('luajit')} | {ratio('node')} |"
          + (" **wrong count**" if bad else ""))
    status |= bad
sys.exit(1 if status else 0)
EOF
