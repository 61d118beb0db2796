"""Every example in docs/examples runs and prints what the docs say."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite  # noqa: E402

s = Suite()
EX = os.path.join(ROOT, "docs", "examples")


def run_example(name, **kw):
    # Run by relative name, as a user in the folder would: error messages name "name:line".
    return s.run([name], cwd=EX, **kw)


EXPECTED = {
    "hello.lua": "fast finished after 0.01s\nslow finished after 0.02s\ndouble(21) =\t42\n",
    "coroutine_manager.lua": "Task1 started\nTask2 count:\t1\nMain continues...\nTask2 count:\t2\n"
                             "Task1 middle\nTask2 count:\t3\nTask1 done\nMain done\n",
    "promises.lua": "Received:\tdata from https://api.example.com\nAll results:\t3\n"
                    "Error:\tcannot fetch https://bad.example.com\n"
                    "Second data:\tdata from https://api.example.com/2\n",
    "async_await.lua": "Processing ID:\t123\nUser data:\trows for [SELECT * FROM users WHERE id = 123]\n"
                       "Orders:\trows for [SELECT * FROM orders WHERE user_id = 123]\nProcessing complete\n"
                       "Query failed:\tsyntax error in query: INVALID QUERY\nsafeProcess returned:\tnil\n",
    "error_handling.lua": "Caught error:\terror_handling.lua:11: Invalid user ID\nStack trace:\n"
                          "  error_handling.lua:11 in <error_handling.lua:9>\n"
                          "  error_handling.lua:27 in <error_handling.lua:26> (async)\n"
                          "Cleanup complete\nUser:\tAda\nManager:\tGrace\n"
                          "Chain error:\terror_handling.lua:18: User not found\n",
    "bridge_test.lua": "response to prompt 1; response to prompt 2; response to prompt 3\n",
}

for name, want in EXPECTED.items():
    r = run_example(name)
    s.eq("example " + name, (r.rc, r.out, r.err), (0, want, ""), r)

# The design's plain-coroutine example prints exactly what the lua interpreter prints.
r = run_example("coroutines.lua")
lua = shutil.which("luajit") or shutil.which("lua5.1") or shutil.which("lua")
if lua:
    p = subprocess.run([lua, os.path.join(EX, "coroutines.lua")], capture_output=True, cwd=EX)
    s.eq("coroutines.lua matches " + os.path.basename(lua), r.out, p.stdout.decode())
s.eq("coroutines.lua output", r.out,
     "Coroutine started with:\ttest\nFirst resume:\ttrue\tfirst yield\nResumed with:\thello\n"
     "Second resume:\ttrue\tsecond yield\nFinal resume:\ttrue\tdone\ttest\nStatus:\tdead\n", r)

s.done()
