"""Black-box tests of stdin/stdout/stderr, fs and process (API.md section 6).

Runs $LUASYNC_BIN as a subprocess; stdlib only. Prints "N passed, N failed".
"""
import fcntl
import hashlib
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite, binary  # noqa: E402

s = Suite()
BIN = binary()


def script(name, code):
    return s.write(name, code)


def run_bytes(args, stdin=None, input=None, timeout=60, env=None):
    """Runs luasync with bytes in and out; stdin may be a file object."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN] + list(args), stdin=stdin, input=input, capture_output=True,
                       timeout=timeout, env=e, cwd=s.tmp)
    return p.returncode, p.stdout, p.stderr


def sha(b):
    return hashlib.sha256(b).hexdigest()


# --- stdin: lines and chunks -------------------------------------------------

lines_lua = script("lines.lua", 'await(stdin:lines():forEach(function(l) print("[" .. l .. "]") end))\n')
rc, out, err = run_bytes([lines_lua], input=b"a\r\nb\n\n c \r\nlast")
s.eq("stdin:lines() CRLF, empty line, no trailing newline", (rc, out, err),
     (0, b"[a]\n[b]\n[]\n[ c ]\n[last]\n", b""))

rc, out, err = run_bytes([lines_lua], input=b"")
s.eq("stdin:lines() on empty input", (rc, out), (0, b""))

rc, out, err = run_bytes([lines_lua], input=b"only\n")
s.eq("stdin:lines() single line with newline", (rc, out), (0, b"[only]\n"))

for_lua = script("forlines.lua", 'local n = 0\nfor l in stdin:lines() do n = n + 1; print(n, l) end\n')
rc, out, err = run_bytes([for_lua], input=b"x\r\ny\nz")
s.eq("for l in stdin:lines() do (a Stream is its own iterator)", (rc, out, err), (0, b"1\tx\n2\ty\n3\tz\n", b""))

big_line = script("bigline.lua",
                  'await(stdin:lines():forEach(function(l) print(#l, l:sub(1, 3), l:sub(-3)) end))\n')
data = b"ab" + b"x" * (10 * 1024 * 1024 - 4) + b"yz\nshort"
rc, out, err = run_bytes([big_line], input=data)
s.eq("a 10 MB single line arrives whole", (rc, out),
     (0, b"10485760\tabx\txyz\n5\tsho\tort\n"))

chunks_lua = script("chunks.lua", "await(stdin:chunks():pipeTo(stdout))\n")
blob = bytes(range(256)) * 4096 + b"\0\0\r\n\0" + os.urandom(3 * 1024 * 1024 + 17)
rc, out, err = run_bytes([chunks_lua], input=blob)
s.eq("binary with NUL bytes: chunks() -> stdout:write through pipes (sha256)",
     (rc, sha(out), len(out), err), (0, sha(blob), len(blob), b""))

blob_path = s.write("blob.bin", blob, mode="wb")
with open(blob_path, "rb") as f:
    rc, out, err = run_bytes([chunks_lua], stdin=f)
s.eq("binary with NUL bytes: stdin redirected from a file (sha256)", (rc, sha(out)), (0, sha(blob)))

out_path = os.path.join(s.tmp, "blob.out")
with open(blob_path, "rb") as f, open(out_path, "wb") as o:
    p = subprocess.run([BIN, chunks_lua], stdin=f, stdout=o, stderr=subprocess.PIPE, timeout=60)
with open(out_path, "rb") as o:
    s.eq("binary: stdout redirected to a file (sha256)", (p.returncode, sha(o.read())), (0, sha(blob)))

each_write = script("eachwrite.lua", """
await(stdin:chunks():forEach(function(c) await(stdout:write(c)) end))
""")
rc, out, err = run_bytes([each_write], input=blob)
s.eq("binary: forEach + await stdout:write", (rc, sha(out)), (0, sha(blob)))

readall = script("readall.lua", """
local all = await(stdin:readAll())
print(#all, all:sub(1, 5), stdin:read())
""")
with open(blob_path, "rb") as f:
    rc, out, err = run_bytes([readall], stdin=f)
s.eq("stdin:readAll() from a file, then read() -> nil", (rc, out),
     (0, b"%d\t%s\tnil\n" % (len(blob), blob[:5])))
rc, out, err = run_bytes([readall], input=b"hello")
s.eq("stdin:readAll() from a pipe", (rc, out), (0, b"5\thello\tnil\n"))
rc, out, err = run_bytes([readall], stdin=subprocess.DEVNULL)
s.eq("stdin:readAll() from /dev/null", (rc, out), (0, b"0\t\tnil\n"))

# A script that stops reading must not wait for the end of stdin.
first = script("first.lua", "print(await(stdin:lines():take(1):collect())[1])\n")
p = subprocess.Popen([BIN, first], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
p.stdin.write(b"one\ntwo\n")
p.stdin.flush()
try:
    out, err = p.communicate(timeout=10)  # communicate closes stdin only after... it is still open now
except subprocess.TimeoutExpired:
    p.kill()
    out, err = p.communicate()
s.eq("take(1) on stdin ends the run while stdin stays open", (p.returncode, out), (0, b"one\n"))

# Reading stdin never leaves the shared pipe non-blocking (the next reader, e.g. `cat`, would fail).
r, w = os.pipe()
os.write(w, b"data\n")
os.close(w)
p = subprocess.run([BIN, lines_lua], stdin=r, capture_output=True, timeout=30)
flags = fcntl.fcntl(r, fcntl.F_GETFL)
os.close(r)
s.eq("stdin pipe is left blocking", (p.returncode, p.stdout, bool(flags & os.O_NONBLOCK)),
     (0, b"[data]\n", False))

# stdin on a TTY (a pseudo-terminal): canonical lines, Ctrl-D ends.
master, slave = pty.openpty()
p = subprocess.Popen([BIN, lines_lua], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(slave)
os.write(master, b"tty line\n")
time.sleep(0.2)
os.write(master, b"\x04")
try:
    out, err = p.communicate(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    out, err = p.communicate()
os.close(master)
s.eq("stdin on a TTY", (p.returncode, out, err), (0, b"[tty line]\n", b""))

# --- stdout: order, flush at exit, closed pipes ------------------------------

order = script("order.lua", """
print("1 print")
io.write("2 io.write\\n")
stdout:write("3 stdout:write\\n")
io.stdout:write("4 io.stdout:write\\n")
print(5, "tab")
await(stdout:write("6 awaited ", 7, "\\n"))
io.write("8 ")
stdout:write("9\\n")
""")
expected = b"1 print\n2 io.write\n3 stdout:write\n4 io.stdout:write\n5\ttab\n6 awaited 7\n8 9\n"
rc, out, err = run_bytes([order])
s.eq("print, io.write and stdout:write share one ordered output (pipe)", (rc, out, err), (0, expected, b""))
with open(out_path, "wb") as o:
    p = subprocess.run([BIN, order], stdout=o, stderr=subprocess.PIPE, timeout=30)
with open(out_path, "rb") as o:
    s.eq("... and to a file", (p.returncode, o.read()), (0, expected))

exit_flush = script("exitflush.lua", """
for i = 1, 200000 do print(i) end
stdout:write("tail\\n")
os.exit(3)
""")
rc, out, err = run_bytes([exit_flush])
lines = out.split(b"\n")
s.eq("os.exit flushes everything first", (rc, len(lines), lines[0], lines[-2]), (3, 200002, b"1", b"tail"))

proc_exit = script("procexit.lua", 'io.write("no newline") process.exit(4)\n')
rc, out, err = run_bytes([proc_exit])
s.eq("process.exit(code) flushes and exits", (rc, out, err), (4, b"no newline", b""))

for name, code in [("print loop", 'while true do print("yes") end\n'),
                   ("awaited writes", 'while true do await(stdout:write("yes\\n")) end\n'),
                   ("pipeTo(stdout)", 'await(Stream.from(function() return "yes\\n" end):pipeTo(stdout))\n')]:
    path = script("head.lua", code)
    sh = subprocess.run(["sh", "-c", '"$0" "$1" | head -1; echo "rc=$?"', BIN, path],
                        capture_output=True, timeout=30)
    p = subprocess.Popen([BIN, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first_line = p.stdout.readline()
    p.stdout.close()
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "hung"
    err = p.stderr.read()
    p.stderr.close()
    s.eq("| head -1 ends quietly with 0 (%s)" % name, (first_line, rc, err, sh.stdout),
         (b"yes\n", 0, b"", b"yes\nrc=0\n"))

# A slow reader does not stall the loop: timers keep firing while stdout is full.
slow = script("slow.lua", """
local ticks = 0
local t = setInterval(function() ticks = ticks + 1 end, 0.02)
local chunk = string.rep("z", 65536)
for i = 1, 64 do await(stdout:write(chunk)) end
await(stdout:flush())
t:stop()
stderr:write("ticks " .. ticks .. "\\n")
""")
p = subprocess.Popen([BIN, slow], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(1.0)  # do not read: the pipe fills up
got = b""
while True:
    b = p.stdout.read(1 << 16)
    if not b:
        break
    got += b
p.wait(timeout=30)
err = p.stderr.read().decode()
ticks = int(err.split()[1]) if err.startswith("ticks ") else -1
s.check("timers run while stdout waits for a slow reader (ticks=%d)" % ticks,
        p.returncode == 0 and len(got) == 64 * 65536 and ticks >= 20, err)

# --- 1 GB through stdin:lines():map(f):pipeTo(stdout) with bounded memory ---------

pipe_lua = script("pipe1g.lua", """
await(stdin:lines():map(function(l) return l .. "\\n" end):pipeTo(stdout))
""")
line = b"0123456789 the quick brown fox jumps over the lazy dog; luasync streams, bounded memory\n"
block = line * (1024 * 1024 // len(line))
total_blocks = int(os.environ.get("LUASYNC_IO_GB_BLOCKS", "1024"))
p = subprocess.Popen([BIN, pipe_lua], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def feed():
    try:
        for _ in range(total_blocks):
            p.stdin.write(block)
        p.stdin.close()
    except BrokenPipeError:
        pass


writer = threading.Thread(target=feed)
t0 = time.time()
writer.start()
h_in = hashlib.sha256()
for _ in range(total_blocks):
    h_in.update(block)
h_out = hashlib.sha256()
n_out = 0
peak_kb = 0
status_path = "/proc/%d/status" % p.pid
since = 16 << 20  # sample on the first read too
while True:
    b = p.stdout.read(1 << 20)
    if not b:
        break
    h_out.update(b)
    n_out += len(b)
    since += len(b)
    if since >= (16 << 20):
        since = 0
        try:
            with open(status_path) as f:
                for ln in f:
                    if ln.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(ln.split()[1]))
        except OSError:
            pass
writer.join()
rc = p.wait(timeout=120)
elapsed = time.time() - t0
err = p.stderr.read()
s.eq("1 GB through lines():map():pipeTo(stdout): output identical", (rc, n_out, h_out.hexdigest(), err),
     (0, len(block) * total_blocks, h_in.hexdigest(), b""))
s.check("1 GB pipe: peak RSS %d KiB < 64 MiB (%.1f s)" % (peak_kb, elapsed), 0 < peak_kb < 64 * 1024)

# --- fs errors -----------------------------------------------------------------

fs_err = script("fserr.lua", """
local ok, e = pcall(await, fs.readFile("/nonexistent-dir/x.txt"))
print(ok, e.kind, e.code, e.path)
print(e.message)
print(tostring(e))
ok, e = pcall(await, fs.list("/nonexistent-dir"))
print(e.message)
ok, e = pcall(await, fs.writeFile("/nonexistent-dir/y", "data"))
print(e.message)
ok, e = pcall(await, fs.lines("/nonexistent-dir/z"):collect())
print(e.code, e.message)
print(await(fs.exists("/nonexistent-dir")))
""")
rc, out, err = run_bytes([fs_err])
s.eq("fs errors name the path and the code", (rc, out.decode(), err), (0, (
    "false\tfs\tENOENT\t/nonexistent-dir/x.txt\n"
    "fs.readFile: /nonexistent-dir/x.txt: no such file or directory (ENOENT)\n"
    "fs.readFile: /nonexistent-dir/x.txt: no such file or directory (ENOENT)\n"
    "fs.list: /nonexistent-dir: no such file or directory (ENOENT)\n"
    "fs.writeFile: /nonexistent-dir/y: no such file or directory (ENOENT)\n"
    "ENOENT\tfs.readStream: /nonexistent-dir/z: no such file or directory (ENOENT)\n"
    "false\n"), b""))

unhandled = script("fsunhandled.lua", 'fs.readFile("/nonexistent-dir/q")\nsleep(0.05)\n')
rc, out, err = run_bytes([unhandled])
s.eq("an unhandled fs rejection exits 1", rc, 1)
s.contains("... and names the path", err.decode(), "fs.readFile: /nonexistent-dir/q: no such file or directory (ENOENT)")

# --- process ------------------------------------------------------------------

missing = script("missing.lua", """
local ok, e = pcall(await, process.exec("luasync-no-such-program", {"x"}))
print(ok, e.kind, e.code, e.cmd)
print(e.message)
ok, e = pcall(process.spawn, "luasync-no-such-program")
print(ok, e.message)
""")
rc, out, err = run_bytes([missing])
s.eq("process.exec / spawn of a missing program", (rc, out.decode()), (0, (
    "false\tprocess\tENOENT\tluasync-no-such-program\n"
    "process.exec: cannot run 'luasync-no-such-program': no such file or directory (ENOENT)\n"
    "false\tprocess.spawn: cannot run 'luasync-no-such-program': no such file or directory (ENOENT)\n")))

argv = script("argv.lua", """
local r = await(process.exec("printf", {"<%s>\\n", "a b", "c;d", "$HOME", "'q'", "*", ""}))
io.write(r.stdout)
print(r.code, r.signal, #r.stderr)
""")
rc, out, err = run_bytes([argv])
s.eq("arguments arrive literally (no shell)", (rc, out.decode()),
     (0, "<a b>\n<c;d>\n<$HOME>\n<'q'>\n<*>\n<>\n0\tnil\t0\n"))

envs = script("env.lua", """
local r = await(process.exec("sh", {"-c", 'echo "$LUASYNC_T_A|$LUASYNC_T_B"'}, {env = {LUASYNC_T_B = "b"}}))
io.write(r.stdout)
r = await(process.exec("env", {}, {clear_env = true, env = {ONLY = "1"}}))
io.write(r.stdout)
process.env.LUASYNC_T_C = "c"
r = await(process.exec("sh", {"-c", 'echo "$LUASYNC_T_C"'}))
io.write(r.stdout)
print(process.env.LUASYNC_T_A)
""")
rc, out, err = run_bytes([envs], env={"LUASYNC_T_A": "a"})
s.eq("env is added to the inherited environment; clear_env; process.env", (rc, out.decode(), err),
     (0, "a|b\nONLY=1\nc\na\n", b""))

codes = script("codes.lua", """
local r = await(process.exec("sh", {"-c", "echo out; echo err >&2; exit 7"}))
print(r.code, r.signal, r.stdout == "out\\n", r.stderr == "err\\n")
r = await(process.exec("sh", {"-c", "kill -TERM $$"}))
print(r.code, r.signal)
r = await(process.exec("cat", {}, {stdin = "fed\\0through stdin"}))
print(#r.stdout, r.stdout:sub(5))
r = await(process.exec("pwd", {}, {cwd = "/"}))
io.write(r.stdout)
""")
rc, out, err = run_bytes([codes])
s.eq("exit codes, signals, stdin, cwd", (rc, out.decode(), err),
     (0, "7\tnil\ttrue\ttrue\nnil\tSIGTERM\n17\tthrough stdin\n/\n", b""))

kill = script("kill.lua", """
local c = process.spawn("sleep", {"30"})
print(type(c.pid), c:kill())
local r = await(c:wait())
print(r.code, r.signal, c:kill())
c = process.spawn("sleep", {"30"})
c:kill("KILL")
print(await(c:wait()).signal)
c = process.spawn("sleep", {"30"})
c:kill(2)
print(await(c:wait()).signal)
local p = process.exec("sleep", {"30"})
sleep(0.05)
p:cancel()
print(pcall(await, p))
""")
t0 = time.time()
rc, out, err = run_bytes([kill])
s.eq("kill (default SIGTERM, names, numbers); cancelling exec", (rc, out.decode(), err),
     (0, "number\ttrue\nnil\tSIGTERM\tfalse\nSIGKILL\nSIGINT\nfalse\tcancelled\n", b""))
s.check("... without waiting for the sleepers", time.time() - t0 < 10)

streaming = script("streaming.lua", """
local t0 = require("luasync.core").hrtime()
local c = process.spawn("sh", {"-c", "echo first; sleep 0.6; echo second"})
await(c.stdout:lines():forEach(function(l)
  print(l, require("luasync.core").hrtime() - t0 < 0.4)
end))
print(await(c:wait()).code)
""")
rc, out, err = run_bytes([streaming])
s.eq("spawn: stdout streams while the child runs", (rc, out.decode(), err),
     (0, "first\ttrue\nsecond\tfalse\n0\n", b""))

stdin_pipe = script("stdinpipe.lua", """
local c = process.spawn("tr", {"a-z", "A-Z"})
spawn(function()
  await(Stream.from({"hello ", "world", "\\n"}):pipeTo(c.stdin))
  await(c.stdin:close())
end)
await(c.stdout:pipeTo(stdout))
print(await(c:wait()).code)
""")
rc, out, err = run_bytes([stdin_pipe])
s.eq("spawn: stdin writable, stdout piped to our stdout", (rc, out, err), (0, b"HELLO WORLD\n0\n", b""))

children = script("children.lua", """
local c = process.spawn("sleep", {"30"})
print(c.pid)
os.exit(0)
""")
rc, out, err = run_bytes([children])
pid = int(out.split()[0]) if rc == 0 and out.strip() else 0
time.sleep(0.3)
alive = False
if pid:
    try:
        with open("/proc/%d/stat" % pid) as f:
            alive = f.read().split()[2] != "Z"
    except OSError:
        alive = False
s.check("children are killed when luasync exits", pid > 0 and not alive, out)

sigs = script("sigs.lua", """
process.onSignal("SIGUSR1", function(name, num) print("got", name, num) end)
process.onSignal("SIGINT", function(name) print("handled", name) process.exit(5) end)
await(process.exec("kill", {"-USR1", tostring(process.pid)}))
sleep(0.2)
await(process.exec("kill", {"-INT", tostring(process.pid)}))
sleep(5)
print("not reached")
""")
rc, out, err = run_bytes([sigs])
s.eq("process.onSignal", (rc, out.decode()), (5, "got\tSIGUSR1\t%d\nhandled\tSIGINT\n" % signal.SIGUSR1))

# --- fs.readFile of large files, and under a memory limit ---------------------------
# Large reads go straight into blocks of memory in huge pages (src/lua/huge_blocks.cpp): a size class (20 MiB
# and a byte), a mapping of its own (40 MiB), a file with no size (/proc), an empty file.

import random  # noqa: E402
import resource  # noqa: E402

rng = random.Random(7)
for name, size in (("mid.bin", 20 * 1024 * 1024 + 1), ("large.bin", 40 * 1024 * 1024)):
    blob = rng.randbytes(size)
    with open(os.path.join(s.tmp, name), "wb") as f:
        f.write(blob)
    rc, out, err = run_bytes(["-e", 'io.write(await(fs.readFile(arg[1])))', name])
    s.eq("fs.readFile of %d bytes returns them all" % size, (rc, len(out), sha(out), err),
         (0, size, sha(blob), b""))
with open(os.path.join(s.tmp, "empty.bin"), "wb"):
    pass
rc, out, err = run_bytes(["-e", 'local e = await(fs.readFile("empty.bin")) '
                          'local p = await(fs.readFile("/proc/self/status")) '
                          'print(#e, e == "", p:match("^Name:") ~= nil)'])
s.eq("fs.readFile of an empty file and of a file with no size (/proc)", (rc, out, err), (0, b"0\ttrue\ttrue\n", b""))


def limit_address_space():
    # 400 MiB: room for this script, but not when 300 MiB of address space are reserved ahead (a build that
    # did so aborted here, in libuv, when its thread pool could not get its stacks)
    resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20))


limited = script("limited.lua", """
local parts = {}
for i = 1, 20 do parts[i] = string.rep("x", 5000000 + i) end
local d = await(fs.readFile("mid.bin"))
local done = await(process.exec("sh", {"-c", "echo child"}))
print(#parts[20], #d, done.stdout)
""")
if os.environ.get("ASAN_OPTIONS") is not None:
    print("skip under ulimit -v: AddressSanitizer reserves terabytes of address space for its shadow memory")
else:
    p = subprocess.run([BIN, limited], capture_output=True, timeout=60, cwd=s.tmp, preexec_fn=limit_address_space)
    s.eq("under ulimit -v (400 MiB): big strings, fs (thread pool) and a child process work",
         (p.returncode, p.stdout, p.stderr), (0, b"5000020\t20971521\tchild\n\n", b""))

# --- docs/io.md: ```lua blocks followed by a ```text block, and the example --------

with open(os.path.join(ROOT, "docs", "io.md")) as f:
    doc = f.read()
blocks = re.findall(r"```lua\n((?:(?!```).)*)```\n```text\n(.*?)```", doc, re.S)
s.check("docs/io.md has runnable examples", len(blocks) >= 6, "found %d" % len(blocks))
for i, (code, want) in enumerate(blocks, 1):
    for leftover in ("notes", "in.txt", "out.txt", "log.txt"):
        p = os.path.join(s.tmp, leftover)
        if os.path.isfile(p):
            os.remove(p)
    r = s.lua(code, input=b"")
    first = code.strip().splitlines()[0]
    s.eq("docs/io.md example %d (%s)" % (i, first), (r.rc, r.out, r.err), (0, want, ""), r)

wc = os.path.join(ROOT, "docs", "examples", "io_wc.lua")
rc, out, err = run_bytes([wc], input=b"one two\nthree\n")
s.eq("docs/examples/io_wc.lua", (rc, out, err), (0, b"2\t3\t14\n", b""))

s.done()
