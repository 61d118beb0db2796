"""Channels through the binary: deadlock reports, abandonment after main, timers
that keep a wait alive, and the channel examples in docs/examples."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite  # noqa: E402

s = Suite()
main = os.path.join(s.tmp, "main.lua")

# --- Deadlock reports (API.md section 4): exact text, exit 2 -------------------

r = s.lua('print("before")\nlocal ch = Channel.new()\nlocal v = ch:receive()\nprint("never", v)\n')
s.eq("deadlock on a receive", (r.rc, r.out, r.err),
     (2, "before\n", "deadlock: 1 task blocked forever\n  %s:3: main task waits on channel receive\n" % main), r)

r = s.lua('local ch = Channel.new(1)\nch:send(1)\nch:send(2)\n')
s.eq("deadlock on a send to a full buffer", (r.rc, r.err),
     (2, "deadlock: 1 task blocked forever\n  %s:3: main task waits on channel send\n" % main), r)

r = s.lua('''local a, b, c = Channel.new(), Channel.new(), Channel.new()
go(function()
  a:send("nobody takes this")
end)
go(function()
  local v = b:receive()
end)
local i = Channel.select({ { c, "receive" }, { a, "receive" }, { b, "send", 1 } })
''')
# The select makes a's sender and b's receiver ready, so it completes; the script
# then ends normally with nothing left blocked.
s.eq("select matches parked peers", (r.rc, r.err), (0, ""), r)

r = s.lua('''local a, b, c = Channel.new(), Channel.new(), Channel.new()
go(function()
  a:send("nobody takes this")
end)
go(function()
  local v = b:receive()
end)
local i = Channel.select({ { c, "receive" }, { c, "send", 1 } })
''')
want = ("deadlock: 3 tasks blocked forever\n"
        "  %s:3: task waits on channel send\n"
        "  %s:6: task waits on channel receive\n"
        "  %s:8: main task waits on select\n") % (main, main, main)
s.eq("deadlock lists every blocked task, oldest first", (r.rc, r.err), (2, want), r)

r = s.lua('''local ch = Channel.new()
local worker = spawn(function()
  local v = ch:receive()
  return v
end)
print(await(worker))
''')
want = ("deadlock: 2 tasks blocked forever\n"
        "  %s:3: task waits on channel receive\n"
        "  %s:6: main task waits on a promise\n") % (main, main)
s.eq("deadlock through an awaited task", (r.rc, r.err), (2, want), r)

r = s.lua('''local done = Channel.new()
for i = 1, 3 do
  go(function()
    local v = done:receive()
  end)
end
done:send("only one")
done:receive()
''')
s.contains("deadlock after partial progress: count", r.err, "deadlock: 3 tasks blocked forever\n", r)
s.eq("deadlock after partial progress: exit code", r.rc, 2, r)
s.eq("deadlock after partial progress: waits", r.err.count("task waits on channel receive"), 3, r)

# --- No false positives while something can still wake the task -----------------

r = s.lua('local v, ok = Channel.after(0.05):receive()\nprint("after fired", v, ok)\n')
s.eq("a pending Channel.after is not a deadlock", (r.rc, r.out, r.err), (0, "after fired\ttrue\ttrue\n", ""), r)

r = s.lua('''local ch = Channel.new()
go(function()
  sleep(0.05)
  ch:send("woke up")
end)
print(ch:receive())
''')
s.eq("a sleeping sender is not a deadlock", (r.rc, r.out, r.err), (0, "woke up\ttrue\n", ""), r)

r = s.lua('''local ch = Channel.new()
setTimeout(function() ch:close() end, 0.03)
print(ch:receive())
''')
s.eq("a timer that closes the channel is not a deadlock", (r.rc, r.out, r.err), (0, "nil\tfalse\n", ""), r)

r = s.lua('''local never = Channel.new()
local i, v = Channel.select({ { never, "receive" }, { Channel.after(0.03), "receive" } })
print("select timed out", i, v)
''')
s.eq("select with a timeout is not a deadlock", (r.rc, r.out, r.err), (0, "select timed out\t2\ttrue\n", ""), r)

r = s.lua('''local ch = Channel.new()
local function waiter()
  return ch:receive()
end
go(waiter)
Channel.new():receive()
''')
want = ("deadlock: 2 tasks blocked forever\n"
        "  %s:2: task waits on channel receive (in a tail call of the function defined there)\n"
        "  %s:6: main task waits on channel receive\n") % (main, main)
s.eq("a wait in a tail call names the task's function", (r.rc, r.err), (2, want), r)

# --- Tasks blocked after main finished are abandoned quietly ---------------------

r = s.lua('''local ch = Channel.new()
for i = 1, 5 do
  go(function() ch:receive() end)
end
go(function() Channel.new():send(1) end)
go(function() Channel.select({ { Channel.new(), "receive" } }) end)
print("main done")
''')
s.eq("blocked tasks abandoned after main", (r.rc, r.out, r.err), (0, "main done\n", ""), r)

s.write("main.lua", '''local ch = Channel.new()
go(function() ch:receive() end)
go(function() error("task failed") end)
''')
r = s.run(["--unhandled-rejections=warn", main])
s.eq("abandonment keeps the exit code", r.rc, 1, r)
s.contains("abandonment keeps the error report", r.err, "task failed", r)
s.check("no deadlock report after main finished", "deadlock" not in r.err, r)

# --- Channel.after: like Go's time.After, its timer alone keeps nothing alive ------

t0 = time.monotonic()
r = s.lua('''local ch = Channel.new()
go(function() sleep(0.05); ch:send("fast") end)
print(Channel.select({ { ch, "receive" }, { Channel.after(30), "receive" } }))
''')
elapsed = time.monotonic() - t0
s.eq("select with a timeout that did not fire", (r.rc, r.out, r.err), (0, "1\tfast\ttrue\n", ""), r)
s.check("a pending Channel.after does not hold the exit (%.1f s)" % elapsed, elapsed < 10, r)

r = s.lua('''print(Channel.after(0.05):receive())
local i, v = Channel.select({ { Channel.new(), "receive" }, { Channel.after(0.05), "receive" } })
print(i, v)
''')
s.eq("main waiting on Channel.after is not a deadlock", (r.rc, r.out, r.err), (0, "true\ttrue\n2\ttrue\n", ""), r)

r = s.lua('''local dummy = Channel.after(0.3)
local ch = Channel.new()
ch:receive()
''')
s.eq("deadlock reported once the pending Channel.after has fired", (r.rc, r.err),
     (2, "deadlock: 1 task blocked forever\n  %s:3: main task waits on channel receive\n" % main), r)

# --- Errors -----------------------------------------------------------------------

r = s.lua('local ch = Channel.new(1)\nch:close()\nch:send(1)\n')
s.eq("send on closed channel exit code", r.rc, 1, r)
s.contains("send on closed channel names the line", r.err, "main.lua:3: send on closed channel", r)

r = s.lua('local ch = Channel.new()\nch:close()\nch:close()\n')
s.eq("double close exit code", r.rc, 1, r)
s.contains("double close message", r.err, "main.lua:3: close of closed channel", r)

r = s.lua('''local ch = Channel.new()
go(function()
  sleep(0.01)
  ch:close()
end)
ch:send("x")
''')
s.eq("closed while sending: exit code", r.rc, 1, r)
s.contains("closed while sending: message", r.err, "main.lua:6: send on closed channel", r)

# --- --timeout names the channel wait ----------------------------------------------

s.write("main.lua", '''go(function() sleep(30) end)
local ch = Channel.new()
ch:receive()
''')
r = s.run(["--timeout", "0.2", main])
s.eq("--timeout exit code", r.rc, 124, r)
s.contains("--timeout names the receive", r.err, "%s:3: main task waits on channel receive" % main, r)

# --- The worker-pool snippet at the top of docs/channels.md ------------------------

r = s.lua('''local jobs = Channel.new(10)
local results = Channel.new()
for w = 1, 3 do
  go(function()
    for job in jobs:iter() do results:send(job * job) end
  end)
end
go(function()
  for i = 1, 5 do jobs:send(i) end
  jobs:close()
end)
local sum = 0
for _ = 1, 5 do sum = sum + results:receive() end
print(sum)
''')
s.eq("docs/channels.md worker pool", (r.rc, r.out, r.err), (0, "55\n", ""), r)

# --- Examples -----------------------------------------------------------------------

EX = os.path.join(ROOT, "docs", "examples")

r = s.run([os.path.join(EX, "channels.lua")], cwd=EX)
want = ("Producing:\t1\nProducing:\t2\nProducing:\t3\nProducing:\t4\nProducing:\t5\nProducing:\t6\n"
        "Consumer\t1\treceived:\t1\nConsumer\t1\treceived:\t2\nConsumer\t1\treceived:\t3\n"
        "Consumer\t1\treceived:\t4\nConsumer\t1\treceived:\t5\nConsumer\t1\treceived:\t6\n"
        "Producing:\t7\nProducing:\t8\nProducing:\t9\nProducing:\t10\n"
        "Consumer\t1\treceived:\t7\nConsumer\t1\treceived:\t10\nConsumer\t1\tdone\n"
        "Consumer\t2\treceived:\t8\nConsumer\t2\tdone\n"
        "Consumer\t3\treceived:\t9\nConsumer\t3\tdone\n")
s.eq("example channels.lua", (r.rc, r.out, r.err), (0, want, ""), r)

for _ in range(3):
    r = s.run([os.path.join(EX, "select.lua")], cwd=EX)
    first = ("Nothing ready, took case\t3\n"
             "Selected case\t%d\twith value\tfrom ch%d\n"
             "Then case\t%d\twith value\tfrom ch%d\n"
             "Timed out after 0.05s\n")
    s.check("example select.lua", r.rc == 0 and r.err == "" and
            r.out in (first % (1, 1, 2, 2), first % (2, 2, 1, 1)), r)

# select's random choice differs from one process to the next (as in Go): over
# 40 runs both cases win unless the odds of 2 in 2^40 strike.
code = ('local a, b = Channel.new(1), Channel.new(1)\na:send(1)\nb:send(2)\n'
        'print((Channel.select({ { a, "receive" }, { b, "receive" } })))\n')
s.write("pick.lua", code)
seen = set()
for _ in range(40):
    r = s.run([os.path.join(s.tmp, "pick.lua")])
    seen.add((r.rc, r.out))
s.eq("select is random per process", sorted(seen), [(0, "1\n"), (0, "2\n")], seen)

s.done()
