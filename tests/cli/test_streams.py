"""Streams through the binary: every example in docs/streams.md that has an
output block, docs/examples/streams.lua, the progress bar on a terminal (a pty)
and its absence on a pipe, and how a failing stream consumer is reported."""
import os
import pty
import re
import select
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite, binary  # noqa: E402

s = Suite()

# --- docs/streams.md: ```lua blocks followed by a ```text block -------------
with open(os.path.join(ROOT, "docs", "streams.md")) as f:
    doc = f.read()
blocks = re.findall(r"```lua\n(.*?)```\n```text\n(.*?)```", doc, re.S)
s.check("docs/streams.md has runnable examples", len(blocks) >= 8, "found %d" % len(blocks))
for i, (code, want) in enumerate(blocks, 1):
    r = s.lua(code)
    first = code.strip().splitlines()[0]
    s.eq("docs/streams.md example %d (%s)" % (i, first), (r.rc, r.out, r.err), (0, want, ""), r)

# --- docs/examples/streams.lua (needs luasync.fs) ---------------------------
have_fs = s.run(["-e", "print(pcall(require, 'luasync.fs'))"]).out.startswith("true")
if have_fs:
    ex = os.path.join(ROOT, "docs", "examples")
    r = s.run(["streams.lua"], cwd=ex)
    want = ("File stats:\t3\tlines,\t9\twords\n"
            "Error processing file:\tENOENT\n"
            "Pipeline:\t1\tchunk\n"
            "THE QUICK BROWN FOX\nJUMPS OVER\n\nTHE LAZY DOG\n"
            "Words:\t9\n")
    s.eq("example streams.lua", (r.rc, r.out, r.err), (0, want, ""), r)
    s.check("example streams.lua removes test.txt", not os.path.exists(os.path.join(ex, "test.txt")))
else:
    print("skip example streams.lua: luasync.fs is not built yet")

# --- progress ----------------------------------------------------------------
PROGRESS = '''
local i = 0
local src = Stream.new(function()
  i = i + 1
  if i > 20 then return nil end
  sleep(0.01)
  return i
end)
local n = await(src:progress({ label = "work", total = 20 }):count())
print("counted", n)
'''


def run_with_tty_stderr(args, cwd):
    """Runs the binary with stderr on a pty (stdout a pipe); returns rc, stdout, tty text."""
    master, slave = pty.openpty()
    p = subprocess.Popen([binary()] + args, stdout=subprocess.PIPE, stderr=slave,
                         stdin=subprocess.DEVNULL, cwd=cwd)
    os.close(slave)
    tty = b""
    while True:
        ready, _, _ = select.select([master], [], [], 10)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        tty += data
    out = p.stdout.read()
    rc = p.wait(timeout=30)
    os.close(master)
    return rc, out.decode(), tty.decode("utf-8", "replace")


main = s.write("progress.lua", PROGRESS)
rc, out, tty = run_with_tty_stderr([main], s.tmp)
s.eq("progress on a tty: values pass through", (rc, out), (0, "counted\t20\n"), tty)
frames = [f for f in tty.replace("\r\n", "\n").split("\r") if f]
last = frames[-1] if frames else ""
s.check("progress on a tty: redraws in place", tty.count("\r\x1b[K") >= 2, repr(tty))
s.check("progress on a tty: final line",
        re.fullmatch(r"\x1b\[Kwork \[#{24}\] 100% 20/20 \d+(\.\d)?/s in \d+\.\ds\n", last) is not None, repr(last))
s.check("progress on a tty: first frame at 0",
        re.match(r"\r\x1b\[Kwork \[-{24}\]   0% 0/20 ", tty) is not None, repr(tty[:80]))

r = s.run([main])
s.eq("progress on a pipe: nothing on stderr", (r.rc, r.out, r.err), (0, "counted\t20\n", ""), r)

# --- a failing consumer that nobody catches -------------------------------------
r = s.lua('''local s = Stream.from({ 1, 2, 3 }):map(function(x)
  if x == 2 then error("no twos") end
  return x
end)
await(s:forEach(print))
''')
main_lua = os.path.join(s.tmp, "main.lua")
# The mapping function is named by where it was defined: luasync called it, not user code.
want_err = ("%s:2: no twos\nstack traceback:\n\t%s:2: in <%s:1>\n  awaited at:\n\t%s:5: in main chunk\n"
            % (main_lua, main_lua, main_lua, main_lua))
s.eq("an uncaught stream error: exit 1, message and stack", (r.rc, r.out, r.err), (1, "1\n", want_err), r)

r = s.lua('''Stream.from({ 1, 2 }):mapAsync(function(x)
  sleep(0.001)
  if x == 2 then error({ kind = "custom", message = "bad item" }) end
  return x
end):forEach(function() end)
''')
s.eq("an unhandled stream rejection: exit 1", r.rc, 1, r)
s.contains("an unhandled stream rejection names the error", r.err, "luasync: unhandled rejection: custom: bad item\n", r)

s.done()
