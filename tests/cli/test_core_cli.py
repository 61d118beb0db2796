"""CLI behaviour of the luasync binary: exit codes, error output, arg, stdio."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import Suite, binary  # noqa: E402

s = Suite()

r = s.run(["-e", 'print("hi", 1 + 1)'])
s.eq("-e prints", (r.rc, r.out, r.err), (0, "hi\t2\n", ""))

r = s.lua('print(arg[0]:match("main.lua$") ~= nil, arg[1], arg[2], #arg, select("#", ...), ...)', args=["a b", "--x=1"])
s.eq("script args", r.out, "true\ta b\t--x=1\t2\t2\ta b\t--x=1\n", r)

r = s.run(["-e", "print(arg[0], arg[1], arg[2])", "x", "y"])
s.eq("-e arg[0]", r.out, "-e\tx\ty\n", r)

r = s.run(["--timeout", "5", "-e", "print(arg[1])", "--timeout"])
s.eq("options after the script belong to it", r.out, "--timeout\n", r)

r = s.run(["--timeout=5", "-e", "print('eq form')"])
s.eq("--opt=value form", (r.rc, r.out), (0, "eq form\n"), r)

for bad in ("abc", "-1", "0", "nan"):
    r = s.run(["--timeout", bad, "-e", "print('ran')"])
    s.eq("--timeout %s is a usage error naming the value" % bad, (r.rc, r.out, r.err.splitlines()[0]),
         (2, "", "--timeout: expected a number of seconds > 0, got '%s'" % bad), r)

r = s.run(["-", "q"], input=b'print("from stdin", arg[0], arg[1])')
s.eq("script from stdin", r.out, "from stdin\t-\tq\n", r)

r = s.lua("local x = = 1\n")
s.eq("syntax error exit code", r.rc, 1, r)
s.contains("syntax error names file:line", r.err, "main.lua:1:", r)

r = s.lua('local function f()\n  error("boom")\nend\nf()\n')
s.eq("runtime error exit code", r.rc, 1, r)
s.contains("runtime error file:line: message", r.err, "main.lua:2: boom", r)
s.contains("runtime error traceback", r.err, "stack traceback:", r)
s.contains("traceback names the caller", r.err, "main.lua:4:", r)

r = s.lua('local function g(n)\n  if n == 0 then error("bottom") end\n  return g(n - 1) + 1\nend\n'
          'local function h() return g(3) + 1 end\nh()\n')
s.eq("a run of the same frame prints once, then a count", (r.rc, r.err.replace(s.tmp + "/", "")),
     (1, "main.lua:2: bottom\nstack traceback:\n\tmain.lua:2: in g\n\tmain.lua:3: in g\n\t(2 more of the same)\n"
         "\tmain.lua:5: in h\n\tmain.lua:6: in main chunk\n"), r)
r = s.lua('local function f(n) return 1 + f(n + 1) end\nf(1)\n')
s.contains("stack overflow is reported", r.err, "main.lua:1: stack overflow", r)
s.check("stack overflow traceback stays short", len(r.err.splitlines()) < 10, r.err)
s.check("a deep stack keeps both ends, with the count of frames left out between",
        re.search(r"\n\t\.\.\. \(\d+ frames\)\n(.|\n)*main\.lua:2: in main chunk\n$", r.err) is not None, r.err)

r = s.lua('''
local function inner() sleep(0.01); error("deep failure") end
local task = async(function() inner() end)
local function waiter() local v = await(task()); return v end
waiter()
print("not reached")
''')
s.eq("error across await exit code", r.rc, 1, r)
s.contains("error across await message", r.err, "main.lua:2: deep failure", r)
s.contains("traceback crosses awaits", r.err, "awaited at:", r)
s.contains("awaiting frame shown", r.err, "main.lua:4:", r)
s.check("nothing after the error", "not reached" not in r.out, r)

r = s.lua('error({ code = 1 })\n')
s.eq("table error exit code", r.rc, 1, r)
s.contains("table error shows its fields", r.err, "(error object is a table value: {code = 1})", r)
r = s.lua('local t = { 1, "two\\n", nested = {}, [true] = 1 }\nfor i = 1, 20 do t["k" .. i] = i end\nerror(t)\n')
s.contains("a big table error shows the first fields, in order", r.err,
           '(error object is a table value: {1, "two\\n", [true] = 1, k1 = 1, k10 = 10, k11 = 11, k12 = 12, '
           'k13 = 13, ...})', r)
r = s.lua('go(function() error(setmetatable({ a = 1 }, { __index = function() error("strict") end })) end)\n')
s.eq("an error table whose __index raises is reported as itself", (r.rc, r.err.splitlines()[0]),
     (1, "luasync: unhandled rejection: (error object is a table value: {a = 1})"), r)
r = s.lua('error(setmetatable({}, { __tostring = function() error("broken") end }))\n')
s.eq("a failing __tostring is still an ordinary error", r.rc, 1, r)
s.contains("failing __tostring described", r.err, "whose __tostring failed", r)
r = s.lua('error(setmetatable({}, { __tostring = function() return "custom text" end }))\n')
s.contains("__tostring of an error object is used", r.err, "custom text", r)

r = s.lua('Promise.reject("nobody listens")\nsleep(0.05)\nprint("after")\n')
s.eq("unhandled rejection strict exit code", r.rc, 1, r)
s.contains("unhandled rejection reported", r.err, "unhandled rejection: nobody listens", r)
s.eq("strict stops at once", r.out, "", r)

r = s.lua('Promise.reject("nobody listens")\nsleep(0.05)\nprint("after")\n', args=[])
r = s.run(["--unhandled-rejections=warn", os.path.join(s.tmp, "main.lua")])
s.eq("unhandled rejection warn exit code", r.rc, 1, r)
s.eq("warn keeps running", r.out, "after\n", r)
s.contains("warn reports", r.err, "unhandled rejection: nobody listens", r)

r = s.lua('local p = Promise.reject("late")\np:catch(function() end)\nprint("handled")\n')
s.eq("handler attached before drain counts", (r.rc, r.out, r.err), (0, "handled\n", ""), r)

r = s.lua('local p = spawn(function() sleep(10) end)\np:cancel()\nprint(p:status())\n')
s.eq("cancelled promise is not unhandled", (r.rc, r.out, r.err), (0, "rejected\n", ""), r)

r = s.run([os.path.join(s.tmp, "does-not-exist.lua")])
s.eq("missing script exit code", r.rc, 2, r)
s.contains("missing script message", r.err, "does-not-exist.lua", r)

r = s.run(["--bogus-option", "-e", "print(1)"])
s.eq("unknown option is a usage error", r.rc, 2, r)

r = s.run([])
s.eq("no script is a usage error", r.rc, 2, r)

r = s.run(["--version"])
s.check("--version", r.rc == 0 and r.out.startswith("luasync "), r)
r = s.run(["--help"])
s.check("--help", r.rc == 0 and "usage: luasync" in r.out, r)

t0 = time.time()
r = s.run(["--timeout", "0.3", "-e", "print('start') sleep(30)"])
s.eq("--timeout exit code", r.rc, 124, r)
s.eq("--timeout keeps output", r.out, "start\n", r)
s.contains("--timeout message", r.err, "timed out after 0.3s", r)
s.contains("--timeout names what is pending", r.err, "main task waits on sleep", r)
s.check("--timeout is prompt", time.time() - t0 < 5, time.time() - t0)

r = s.lua('print("a")\nio.write("b\\n")\nos.exit(3)\nprint("never")\n')
s.eq("os.exit code and flush", (r.rc, r.out), (3, "a\nb\n"), r)
r = s.lua('print("x") os.exit(true)')
s.eq("os.exit(true)", r.rc, 0, r)
r = s.lua('os.exit(false)')
s.eq("os.exit(false)", r.rc, 1, r)

r = s.lua('print("one")\nio.write("two", "\\n")\nio.stdout:write("three\\n")\nprint("four")\n')
s.eq("print/io.write/io.stdout share one ordered output", r.out, "one\ntwo\nthree\nfour\n", r)

script = s.write("many.lua", 'for i = 1, 200000 do print("line " .. i) end\n')
p = subprocess.run("%s %s | head -1" % (binary(), script), shell=True, capture_output=True,
                   executable="/bin/bash", env=dict(os.environ, PIPESTATUS_HELPER="1"))
s.eq("| head -1 output", p.stdout, b"line 1\n")
s.eq("| head -1 is quiet", p.stderr, b"")
p = subprocess.run(["bash", "-c", "set -o pipefail; '%s' '%s' | head -1 >/dev/null" % (binary(), script)])
s.eq("| head -1 exits 0", p.returncode, 0)

r = s.lua('local ch = Promise.new(function() end)\nawait(ch)\n')
s.eq("deadlock exit code", r.rc, 2, r)
s.contains("deadlock message", r.err, "deadlock: 1 task blocked forever", r)
s.contains("deadlock location", r.err, "main.lua:2: main task waits on a promise", r)

r = s.lua('spawn(function() await(Promise.new(function() end)) end)\nprint("main done")\n')
s.eq("tasks blocked after main are abandoned", (r.rc, r.out, r.err), (0, "main done\n", ""), r)

r = s.lua('setTimeout(function() print("timer") end, 0.05)\nprint("main")\n')
s.eq("exit waits for pending timers", r.out, "main\ntimer\n", r)

os.makedirs(os.path.join(s.tmp, "lib"), exist_ok=True)
s.write("lib/helper.lua", 'return { greet = function(n) return "hello " .. n end }\n')
s.write("lib/app.lua", 'print(require("helper").greet("mod"))\n')
r = s.run([os.path.join(s.tmp, "lib", "app.lua")], cwd="/")
s.eq("require finds modules beside the script", r.out, "hello mod\n", r)

os.makedirs(os.path.join(s.tmp, "lp"), exist_ok=True)
s.write("lp/fromlp.lua", 'return 42\n')
r = s.run(["-e", 'print(require("fromlp"))'], env={"LUA_PATH": os.path.join(s.tmp, "lp", "?.lua") + ";;"})
s.eq("require honours LUA_PATH", r.out, "42\n", r)

# C modules through LUA_CPATH (API.md section 1): one in C, one in C++ that throws and catches inside (luasync
# links its own libstdc++ statically; the module must still get a working one of its own).
cmod = os.path.join(s.tmp, "cmod")
os.makedirs(cmod, exist_ok=True)
s.write("cmod/cadd.c", """#include <lua.h>
#include <lauxlib.h>
static int add(lua_State* L) { lua_pushnumber(L, luaL_checknumber(L, 1) + luaL_checknumber(L, 2)); return 1; }
int luaopen_cadd(lua_State* L) { lua_newtable(L); lua_pushcfunction(L, add); lua_setfield(L, -2, "add"); return 1; }
""")
s.write("cmod/cppcat.cpp", """extern "C" {
#include <lua.h>
#include <lauxlib.h>
}
#include <stdexcept>
#include <string>
static int cat(lua_State* L) {
  std::string text = luaL_checkstring(L, 1);
  try {
    if (text == "boom") throw std::runtime_error("boom");
  } catch (const std::exception& e) {
    text = std::string("caught ") + e.what();
  }
  text += "!";
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}
extern "C" int luaopen_cppcat(lua_State* L) {
  lua_newtable(L);
  lua_pushcfunction(L, cat);
  lua_setfield(L, -2, "cat");
  return 1;
}
""")
try:
    cflags = subprocess.run(["pkg-config", "--cflags", "luajit"], capture_output=True, text=True,
                            check=True).stdout.split()
    for compiler, src, out in (("cc", "cadd.c", "cadd.so"), ("c++", "cppcat.cpp", "cppcat.so")):
        subprocess.run([compiler, "-shared", "-fPIC", *cflags, "-o", out, src], cwd=cmod, check=True,
                       capture_output=True)
    built = True
except (OSError, subprocess.CalledProcessError) as e:
    print("skip C modules: cannot build them here (%s)" % e)
    built = False
if built:
    r = s.run(["-e", 'print(require("cadd").add(2, 3), require("cppcat").cat("x"), require("cppcat").cat("boom"))'],
              env={"LUA_CPATH": os.path.join(cmod, "?.so")})
    s.eq("require loads C and C++ modules through LUA_CPATH", (r.rc, r.out, r.err), (0, "5\tx!\tcaught boom!\n", ""), r)

copy = os.path.join(s.tmp, "bin-copy", "luasync")
os.makedirs(os.path.dirname(copy), exist_ok=True)
shutil.copy(binary(), copy)
p = subprocess.run([copy, "-e", "print(await(Promise.resolve('standalone')))"], capture_output=True, cwd="/",
                   env={k: v for k, v in os.environ.items() if k != "LUASYNC_LUA_DIR"})
s.eq("binary runs alone (modules embedded)", p.stdout, b"standalone\n")

script = s.write("sigint.lua", 'print("ready")\nio.flush()\nsleep(30)\nprint("not reached")\n')
p = subprocess.Popen([binary(), script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
line = p.stdout.readline()
p.send_signal(signal.SIGINT)
try:
    out, err = p.communicate(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    out, err = p.communicate()
s.eq("Ctrl-C exit code", p.returncode, 130, err)
s.eq("Ctrl-C output", line + out, b"ready\n")

r = s.lua('''
local gen = coroutine.wrap(function()
  for i = 1, 3 do sleep(0.001); coroutine.yield(i * 10) end
end)
print(gen(), gen(), gen())
local co = coroutine.create(function(a)
  local b = coroutine.yield(a + 1)
  await(Promise.delay(0.001))
  return b * 2
end)
print(coroutine.resume(co, 1))
print(coroutine.resume(co, 5))
print(coroutine.status(co))
''')
s.eq("await inside user coroutines", r.out, "10\t20\t30\ntrue\t2\ntrue\t10\ndead\n", r)

r = s.lua('await(42)\nprint(await("x"), await(nil))\n')
s.eq("await of non-promises", r.out, "x\tnil\n", r)

r = s.lua('local t = setmetatable({}, {__gc = function() end})\nlocal ok, e = pcall(function() return coroutine.wrap(function() return await(Promise.delay(0)) end)() end)\nprint(ok)\n')
s.eq("await in a user coroutine inside a task works", r.out, "true\n", r)

r = s.run(["-e", "local f = function() return await(Promise.resolve(1)) end print(pcall(await, Promise.delay(0)))"])
s.eq("pcall(await, p) at top level", r.out, "true\tnil\n", r)

s.done()
