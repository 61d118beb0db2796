"""docs/guide.md: every example script in it is a file in docs/examples/, shown
verbatim, and running it prints exactly the output the guide shows."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite  # noqa: E402

s = Suite()
with open(os.path.join(ROOT, "docs", "guide.md"), encoding="utf-8") as f:
    GUIDE = f.read()


def example(name):
    with open(os.path.join(ROOT, "docs", "examples", name), encoding="utf-8") as f:
        return f.read()


# Every ```lua block of the guide that names a guide_*.lua file is that file, verbatim.
blocks = re.findall(r"```lua\n(.*?)```", GUIDE, re.S)
named = {}
for b in blocks:
    m = re.match(r"-- (guide_\w+\.lua)", b)
    if m:
        named[m.group(1)] = b
s.eq("guide shows all ten example files", sorted(named), sorted(
    ["guide_hello.lua", "guide_await.lua", "guide_tasks.lua", "guide_channels.lua", "guide_pipe.lua",
     "guide_summarize.lua", "guide_error.lua", "guide_deadlock.lua", "guide_timeout.lua", "guide_spec.lua"]))
for name, text in sorted(named.items()):
    s.eq("guide block is docs/examples/" + name, text, example(name))


def shown(label, text):
    """The guide shows `text` as an output block."""
    s.contains("guide shows the output of " + label, GUIDE, "```text\n" + text + "```\n")


def run(label, args, want_rc, want_out, want_err, stdin=None, show="out"):
    r = s.run(args, input=stdin, cwd=ROOT)
    s.eq(label, (r.rc, r.out, r.err), (want_rc, want_out, want_err), r)
    shown(label, want_out if show == "out" else want_err)
    return r


EX = "docs/examples/"

run("guide_hello.lua Ada", [EX + "guide_hello.lua", "Ada"], 0,
    "hello, Ada\n50 ms later\nthe answer is\t42\n", "")

run("guide_await.lua", [EX + "guide_await.lua"], 0,
    "user7 (#7)\nuser1 (#1), user2 (#2), user3 (#3)\nfalse\tno such user: -1\nthen:\tuser4 (#4)\n", "")

run("guide_tasks.lua", [EX + "guide_tasks.lua"], 0,
    "a\t1\nb\t1\na\t2\nb\t2\na\t3\na done\tb done\nbackground task finished\n"
    "false\ttimeout\ttimed out after 0.05s\nslow task:\trejected\nticker woke up:\tfalse\tcancelled\n", "")

run("guide_channels.lua", [EX + "guide_channels.lua"], 0,
    "sum of squares:\t91\nnothing arrived within 20 ms\n", "")

# The exact input of the guide's printf command: an empty line, a CRLF line, no final newline.
PIPE_IN = b"ada\ngrace\n\nbarbara\nedsger\r\nlinus"
s.contains("guide pipes the tested input", GUIDE,
           "printf 'ada\\ngrace\\n\\nbarbara\\nedsger\\r\\nlinus' | luasync docs/examples/guide_pipe.lua")
run("guide_pipe.lua", [EX + "guide_pipe.lua"], 0,
    "ada has 3 letters\ngrace has 5 letters\nbarbara has 7 letters\nedsger has 6 letters\nlinus has 5 letters\n",
    "", stdin=PIPE_IN)

# Input order survives mapAsync even when later lines finish first, on a larger input.
names = ["n" * (1 + i % 7) + str(i) for i in range(200)]
r = s.run([EX + "guide_pipe.lua"], input=("\n".join(names) + "\n").encode(), cwd=ROOT)
s.eq("guide_pipe.lua keeps the order of 200 lines", (r.rc, r.out),
     (0, "".join("%s has %d letters\n" % (n, len(n)) for n in names)), r.err)

# The LLM example, with the environment variables the guide shows, against the fake provider
# (tests/fixtures/llm_server.py replies "echo: <prompt>" in each wire format).
server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fixtures", "llm_server.py"), "--port", "0"],
                          stdout=subprocess.PIPE)
try:
    port = int(server.stdout.readline())
    base = "127.0.0.1:%d" % port
    providers = {
        "openai": {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://%s/v1" % base},
        "anthropic": {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": "http://" + base},
        "ollama": {"OLLAMA_HOST": base},
    }
    for name, env in providers.items():
        s.contains("guide shows the variables for " + name, GUIDE, "export LUASYNC_LLM_PROVIDER=" + name + "\n")
        for var in env:
            s.contains("guide shows " + var, GUIDE, "export " + var + "=")
        env = dict(env, LUASYNC_LLM_PROVIDER=name, LUASYNC_LLM_MODEL="fake-model")
        r = s.run(["--llm-usage", EX + "guide_summarize.lua"], input=b"the cat sat\n\nhello world\n", env=env,
                  cwd=ROOT)
        s.eq("guide_summarize.lua with " + name, (r.rc, r.out),
             (0, "echo: Summarize in one sentence: the cat sat\necho: Summarize in one sentence: hello world\n"), r)
        s.contains("--llm-usage reports the model (%s)" % name, r.err, "fake-model")
finally:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()

run("guide_error.lua exits 1 with an async traceback", [EX + "guide_error.lua"], 1, "",
    "docs/examples/guide_error.lua:4: not a number: abc\n"
    "stack traceback:\n"
    "\tdocs/examples/guide_error.lua:4: in parse\n"
    "\tdocs/examples/guide_error.lua:10: in <docs/examples/guide_error.lua:8>\n"
    "  awaited at:\n"
    "\tdocs/examples/guide_error.lua:14: in main chunk\n", show="err")

run("guide_deadlock.lua exits 2", [EX + "guide_deadlock.lua"], 2, "hello\ttrue\n",
    "deadlock: 1 task blocked forever\n"
    "  docs/examples/guide_deadlock.lua:7: main task waits on channel receive\n", show="err")

run("guide_timeout.lua with --timeout 0.1 exits 124", ["--timeout", "0.1", EX + "guide_timeout.lua"], 124,
    "polling\n",
    "luasync: timed out after 0.1s; pending: 1 timer\n"
    "  docs/examples/guide_timeout.lua:3: main task waits on sleep\n", show="err")

# The exit-code table and the commands in the prose.
for row in ["| 0 |", "| 1 |", "| 2 |", "| 124 |", "| 128+N |"]:
    s.contains("exit code table has " + row, GUIDE, row)
r = s.run(["-e", 'print(await(Promise.delay(0.1, "done")))'])
s.eq("luasync -e with top-level await", (r.rc, r.out, r.err), (0, "done\n", ""))
r = s.run(["-"], input=b'print("from stdin")')
s.eq("luasync - reads the script from stdin", (r.rc, r.out, r.err), (0, "from stdin\n", ""))
r = s.run(["--no-such-option", "x.lua"])
s.eq("usage error exits 2", r.rc, 2, r)
r = s.run(["missing-script.lua"])
s.eq("missing script exits 2", r.rc, 2, r)
r = s.run(["-e", "os.exit(3)"])
s.eq("os.exit(n) exits n", r.rc, 3, r)
r = s.run(["--unhandled-rejections=warn", "-e", 'Promise.reject("bad") sleep(0.01) print("after")'])
s.eq("--unhandled-rejections=warn keeps running, exits 1", (r.rc, r.out), (1, "after\n"), r)
s.contains("warn mode reports the rejection", r.err, "luasync: unhandled rejection: bad")

# Tests: the text report as shown, and the JUnit report that the CI snippets upload.
run("luasync test docs/examples/guide_spec.lua", ["test", EX + "guide_spec.lua"], 0,
    "docs/examples/guide_spec.lua\n"
    "  PASS  slugify > joins lower-case words with dashes\n"
    "  PASS  fetchTitle > can be awaited in a test\n"
    "  PASS  fetchTitle > rejects page 0\n"
    "  SKIP  fetchTitle > caches titles\n"
    "\n3 passed, 0 failed, 1 skipped\n", "")

report = os.path.join(s.tmp, "report.xml")
r = s.run(["test", "--reporter=junit", "--output", report, EX + "guide_spec.lua"], cwd=ROOT)
s.eq("junit run exits 0 and prints nothing", (r.rc, r.out), (0, ""), r)
with open(report, encoding="utf-8") as f:
    xml = re.sub(r'time="[0-9.]+"', 'time="T"', f.read())
s.eq("junit report", xml,
     '<?xml version="1.0" encoding="UTF-8"?>\n'
     '<testsuites name="luasync" tests="4" failures="0" errors="0" skipped="1" time="T">\n'
     '  <testsuite name="docs/examples/guide_spec.lua" tests="4" failures="0" errors="0" skipped="1" time="T">\n'
     '    <testcase classname="docs.examples.guide_spec" name="slugify &gt; joins lower-case words with dashes"'
     ' time="T"/>\n'
     '    <testcase classname="docs.examples.guide_spec" name="fetchTitle &gt; can be awaited in a test"'
     ' time="T"/>\n'
     '    <testcase classname="docs.examples.guide_spec" name="fetchTitle &gt; rejects page 0" time="T"/>\n'
     '    <testcase classname="docs.examples.guide_spec" name="fetchTitle &gt; caches titles" time="T">\n'
     '      <skipped message="pending"/>\n'
     '    </testcase>\n'
     '  </testsuite>\n'
     '</testsuites>\n')

# A failing test makes the CI step fail: exit status 1, and the report says why.
s.write("broken_spec.lua", 'it("adds", function() assert.equals(3, 1 + 1) end)\n')
r = s.run(["test", "--reporter=junit", "--output", report, "broken_spec.lua"])  # cwd: the temp dir
s.eq("a failing test exits 1", r.rc, 1, r)
with open(report, encoding="utf-8") as f:
    xml = f.read()
s.contains("junit report names the failure", xml,
           '<failure message="broken_spec.lua:1: expected 3, got 2" type="assertion">')

# The CI snippets install, build and run the reporter as the guide says.
for needle in ["bash luasync/scripts/install-deps.sh", "bash luasync/scripts/build.sh",
               "luasync test --reporter=junit --output report.xml"]:
    s.check("GitHub and GitLab snippets both use " + needle, GUIDE.count(needle) >= 2)
s.contains("README commands are in the guide", GUIDE,
           "bash scripts/install-deps.sh && bash scripts/build.sh && ./build/luasync docs/examples/hello.lua\n")

s.done()
