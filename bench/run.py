#!/usr/bin/env python3
"""Core benchmark harness: luasync side by side with Node.js, Go and bare LuaJIT.

Each workload is one program per peer (bench/core/). A program prints
`key=value` lines: `elapsed_ms` measured around the workload, and for memory
workloads `rss_kb` (plus `per_task_bytes`). The harness adds the wall time and
peak RSS of the whole process, runs every program --runs times (peers
alternating), takes medians and prints a markdown table of ratios
luasync/peer against the project's targets.

    python3 bench/run.py [--runs 5] [--only NAME[,NAME]] [--luasync PATH] [--write]
"""

import argparse
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join(HERE, "core")
ROOT = os.path.dirname(HERE)
PEERS = ("luasync", "node", "go", "luajit")


# --- Workloads ---------------------------------------------------------------

class Ratio:
    """luasync's median divided by a peer's median must stay under a limit."""

    def __init__(self, peer, metric, limit, label, strict=False):
        self.peer, self.metric, self.limit = peer, metric, limit
        self.label, self.strict = label, strict

    def passes(self, ratio):
        return ratio < self.limit if self.strict else ratio <= self.limit


class Absolute:
    """luasync's own median must stay under a limit."""

    def __init__(self, metric, limit, label):
        self.metric, self.limit, self.label = metric, limit, label

    def passes(self, value):
        return value < self.limit


class Workload:
    def __init__(self, name, title, programs, checks, metric="elapsed_ms", size=None, repeat=1,
                 direct_wall=False):
        self.name, self.title = name, title
        self.programs = programs  # peer -> (file or None, extra interpreter flags)
        self.checks = checks
        self.metric = metric      # shown for peers without a check (orientation)
        self.size = size          # passed as the program's first argument
        self.repeat = repeat      # process launches per run (startup is short)
        # Time a direct launch for wall_ms and take peak RSS from a second,
        # GNU-time launch (whose overhead would swamp a startup time).
        self.direct_wall = direct_wall


WORKLOADS = [
    Workload(
        "startup", "Startup and peak RSS of an empty script",
        {"luasync": (None, ["-e", ""]), "luajit": (None, ["-e", ""]), "node": (None, ["-e", ""])},
        [Ratio("luajit", "wall_ms", 2.0, "<= 2x luajit"),
         Ratio("node", "wall_ms", 0.1, ">= 10x faster than node"),
         Absolute("peak_rss_kb", 8192, "peak RSS < 8 MB")],
        metric="wall_ms", repeat=10, direct_wall=True),
    Workload(
        "await_loop", "1,000,000 sequential awaits of resolved promises",
        {"luasync": ("await_loop.lua", []), "node": ("await_loop.mjs", []),
         "luajit": ("await_loop_bare.lua", [])},
        [Ratio("node", "elapsed_ms", 1.0, "faster than node", strict=True)],
        size=1000000),
    Workload(
        "then_chain", "1,000,000-step andThen chain",
        {"luasync": ("then_chain.lua", []), "node": ("then_chain.mjs", []),
         "luajit": ("then_chain_bare.lua", [])},
        [Ratio("node", "elapsed_ms", 1.0, "faster than node", strict=True)],
        size=1000000),
    Workload(
        "sleep_tasks", "100,000 tasks sleeping 10 ms, joined",
        {"luasync": ("sleep_tasks.lua", []), "node": ("sleep_tasks.mjs", []),
         "go": ("sleep_tasks.go", []), "luajit": ("sleep_tasks_bare.lua", [])},
        [Ratio("node", "elapsed_ms", 1.0, "faster than node", strict=True),
         Ratio("node", "peak_rss_kb", 1.0, "lower peak RSS than node", strict=True)],
        size=100000),
    Workload(
        "pingpong", "1,000,000 ping-pong round trips over unbuffered channels",
        {"luasync": ("pingpong.lua", []), "go": ("pingpong.go", []),
         "node": ("pingpong.mjs", []), "luajit": ("pingpong_bare.lua", [])},
        [Ratio("go", "elapsed_ms", 1.0, "at least as fast as go"),
         Ratio("node", "elapsed_ms", 1 / 3, ">= 3x faster than node")],
        size=1000000),
    Workload(
        "fanin", "Fan-in: 8 producers x 125,000 values, capacity 1024",
        {"luasync": ("fanin.lua", []), "go": ("fanin.go", []),
         "node": ("fanin.mjs", []), "luajit": ("fanin_bare.lua", [])},
        [Ratio("go", "elapsed_ms", 1.0, "at least as fast as go")],
        size=1000000),
    Workload(
        "blocked_tasks", "100,000 tasks blocked on receive: bytes per task",
        {"luasync": ("blocked_tasks.lua", []), "go": ("blocked_tasks.go", []),
         "node": ("blocked_tasks.mjs", ["--expose-gc"]), "luajit": ("blocked_tasks_bare.lua", [])},
        [Absolute("per_task_bytes", 1024, "< 1 KB per blocked task")],
        metric="per_task_bytes", size=100000),
]

UNITS = {"elapsed_ms": "ms", "wall_ms": "ms", "peak_rss_kb": "KB", "per_task_bytes": "B"}


# --- Running one process ------------------------------------------------------

TIME = "/usr/bin/time"  # GNU time: a small launcher, so its %M is the child's own peak RSS


def run_once(argv, timeout, env, rss=True):
    """Run argv; return a sample dict with its exit code, wall time, peak RSS and key=value lines.

    With rss=True the process is launched through GNU time, whose own RSS is
    about 1 MB; getrusage() from this Python process would report at least
    Python's own peak, because exec keeps the old address space's high-water
    mark. Launching through time adds a few ms of wall time; rss=False avoids it.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix="luasync-bench-rss-") as rss_file:
        full = argv
        if rss and os.access(TIME, os.X_OK):
            full = [TIME, "-f", "%M", "-o", rss_file.name] + argv
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                   (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        lock, state = threading.Lock(), {"exited": False, "killed": False}

        def kill():
            with lock:
                if not state["exited"]:
                    state["killed"] = True
                    os.killpg(pid, signal.SIGKILL)

        t0 = time.perf_counter()
        try:
            pid = os.posix_spawn(full[0], full, env, file_actions=actions, setpgroup=0)
        except OSError as e:
            return {"ok": False, "error": f"cannot start {os.path.basename(full[0])}: {e.strerror}"}
        timer = threading.Timer(timeout, kill)
        timer.start()
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
        wall_ms = (time.perf_counter() - t0) * 1e3
        with lock:
            state["exited"] = True
        timer.cancel()
        _, status, usage = os.wait4(pid, 0)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
        time_lines = [l.strip() for l in open(rss_file.name).read().splitlines() if l.strip()]

    sample = {"wall_ms": wall_ms, "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1e3, "ok": True}
    if full is not argv:
        if time_lines and time_lines[-1].isdigit():
            sample["peak_rss_kb"] = float(time_lines[-1])
    elif rss:
        sample["peak_rss_kb"] = float(usage.ru_maxrss)  # upper bound, see above
    for line in stdout.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            try:
                sample[key] = float(value)
            except ValueError:
                pass
    code = os.waitstatus_to_exitcode(status)
    problem = None
    if state["killed"]:
        problem = f"timed out after {timeout:g} s"
    elif code != 0:
        problem = f"exit code {code}"
    if problem:
        tail = "\n".join((stderr.strip() or stdout.strip()).splitlines()[-8:])
        return {"ok": False, "error": problem, "output": tail}
    return sample


# --- Peers -------------------------------------------------------------------

class Toolchain:
    """Finds the peers on this machine and turns a workload's program into argv."""

    def __init__(self, luasync, scale):
        self.scale = scale
        self.tmp = tempfile.mkdtemp(prefix="luasync-bench-")
        self.paths = {"luasync": self.snapshot(luasync),
                      "node": shutil.which("node"), "luajit": shutil.which("luajit"),
                      "go": shutil.which("go")}
        where = os.path.relpath(luasync, ROOT) if luasync.startswith(ROOT + os.sep) else luasync
        self.missing = {p: "not built at " + where if p == "luasync" else "not installed"
                        for p, path in self.paths.items() if not path}
        self.go_bins = {}

    def snapshot(self, luasync):
        """Copy the binary under test, so a rebuild during the run cannot disturb it."""
        if not os.access(luasync, os.X_OK):
            return None
        copy = os.path.join(self.tmp, "luasync")
        try:
            shutil.copy2(luasync, copy)
        except OSError:
            return None
        return copy

    def available(self, peer):
        return peer not in self.missing

    def build_go(self, files):
        """Build each Go program once (standard library only, no downloads)."""
        files = sorted(set(files))
        if not files or not self.available("go"):
            return
        env = dict(os.environ)
        env.setdefault("GOCACHE", os.path.join(tempfile.gettempdir(), "luasync-bench-gocache"))
        env.setdefault("GOPATH", os.path.join(self.tmp, "gopath"))
        env.update(GOFLAGS="", GOTOOLCHAIN="local", GOPROXY="off", CGO_ENABLED="0")
        for f in files:
            out = os.path.join(self.tmp, os.path.splitext(f)[0])
            cmd = [self.paths["go"], "build", "-o", out,
                   os.path.join(CORE, f), os.path.join(CORE, "benchutil.go")]
            res = subprocess.run(cmd, cwd=self.tmp, env=env, capture_output=True, text=True)
            if res.returncode == 0:
                self.go_bins[f] = out
            else:
                self.go_bins[f] = None
                print(f"go build {f} failed:\n{res.stderr.strip()}", file=sys.stderr)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def argv(self, peer, workload):
        """argv for a peer's program, or a string saying why it is skipped."""
        if not self.available(peer):
            return f"{peer} {self.missing[peer]}"
        file, flags = workload.programs[peer]
        size = [str(max(1, int(workload.size * self.scale)))] if workload.size else []
        if file is None:
            return [self.paths[peer]] + flags
        if peer == "go":
            binary = self.go_bins.get(file)
            return [binary] + size if binary else f"go build of {file} failed"
        script = os.path.relpath(os.path.join(CORE, file), ROOT)  # run from ROOT: short paths in errors
        return [self.paths[peer]] + flags + [script] + size

    def version(self, peer):
        if not self.available(peer):
            return self.missing[peer]
        cmd = {"luasync": [self.paths["luasync"], "--version"], "node": [self.paths["node"], "--version"],
               "luajit": [self.paths["luajit"], "-v"], "go": [self.paths["go"], "version"]}[peer]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (res.stdout.strip() or res.stderr.strip()).splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            return "unknown"


# --- Measuring and reporting -------------------------------------------------

def measure(workload, tools, runs, warmup, timeout, peers):
    """Run every peer's program; return peer -> {"median": {...}, "n": k} or {"skip"/"error": text}."""
    env = dict(os.environ, NO_COLOR="1")
    results, commands = {}, {}
    for peer in workload.programs:
        if peer not in peers:
            continue
        argv = tools.argv(peer, workload)
        if isinstance(argv, str):
            results[peer] = {"skip": argv}
        else:
            commands[peer] = argv
    samples = {peer: [] for peer in commands}
    order = list(commands)
    for r in range(warmup + runs):
        turn = order[r % len(order):] + order[:r % len(order)] if order else []
        for peer in turn:
            if peer in results:  # already failed
                continue
            for _ in range(workload.repeat):
                s = run_once(commands[peer], timeout, env, rss=not workload.direct_wall)
                if s["ok"] and workload.direct_wall:
                    m = run_once(commands[peer], timeout, env)
                    s = m if not m["ok"] else dict(s, peak_rss_kb=m.get("peak_rss_kb"))
                if not s["ok"]:
                    results[peer] = {"error": s["error"], "output": s.get("output", ""),
                                     "argv": commands[peer]}
                    break
                if r >= warmup:
                    samples[peer].append(s)
    for peer, got in samples.items():
        if peer in results:
            continue
        keys = set.intersection(*(set(s) for s in got)) - {"ok"}
        results[peer] = {"median": {k: statistics.median(s[k] for s in got) for k in keys},
                         "n": len(got), "argv": commands[peer]}
    return results


def fmt(value, metric):
    if value is None:
        return "—"
    if metric in ("peak_rss_kb", "rss_kb", "base_rss_kb", "per_task_bytes"):
        return f"{value:,.0f} {UNITS.get(metric, 'KB')}"
    return f"{value:,.1f} {UNITS.get(metric, '')}".strip()


def cell(res, metric):
    if res is None:
        return "—"
    if "skip" in res:
        return "skipped"
    if "error" in res:
        return "error"
    return fmt(res["median"].get(metric), metric)


def value(res, metric):
    if res and "median" in res:
        return res["median"].get(metric)
    return None


def rows_for(workload, results):
    """Table rows: one per target, then one per peer the targets don't name (orientation)."""
    rows, fails = [], 0
    mine = results.get("luasync")
    named = set()
    for chk in workload.checks:
        if isinstance(chk, Ratio):
            named.add((chk.peer, chk.metric))
            peer_res = results.get(chk.peer)
            a, b = value(mine, chk.metric), value(peer_res, chk.metric)
            ratio = a / b if a is not None and b else None
            if mine and "error" in mine:
                verdict, fails = "FAIL (luasync error)", fails + 1
            elif ratio is None:
                verdict = "skipped"
            elif chk.passes(ratio):
                verdict = "pass"
            else:
                verdict, fails = "FAIL", fails + 1
            rows.append([workload.name, chk.metric, cell(mine, chk.metric), chk.peer,
                         cell(peer_res, chk.metric), f"{ratio:.2f}" if ratio is not None else "—",
                         chk.label, verdict])
        else:
            a = value(mine, chk.metric)
            if mine and "error" in mine:
                verdict, fails = "FAIL (luasync error)", fails + 1
            elif a is None:
                verdict = "skipped"
            elif chk.passes(a):
                verdict = "pass"
            else:
                verdict, fails = "FAIL", fails + 1
            rows.append([workload.name, chk.metric, cell(mine, chk.metric), "—", "—", "—",
                         chk.label, verdict])
    for peer in workload.programs:
        if peer == "luasync" or (peer, workload.metric) in named or peer not in results:
            continue
        peer_res = results[peer]
        a, b = value(mine, workload.metric), value(peer_res, workload.metric)
        ratio = f"{a / b:.2f}" if a is not None and b else "—"
        rows.append([workload.name, workload.metric, cell(mine, workload.metric), peer,
                     cell(peer_res, workload.metric), ratio, "orientation", "info"])
    return rows, fails


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def detail_rows(workload, results):
    rows = []
    for peer in workload.programs:
        res = results.get(peer)
        if res is None:
            continue
        if "median" not in res:
            rows.append([workload.name, peer, res.get("skip") or "error", "", "", "", "", ""])
            continue
        m = res["median"]
        rows.append([workload.name, peer, fmt(m.get("elapsed_ms"), "elapsed_ms"),
                     fmt(m.get("wall_ms"), "wall_ms"), fmt(m.get("cpu_ms"), "wall_ms"),
                     fmt(m.get("peak_rss_kb"), "peak_rss_kb"),
                     fmt(m.get("per_task_bytes"), "per_task_bytes") if "per_task_bytes" in m else "",
                     str(res["n"])])
    return rows


def show(argv):
    """A command line for the report, without this machine's directories."""
    def short(a):
        if a.startswith(ROOT + os.sep):
            return os.path.relpath(a, ROOT)
        if os.sep in a and os.path.isabs(a):
            return os.path.basename(a)
        return a
    return " ".join(short(a) or "''" for a in argv)


def machine_info():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = ", load average %.2f at the end" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}{load}"


def spawn_overhead(env, rss):
    """Median wall time of launching /bin/true the way the programs are launched."""
    true = shutil.which("true")
    if not true:
        return None
    got = [run_once([true], 10, env, rss=rss) for _ in range(20)]
    walls = [s["wall_ms"] for s in got if s["ok"]]
    return statistics.median(walls) if walls else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per program (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to run")
    ap.add_argument("--luasync", default=os.path.join(ROOT, "build", "luasync"),
                    help="luasync binary (default build/luasync)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply workload sizes (quick checks; targets assume 1)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per process (default 120)")
    ap.add_argument("--write", nargs="?", const=os.path.join(HERE, "results.md"), metavar="FILE",
                    help="also write the report to FILE (default bench/results.md)")
    ap.add_argument("--list", action="store_true", help="list workloads and exit")
    args = ap.parse_args()

    if args.list:
        for w in WORKLOADS:
            print(f"{w.name:14} {w.title}")
        return 0
    workloads = WORKLOADS
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in {w.name for w in WORKLOADS}]
        if unknown:
            print(f"unknown workload(s): {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        workloads = [w for w in WORKLOADS if w.name in wanted]
    peers = {p.strip() for p in args.peers.split(",")}
    if args.runs < 1:
        print("--runs must be at least 1", file=sys.stderr)
        return 2

    tools = Toolchain(os.path.abspath(args.luasync), args.scale)
    if args.write:
        args.write = os.path.abspath(args.write)
    os.chdir(ROOT)
    for peer, why in tools.missing.items():
        if peer in peers:
            print(f"note: {peer} {why}; its columns are skipped", file=sys.stderr)
    tools.build_go(f for w in workloads for p, (f, _) in w.programs.items()
                   if p == "go" and "go" in peers and f)
    versions = "; ".join(f"{p}: {tools.version(p)}" for p in PEERS if p in peers)
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head = ""
    if head:
        versions += f"; repository at {head} (the binary may include uncommitted work)"
    try:
        rows, details, fails, problems = [], [], 0, []
        for w in workloads:
            print(f"running {w.name} ...", file=sys.stderr, flush=True)
            results = measure(w, tools, args.runs, args.warmup, args.timeout, peers)
            r, f = rows_for(w, results)
            rows += r
            fails += f
            details += detail_rows(w, results)
            for peer, res in results.items():
                if "error" in res:
                    problems.append(f"- {w.name} / {peer}: `{show(res['argv'])}`: {res['error']}")
                    if res["output"]:
                        problems += ["  ```"] + ["  " + l for l in res["output"].splitlines()] + ["  ```"]
    finally:
        tools.cleanup()

    direct = spawn_overhead(dict(os.environ), rss=False)
    timed = spawn_overhead(dict(os.environ), rss=True)
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    out = [f"Run {now} on {machine_info()}; {args.runs} runs per program"
           + (f" (x{workloads[0].repeat} launches for startup)" if any(w.repeat > 1 for w in workloads) else "")
           + (f"; sizes scaled x{args.scale:g} (targets assume 1)" if args.scale != 1 else "") + ".",
           "",
           f"Versions: {versions}.",
           ""]
    out.append(table(["Workload", "Metric", "luasync", "Peer", "Peer median", "luasync/peer",
                      "Target", "Result"], rows))
    out += ["", "Medians per program (elapsed: measured inside the program; wall, CPU (user + "
                "system, all threads) and peak RSS: whole process):", ""]
    out.append(table(["Workload", "Program", "elapsed", "wall", "CPU", "peak RSS", "per task",
                      "runs"], details))
    if direct is not None and timed is not None:
        out += ["", f"Launching /bin/true takes {direct:.2f} ms directly (as startup wall times are "
                    f"taken) and {timed:.2f} ms through GNU time (as the other wall times and all "
                    f"peak RSS are taken); both are included in the wall times above."]
    if problems:
        out += ["", "Problems:", ""] + problems
    if hasattr(os, "getloadavg") and os.getloadavg()[1] > (os.cpu_count() or 1) * 0.75:
        out += ["", f"Warning: the 5-minute load average ({os.getloadavg()[1]:.1f}) was high for "
                    f"{os.cpu_count()} CPUs; other processes competed with the benchmarks, so "
                    "expect noise."]
    text = "\n".join(out) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w") as f:
            f.write("# Core benchmark results\n\nGenerated by `python3 bench/run.py --write`.\n\n" + text)
        print(f"wrote {args.write}", file=sys.stderr)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
