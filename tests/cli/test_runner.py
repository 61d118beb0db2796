#!/usr/bin/env python3
"""Black-box tests of `luasync test` (API.md section 9, docs/testing.md).

Writes small spec files into a temp dir, runs the built binary (env LUASYNC_BIN)
on them and checks exact stdout, exit codes, TAP text and JUnit XML.
"""
import os
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import Suite, binary  # noqa: E402

s = Suite()
ENV = {"NO_COLOR": "1", "LUASYNC_CHECK_LEAKS": ""}


def run(*args, env=None, timeout=60):
    e = dict(ENV)
    e.update(env or {})
    return s.run(["test"] + list(args), env=e, timeout=timeout)


# --- passing, failing, pending ------------------------------------------------

s.write("pass_spec.lua", """\
describe("math", function()
  it("adds", function() assert.equals(2, 1 + 1) end)
  it("compares tables deeply", function() assert.same({ 1, { a = "x" } }, { 1, { a = "x" } }) end)
  it("truthy and falsy", function()
    assert.truthy(0); assert.falsy(nil); assert.falsy(false); assert.is_nil(nil)
  end)
end)
""")
r = run("pass_spec.lua")
s.eq("pass: stdout", r.out,
     "pass_spec.lua\n"
     "  PASS  math > adds\n"
     "  PASS  math > compares tables deeply\n"
     "  PASS  math > truthy and falsy\n"
     "\n3 passed, 0 failed\n", r)
s.eq("pass: exit 0", r.rc, 0, r)
s.eq("pass: no stderr", r.err, "", r)

s.write("fail_spec.lua", """\
describe("users", function()
  it("counts", function()
    assert.equals(3, 1 + 1)
  end)
  it("lists", function()
    local list = { { name = "x" }, { name = "b" } }
    assert.same({ { name = "x" }, { name = "a" } }, list)
  end)
  it("passes", function() end)
  pending("later")
  it("has no body yet")
end)
""")
r = run("fail_spec.lua")
s.eq("fail: stdout", r.out,
     "fail_spec.lua\n"
     "  FAIL  users > counts\n"
     "        fail_spec.lua:3: expected 3, got 2\n"
     "  FAIL  users > lists\n"
     "        fail_spec.lua:7: at [2].name: expected \"a\", got \"b\"\n"
     "        expected: {{name = \"x\"}, {name = \"a\"}}\n"
     "        actual:   {{name = \"x\"}, {name = \"b\"}}\n"
     "  PASS  users > passes\n"
     "  SKIP  users > later\n"
     "  SKIP  users > has no body yet\n"
     "\n"
     "Failed:\n"
     "  fail_spec.lua: users > counts\n"
     "  fail_spec.lua: users > lists\n"
     "\n1 passed, 2 failed, 2 skipped\n", r)
s.eq("fail: exit 1", r.rc, 1, r)

r = run("fail_spec.lua", "--filter", "passes|later")
s.eq("filter: no match at all is 0/0", (r.out, r.rc), ("\n0 passed, 0 failed\n", 0), r)

# --- assertion messages --------------------------------------------------------

s.write("asserts_spec.lua", """\
describe("a", function()
  it("equals strings", function() assert.equals("a\\nb", "a") end)
  it("equals tables", function() assert.equals({ 1 }, { 1 }) end)
  it("same root", function() assert.same(1, "1") end)
  it("same missing key", function() assert.same({ x = 1, y = 2 }, { x = 1 }) end)
  it("same extra key", function() assert.same({ 1 }, { 1, 2 }) end)
  it("same nested key", function() assert.same({ a = { ["b c"] = { 1 } } }, { a = { ["b c"] = { 2 } } }) end)
  it("truthy", function() assert.truthy(nil) end)
  it("falsy", function() assert.falsy(0) end)
  it("is_nil", function() assert.is_nil("x") end)
  it("has_error none", function() assert.has_error(function() end) end)
  it("has_error text", function() assert.has_error(function() error("boom") end, "bang") end)
  it("has_error ok", function()
    local e = assert.has_error(function() error({ code = 7 }) end)
    assert.equals(7, e.code)
    assert.has_error(function() error("the boom") end, "boom")
  end)
  it("rejects fulfilled", function() assert.rejects(Promise.resolve(5)) end)
  it("rejects text", function() assert.rejects(function() return Promise.reject("nope") end, "yes") end)
  it("rejects ok", function()
    local e = assert.rejects(function() sleep(0.001); error("late") end, "late")
    assert.truthy(tostring(e):find("late", 1, true))
    assert.rejects(Promise.reject("x"), "x")
  end)
  it("message arg", function() assert.equals(1, 2, "ids differ") end)
  it("helper line", function()
    local function check(v) assert.equals(1, v) end
    check(2)
  end)
  it("plain error", function() error("plain") end)
  it("error table", function() error({ kind = "io", message = "disk" }) end)
  it("lua assert", function() assert(false, "classic") end)
end)
""")
r = run("asserts_spec.lua")
want = [
    "  FAIL  a > equals strings",
    "        asserts_spec.lua:2: expected \"a\\nb\", got \"a\"",
    "  FAIL  a > equals tables",
    "        asserts_spec.lua:3: expected {1}, got {1}",
    "        the tables are deeply equal but not the same table (use assert.same)",
    "  FAIL  a > same root",
    "        asserts_spec.lua:4: expected 1, got \"1\"",
    "  FAIL  a > same missing key",
    "        asserts_spec.lua:5: at y: expected 2, got nil",
    "        expected: {x = 1, y = 2}",
    "        actual:   {x = 1}",
    "  FAIL  a > same extra key",
    "        asserts_spec.lua:6: at [2]: expected nil, got 2",
    "        expected: {1}",
    "        actual:   {1, 2}",
    "  FAIL  a > same nested key",
    "        asserts_spec.lua:7: at a[\"b c\"][1]: expected 1, got 2",
    "        expected: {a = {[\"b c\"] = {1}}}",
    "        actual:   {a = {[\"b c\"] = {2}}}",
    "  FAIL  a > truthy",
    "        asserts_spec.lua:8: expected a truthy value, got nil",
    "  FAIL  a > falsy",
    "        asserts_spec.lua:9: expected a falsy value, got 0",
    "  FAIL  a > is_nil",
    "        asserts_spec.lua:10: expected nil, got \"x\"",
    "  FAIL  a > has_error none",
    "        asserts_spec.lua:11: expected an error, got none",
    "  FAIL  a > has_error text",
    "        asserts_spec.lua:12: expected an error containing \"bang\", got \"asserts_spec.lua:12: boom\"",
    "  PASS  a > has_error ok",
    "  FAIL  a > rejects fulfilled",
    "        asserts_spec.lua:18: expected a rejection, got fulfilled with 5",
    "  FAIL  a > rejects text",
    "        asserts_spec.lua:19: expected a rejection containing \"yes\", got \"nope\"",
    "  PASS  a > rejects ok",
    "  FAIL  a > message arg",
    "        asserts_spec.lua:25: ids differ: expected 1, got 2",
    "  FAIL  a > helper line",
    "        asserts_spec.lua:27: expected 1, got 2",
    "  FAIL  a > plain error",
    "        asserts_spec.lua:30: plain",
    "  FAIL  a > error table",
    "        asserts_spec.lua:31: io: disk",
    "  FAIL  a > lua assert",
    "        asserts_spec.lua:32: classic",
]
got = r.out.split("\n")[1:1 + len(want)]
for w, g in zip(want, got):
    s.eq("assert message: " + w.strip()[:50], g, w)
s.eq("asserts: line count", len(got), len(want), r)
s.check("asserts: final line", r.out.endswith("\n2 passed, 18 failed\n"), r)

# --- hooks order ----------------------------------------------------------------

s.write("hooks_spec.lua", """\
local function say(s) return function() print(s) end end
setup(say("setup file"))
teardown(say("teardown file"))
describe("outer", function()
  setup(say("setup outer"))
  teardown(say("teardown outer"))
  before_each(say("before_each outer 1"))
  before_each(say("before_each outer 2"))
  after_each(say("after_each outer"))
  it("one", say("it one"))
  describe("inner", function()
    setup(function() sleep(0.001); print("setup inner") end)
    teardown(say("teardown inner"))
    before_each(function() sleep(0.001); print("before_each inner") end)
    after_each(say("after_each inner"))
    it("two", function() print("it two"); error("two failed") end)
  end)
  it("three", say("it three"))
end)
""")
r = run("hooks_spec.lua")
s.eq("hooks: order", r.out,
     "setup file\n"
     "setup outer\n"
     "before_each outer 1\n"
     "before_each outer 2\n"
     "it one\n"
     "after_each outer\n"
     "hooks_spec.lua\n"
     "  PASS  outer > one\n"
     "setup inner\n"
     "before_each outer 1\n"
     "before_each outer 2\n"
     "before_each inner\n"
     "it two\n"
     "after_each inner\n"
     "after_each outer\n"
     "  FAIL  outer > inner > two\n"
     "        hooks_spec.lua:16: two failed\n"
     "teardown inner\n"
     "before_each outer 1\n"
     "before_each outer 2\n"
     "it three\n"
     "after_each outer\n"
     "  PASS  outer > three\n"
     "teardown outer\n"
     "teardown file\n"
     "\nFailed:\n  hooks_spec.lua: outer > inner > two\n"
     "\n2 passed, 1 failed\n", r)

r = run("hooks_spec.lua", "--filter", "three")
s.eq("hooks: filter skips blocks with no selected test", r.out,
     "setup file\nsetup outer\nbefore_each outer 1\nbefore_each outer 2\nit three\nafter_each outer\n"
     "hooks_spec.lua\n  PASS  outer > three\nteardown outer\nteardown file\n\n1 passed, 0 failed\n", r)

s.write("hookerr_spec.lua", """\
local ran = {}
describe("be", function()
  before_each(function() error("be boom") end)
  after_each(function() ran.after_each = true end)
  it("t", function() ran.body = true end)
end)
describe("ae", function()
  after_each(function() error("ae boom") end)
  it("t", function() end)
  it("t2", function() error("body boom") end)
end)
describe("setup", function()
  setup(function() error("setup boom") end)
  teardown(function() ran.teardown = true end)
  it("t1", function() end)
  describe("nested", function() it("t2", function() end) end)
end)
describe("td", function()
  teardown(function() error("td boom") end)
  it("t", function() end)
end)
it("check", function()
  assert.is_nil(ran.body)
  assert.is_true(ran.after_each)
  assert.is_nil(ran.teardown)
end)
""")
r = run("hookerr_spec.lua")
s.eq("hook errors: stdout", r.out,
     "hookerr_spec.lua\n"
     "  FAIL  be > t\n"
     "        hookerr_spec.lua:3: before_each failed: be boom\n"
     "  FAIL  ae > t\n"
     "        hookerr_spec.lua:8: after_each failed: ae boom\n"
     "  FAIL  ae > t2\n"
     "        hookerr_spec.lua:10: body boom\n"
     "        also: hookerr_spec.lua:8: after_each failed: ae boom\n"
     "  FAIL  setup > t1\n"
     "        hookerr_spec.lua:13: setup failed: setup boom\n"
     "  FAIL  setup > nested > t2\n"
     "        hookerr_spec.lua:13: setup failed: setup boom\n"
     "  PASS  td > t\n"
     "  FAIL  td (teardown)\n"
     "        hookerr_spec.lua:19: teardown failed: td boom\n"
     "  PASS  check\n"
     "\n"
     "Failed:\n"
     "  hookerr_spec.lua: be > t\n"
     "  hookerr_spec.lua: ae > t\n"
     "  hookerr_spec.lua: ae > t2\n"
     "  hookerr_spec.lua: setup > t1\n"
     "  hookerr_spec.lua: setup > nested > t2\n"
     "  hookerr_spec.lua: td (teardown)\n"
     "\n2 passed, 6 failed\n", r)
s.eq("hook errors: exit 1", r.rc, 1, r)

# --- async, timeout, deadlock, unhandled rejection -------------------------------

s.write("async_spec.lua", """\
describe("async", function()
  it("sleeps", function()
    local t0 = os.clock()
    sleep(0.02)
    assert.truthy(true)
  end)
  it("awaits a promise", function()
    local p = Promise.new(function(res) setTimeout(function() res(42) end, 0.01) end)
    assert.equals(42, await(p))
  end)
  it("fails after awaiting", function()
    sleep(0.001)
    assert.equals("late", await(Promise.delay(0.001, "early")))
  end)
  it("returns a promise", async(function() sleep(0.001) end))
  it("hangs", function() sleep(30) end)
  it("deadlocks", function()
    local never = Promise.new(function() end)
    await(never)
  end)
  it("deadlocks in a child task", function()
    await(spawn(function() await(Promise.new(function() end)) end))
  end)
  it("rejects in the background", function()
    go(function() sleep(0.001); error("background boom") end)
    sleep(0.01)
  end)
  it("rejects unhandled synchronously", function()
    local p = Promise.reject("sync reject")
  end)
  it("still runs", function() sleep(0.001) end)
end)
""")
t0 = time.time()
r = run("async_spec.lua", "--test-timeout", "1")
elapsed = time.time() - t0
s.eq("async: stdout", r.out,
     "async_spec.lua\n"
     "  PASS  async > sleeps\n"
     "  PASS  async > awaits a promise\n"
     "  FAIL  async > fails after awaiting\n"
     "        async_spec.lua:13: expected \"late\", got \"early\"\n"
     "  PASS  async > returns a promise\n"
     "  FAIL  async > hangs\n"
     "        timed out after 1s\n"
     "        async_spec.lua:16: task waits on sleep\n"
     "  FAIL  async > deadlocks\n"
     "        deadlock: 1 task blocked forever\n"
     "        async_spec.lua:19: task waits on a promise\n"
     "  FAIL  async > deadlocks in a child task\n"
     "        deadlock: 2 tasks blocked forever\n"
     "        async_spec.lua:22: task waits on a promise\n"
     "        async_spec.lua:22: task waits on a promise\n"
     "  FAIL  async > rejects in the background\n"
     "        async_spec.lua:25: unhandled rejection: background boom\n"
     "  FAIL  async > rejects unhandled synchronously\n"
     "        async_spec.lua:29: unhandled rejection: sync reject\n"
     "  PASS  async > still runs\n"
     "\n"
     "Failed:\n"
     "  async_spec.lua: async > fails after awaiting\n"
     "  async_spec.lua: async > hangs\n"
     "  async_spec.lua: async > deadlocks\n"
     "  async_spec.lua: async > deadlocks in a child task\n"
     "  async_spec.lua: async > rejects in the background\n"
     "  async_spec.lua: async > rejects unhandled synchronously\n"
     "\n4 passed, 6 failed\n", r)
s.eq("async: exit 1", r.rc, 1, r)
s.eq("async: no stderr", r.err, "", r)
s.check("async: timeout and deadlocks take well under the 30s sleep (%.2fs)" % elapsed, elapsed < 10)

r = run("async_spec.lua", "--filter", "deadlocks$")
s.check("deadlock: found without waiting for the 5s default timeout",
        r.rc == 1 and "deadlock: 1 task blocked forever" in r.out and r.out.endswith("0 passed, 1 failed\n"), r)

s.write("timeout_hook_spec.lua", """\
describe("slow hook", function()
  before_each(function() sleep(30) end)
  it("t", function() end)
end)
""")
r = run("timeout_hook_spec.lua", "--test-timeout", "0.2")
s.contains("timeout in a hook", r.out,
           "  FAIL  slow hook > t\n        before_each failed: timed out after 0.2s\n")

# --- leaks -----------------------------------------------------------------------

s.write("leak_spec.lua", """\
describe("leaks", function()
  it("interval", function() setInterval(function() end, 0.01) end)
  it("task", function() go(function() await(Promise.new(function() end)) end) end)
  it("clean", function() local t = setTimeout(function() end, 1); t:stop(); sleep(0.001) end)
end)
""")
t0 = time.time()
r = run("leak_spec.lua", timeout=20)
s.eq("leaks: not checked by default, and a live interval does not keep the run alive",
     (r.rc, r.out.splitlines()[-1]), (0, "3 passed, 0 failed"), r)
r = run("leak_spec.lua", env={"LUASYNC_CHECK_LEAKS": "1"}, timeout=20)
s.eq("leaks: LUASYNC_CHECK_LEAKS=1", r.out,
     "leak_spec.lua\n"
     "  FAIL  leaks > interval\n"
     "        left a timer running\n"
     "  FAIL  leaks > task\n"
     "        left 1 task parked\n"
     "        leak_spec.lua:3: task waits on a promise\n"
     "  PASS  leaks > clean\n"
     "\nFailed:\n  leak_spec.lua: leaks > interval\n  leak_spec.lua: leaks > task\n"
     "\n1 passed, 2 failed\n", r)

# --- load errors, several files, folders ---------------------------------------------

s.write("suite/a_spec.lua", 'it("a", function() end)\n')
s.write("suite/b_spec.lua", 'describe("b", function()\n  it("x", function() end)\n  error("in describe")\nend)\n')
s.write("suite/c_spec.lua", 'it("c" function() end)\n')
s.write("suite/sub/d_test.lua", 'it("d", function() end)\n')
s.write("suite/helper.lua", 'error("not a test file")\n')
r = run("suite")
s.eq("load errors: reported per file, the run goes on", r.out,
     "suite/a_spec.lua\n"
     "  PASS  a\n"
     "suite/b_spec.lua\n"
     "  FAIL  suite/b_spec.lua (load)\n"
     "        suite/b_spec.lua:3: cannot load: in describe\n"
     "suite/c_spec.lua\n"
     "  FAIL  suite/c_spec.lua (load)\n"
     "        suite/c_spec.lua:1: cannot load: ')' expected near 'function'\n"
     "suite/sub/d_test.lua\n"
     "  PASS  d\n"
     "\nFailed:\n"
     "  suite/b_spec.lua: suite/b_spec.lua (load)\n"
     "  suite/c_spec.lua: suite/c_spec.lua (load)\n"
     "\n2 passed, 2 failed\n", r)
s.eq("load errors: exit 1", r.rc, 1, r)

s.write("nested_spec.lua", """\
describe("x", function()
  it("calls it inside it", function() it("y", function() end) end)
end)
""")
r = run("nested_spec.lua")
s.contains("it inside it is an error", r.out,
           "nested_spec.lua:2: it() cannot be called while tests run\n")

r = run("no_such_dir")
s.eq("missing path: exit 2", r.rc, 2, r)

# --- --filter ----------------------------------------------------------------------

s.write("filter_spec.lua", """\
describe("api", function()
  it("get user", function() end)
  it("get users (all)", function() end)
  it("delete user", function() error("no") end)
end)
""")
r = run("filter_spec.lua", "--filter", "^api > get")
s.eq("filter: Lua pattern on the full name", r.out,
     "filter_spec.lua\n  PASS  api > get user\n  PASS  api > get users (all)\n\n2 passed, 0 failed\n", r)
s.eq("filter: exit 0 when the selected tests pass", r.rc, 0, r)
r = run("filter_spec.lua", "--filter", "users (all")
s.eq("filter: plain text first ('(' is not a pattern here)", r.out,
     "filter_spec.lua\n  PASS  api > get users (all)\n\n1 passed, 0 failed\n", r)

# --- TAP -----------------------------------------------------------------------------

r = run("--reporter", "tap", "fail_spec.lua", "pass_spec.lua")
s.eq("tap: text", r.out,
     "TAP version 13\n"
     "# fail_spec.lua\n"
     "not ok 1 - users > counts\n"
     "  ---\n"
     "  message: \"expected 3, got 2\"\n"
     "  at: \"fail_spec.lua:3\"\n"
     "  ...\n"
     "not ok 2 - users > lists\n"
     "  ---\n"
     "  message: \"at [2].name: expected \\\"a\\\", got \\\"b\\\"\"\n"
     "  at: \"fail_spec.lua:7\"\n"
     "  details: |\n"
     "    expected: {{name = \"x\"}, {name = \"a\"}}\n"
     "    actual:   {{name = \"x\"}, {name = \"b\"}}\n"
     "  ...\n"
     "ok 3 - users > passes\n"
     "ok 4 - users > later # SKIP pending\n"
     "ok 5 - users > has no body yet # SKIP pending\n"
     "# pass_spec.lua\n"
     "ok 6 - math > adds\n"
     "ok 7 - math > compares tables deeply\n"
     "ok 8 - math > truthy and falsy\n"
     "# 4 passed, 2 failed, 2 skipped\n"
     "1..8\n", r)
s.eq("tap: exit 1", r.rc, 1, r)

# --- JUnit ---------------------------------------------------------------------------

s.write("xml_spec.lua", """\
describe("esc <&> \\"q\\" 'a'", function()
  it("ctrl \\1 and bad utf8 \\255 and é", function() error("msg with <tags> & \\"quotes\\"\\nline2") end)
  it("fine", function() end)
  pending("todo")
end)
""")
out = os.path.join(s.tmp, "report.xml")
r = run("--reporter=junit", "--output", out, "xml_spec.lua", "pass_spec.lua")
s.eq("junit --output: nothing on stdout, exit 1", (r.out, r.rc), ("", 1), r)
try:
    root = ET.parse(out).getroot()
except Exception as e:  # noqa: BLE001
    root = None
    s.check("junit: parses", False, repr(e))
if root is not None:
    s.eq("junit: root", (root.tag, root.get("tests"), root.get("failures"), root.get("skipped")),
         ("testsuites", "6", "1", "1"))
    suites = root.findall("testsuite")
    s.eq("junit: one suite per file", [x.get("name") for x in suites], ["xml_spec.lua", "pass_spec.lua"])
    s.eq("junit: suite counts", [(x.get("tests"), x.get("failures"), x.get("skipped")) for x in suites],
         [("3", "1", "1"), ("3", "0", "0")])
    cases = suites[0].findall("testcase")
    s.eq("junit: classnames", {c.get("classname") for c in cases}, {"xml_spec"})
    s.eq("junit: names escaped and sanitised", [c.get("name") for c in cases],
         ["esc <&> \"q\" 'a' > ctrl \ufffd and bad utf8 \ufffd and \u00e9",
          "esc <&> \"q\" 'a' > fine", "esc <&> \"q\" 'a' > todo"])
    fail = cases[0].find("failure")
    s.check("junit: failure element", fail is not None)
    if fail is not None:
        s.eq("junit: failure message", fail.get("message"),
             "xml_spec.lua:2: msg with <tags> & \"quotes\"\nline2")
        s.contains("junit: failure text", fail.text, "msg with <tags> & \"quotes\"\nline2")
    s.check("junit: skipped element", cases[2].find("skipped") is not None and cases[1].find("*") is None)
    s.check("junit: times are numbers", all(float(c.get("time")) >= 0 for c in root.iter("testcase")))

r = run("--reporter", "junit", "pass_spec.lua")
try:
    root = ET.fromstring(r.out)
    s.eq("junit on stdout: all passed", (root.get("tests"), root.get("failures"), r.rc), ("3", "0", 0), r)
except ET.ParseError as e:
    s.check("junit on stdout parses", False, "%r\n%r" % (e, r))

r = run("--output", os.path.join(s.tmp, "report.txt"), "pass_spec.lua")
with open(os.path.join(s.tmp, "report.txt")) as f:
    s.eq("text --output: written to the file", (r.out, f.read().splitlines()[-1]), ("", "3 passed, 0 failed"), r)

# --- colour only on a terminal, and not with NO_COLOR --------------------------------

def run_tty(env):
    import pty
    import subprocess
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.update(env)
    p = subprocess.Popen([binary(), "test", "pass_spec.lua"],
                         stdout=slave, stderr=slave, env=e, cwd=s.tmp)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    p.wait(timeout=30)
    os.close(master)
    return b"".join(chunks).decode()

if os.path.exists(binary()):
    tty = run_tty({"NO_COLOR": ""})
    s.contains("colour on a tty", tty, "\x1b[32mPASS\x1b[0m  math > adds")
    s.contains("colour on a tty: final line plain", tty, "\r\n3 passed, 0 failed\r\n")
    tty = run_tty({"NO_COLOR": "1"})
    s.check("no colour with NO_COLOR", "\x1b[" not in tty and "PASS  math > adds" in tty, repr(tty))

s.done()
