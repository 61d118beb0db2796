"""Black-box tests of the HTTP module's lifetime rules (API.md sections 1 and 7): exiting with transfers in
flight (normal end, os.exit, an error, Ctrl-C, SIGTERM, --timeout) cleans up without a crash or open handles;
an in-flight transfer keeps the loop alive; an idle connection does not.

Runs $LUASYNC_BIN as a subprocess against tests/fixtures/http_server.py; stdlib only. Prints "N passed, N failed".
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite, binary  # noqa: E402

s = Suite()
BIN = binary()
ENV = {"LUASYNC_DEBUG_HANDLES": "1"}  # the runtime prints any libuv handle still open at exit

server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fixtures", "http_server.py"), "--port", "0"],
                          stdout=subprocess.PIPE)
port = int(server.stdout.readline())
BASE = "http://127.0.0.1:%d" % port


def lua(code, **kw):
    env = dict(ENV)
    env.update(kw.pop("env", {}))
    t0 = time.monotonic()
    r = s.lua("local BASE = %r\n%s" % (BASE, code), env=env, **kw)
    r.elapsed = time.monotonic() - t0
    return r


def clean_exit(name, r, rc, err=""):
    s.eq(name + ": exit code", r.rc, rc, r)
    s.check(name + ": no handle left open", "handles still open" not in r.err, r)
    if err is not None:
        s.eq(name + ": stderr", r.err, err)


def interrupt(code, sig, after):
    """Starts a script, waits for its first output line, sends sig, returns the Result."""
    path = s.write("sig.lua", "local BASE = %r\n%s" % (BASE, code))
    env = dict(os.environ)
    env.update(ENV)
    p = subprocess.Popen([BIN, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=s.tmp)
    first = p.stdout.readline()
    time.sleep(after)
    p.send_signal(sig)
    out, err = p.communicate(timeout=20)

    class R:
        pass
    r = R()
    r.rc, r.out, r.err = p.returncode, (first + out).decode(), err.decode()
    return r


try:
    # --- libcurl loading on its own thread while the script ends (src/http/curl_preload.cpp) ------------
    for i in range(8):
        r = lua("local h = http\nos.exit(4)")
        clean_exit("os.exit while libcurl may still be loading (%d)" % i, r, 4)
        r = lua("print(type(fetch), type(llm))")
        clean_exit("normal end while libcurl may still be loading (%d)" % i, r, 0)
        s.eq("normal end while libcurl may still be loading (%d): output" % i, r.out, "function\ttable\n")
    r = lua("-- no fetch, no llm here\nerror('plain')")
    s.eq("an error while libcurl may still be loading: exit code", r.rc, 1, r)
    s.check("an error while libcurl may still be loading: message", "plain" in r.err, r)

    # --- ending the script with transfers in flight -------------------------------------------------
    r = lua("""
for i = 1, 50 do http.get(BASE .. "/hang") end
for i = 1, 50 do http.get(BASE .. "/slow?chunks=100&delay=0.01") end
local big = await(http.request { url = BASE .. "/bytes/20000000", stream = true })
sleep(0.2)
print("exiting", big.status)
os.exit(3)
""")
    clean_exit("os.exit with 101 transfers in flight", r, 3)
    s.eq("os.exit: output flushed", r.out, "exiting\t200\n")

    r = lua("""
http.get(BASE .. "/hang")
http.post(BASE .. "/echo", Stream.from(function() sleep(0.05) return "x" end))
sleep(0.1)
error("boom")
""")
    clean_exit("uncaught error with transfers in flight", r, 1, None)
    s.contains("uncaught error: reported", r.err, "main.lua:6: boom")

    r = lua("""
local res = await(http.request { url = BASE .. "/bytes/30000000", stream = true })
print(res.status, #res.body:read() > 0)
""", timeout=20)
    clean_exit("main ends with a paused streamed response", r, 0)
    s.eq("paused stream: output", r.out, "200\ttrue\n")

    r = lua("""
http.get(BASE .. "/slow?chunks=3&delay=0.2"):andThen(function(res) print("late", res.status, #res.body) end)
print("main done")
""")
    clean_exit("an unawaited transfer keeps the process alive until it ends", r, 0)
    s.eq("unawaited transfer: output", r.out, "main done\nlate\t200\t24\n")

    r = lua("""
local res = await(http.get(BASE .. "/slow?chunks=4&delay=0.25"))
print(res.status, #res.body)
""")
    clean_exit("waiting a second for a response is not a deadlock", r, 0)
    s.eq("slow response: output", r.out, "200\t32\n")

    r = lua("""
for i = 1, 3 do assert(await(http.get(BASE .. "/small")).status == 200) end
print("done")
""")
    clean_exit("idle keep-alive connections do not keep the process alive", r, 0)
    s.check("idle connections: exits at once (%.2fs)" % r.elapsed, r.elapsed < 3, r)

    r = lua("""
http.get("http://127.0.0.1:1/x")
""")
    clean_exit("a failed unawaited request is an unhandled rejection", r, 1, None)
    s.contains("unhandled rejection: message", r.err, "luasync: unhandled rejection: GET http://127.0.0.1:1/x: ")

    path = s.write("timeout.lua", "local BASE = %r\nawait(http.get(BASE .. '/hang'))\n" % BASE)
    r = s.run(["--timeout", "0.3", path], env=ENV, timeout=20)
    clean_exit("--timeout with a transfer in flight", r, 124, None)
    s.contains("--timeout: names the wait", r.err, "luasync: timed out after 0.3s")

    r = interrupt("""
for i = 1, 20 do http.get(BASE .. "/hang") end
local res = await(http.request { url = BASE .. "/slow?chunks=100&delay=0.05", stream = true })
print("ready")
for c in res.body:iter() do end
""", signal.SIGINT, 0.2)
    clean_exit("Ctrl-C with transfers in flight", r, 130, None)
    s.eq("Ctrl-C: output", r.out, "ready\n")

    # --- docs/http.md: every ```lua block followed by a ```text block prints exactly that text ----------
    with open(os.path.join(ROOT, "docs", "http.md"), encoding="utf-8") as f:
        pairs = re.findall(r"```lua\n(.*?)```\n```text\n(.*?)```", f.read(), re.S)
    s.check("docs/http.md has examples", len(pairs) >= 8, "found %d" % len(pairs))
    for i, (code, want) in enumerate(pairs, 1):
        r = lua(code)
        s.eq("docs/http.md example %d" % i, (r.rc, r.out, r.err), (0, want, ""), code)

    # --- proxies from the environment (curl's variables) -------------------------------------------------
    # The test server, named as the proxy, receives the request for another host (never resolved). Without
    # any proxy variable luasync tells curl "no proxy" once instead of letting it read them per transfer.
    proxied = 'local r = await(http.get("http://proxied.invalid/echo?x=1"))\n' \
              'local j = json.decode(r.body)\nprint(r.status, j.path, j.query, j.headers.host)'
    for var in ("http_proxy", "all_proxy", "ALL_PROXY"):
        r = lua(proxied, env={var: BASE})
        s.eq("%s is honoured" % var, (r.rc, r.out, r.err), (0, "200\t/echo\tx=1\tproxied.invalid\n", ""), r)
    r = lua('local r = await(http.get(BASE .. "/echo"))\nprint(r.status, json.decode(r.body).path)',
            env={"http_proxy": "", "all_proxy": ""})
    s.eq("empty proxy variables are unset", (r.rc, r.out), (0, "200\t/echo\n"), r)

    # --- a child process gets none of the client's sockets (libcurl opens them without close-on-exec) -------
    r = lua("""
local r = await(http.get(BASE .. "/small"))  -- the connection stays open, kept alive
local out = await(require("luasync.process").exec("ls", { "/proc/self/fd" }))
print(r.status, (out.stdout:gsub("\\n", " ")))
""")
    s.eq("a child inherits only its stdio (and ls its own listing's fd)", (r.rc, r.out, r.err),
         (0, "200\t0 1 2 3 \n", ""), r)

    # --- busy-waiting for quick responses (src/http/spin_policy.h, docs/http.md) --------------------------
    stats = """
for i = 1, 3 do assert(await(http.get(BASE .. "/small")).status == 200) end
local st = http._stats()
-- (a response curl reads in the callback that sent its request ends no wait: the connect's does)
print(st.spin_hits >= 1 and st.spin_misses == 0, st.spin_waits > 0, st.spin_iterations > 0)
"""
    r = lua(stats, env={"LUASYNC_HTTP_SPIN_US": "500000"})
    s.eq("LUASYNC_HTTP_SPIN_US=500000: the loop spins for the fixture's answers", (r.rc, r.out, r.err),
         (0, "true\ttrue\ttrue\n", ""), r)
    r = lua(stats, env={"LUASYNC_HTTP_SPIN_US": "0"})
    s.eq("LUASYNC_HTTP_SPIN_US=0: the loop never spins", (r.rc, r.out, r.err), (0, "false\tfalse\tfalse\n", ""), r)
    for bad in ("fast", "-1", "1000001", "12us"):
        r = lua('local ok, e = pcall(http.get, BASE .. "/small")\nprint(ok, e)', env={"LUASYNC_HTTP_SPIN_US": bad})
        s.eq("LUASYNC_HTTP_SPIN_US=%s is refused by name" % bad, (r.rc, r.out, r.err),
             (0, 'false\thttp.get: LUASYNC_HTTP_SPIN_US must be a whole number of microseconds from 0 to 1000000, '
                 'got "%s"\n' % bad, ""), r)

    r = interrupt("""
http.get(BASE .. "/hang")
print("ready")
await(http.get(BASE .. "/hang"))
""", signal.SIGTERM, 0.1)
    clean_exit("SIGTERM with transfers in flight", r, 143, None)
finally:
    server.kill()
    server.wait()

s.done()
