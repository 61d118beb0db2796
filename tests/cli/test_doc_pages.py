"""docs/reference.md, docs/comparison.md, docs/guide.md and README.md:
- every relative link points to a file that exists, and every #anchor to a heading in it;
- every function or field named in the first column of reference.md's tables exists in the binary;
- the luasync snippets of comparison.md that need no network print what they should."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite  # noqa: E402

s = Suite()
PAGES = ["README.md", "docs/guide.md", "docs/reference.md", "docs/comparison.md"]
# Pages other engineers are writing at the same time; links to them are checked once they exist.
NOT_YET = {"docs/http.md", "docs/llm.md"}


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def without_code(text):
    return re.sub(r"```.*?```", "", text, flags=re.S)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    h = heading.strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def anchors(rel):
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", without_code(read(rel)), re.M)}


# --- links ---------------------------------------------------------------------------
pending_notes = set()
for page in PAGES:
    links = re.findall(r"\]\(([^)\s]+)\)", without_code(read(page)))
    s.check(page + " has links", len(links) > 0)
    bad = []
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target, _, frag = link.partition("#")
        rel = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
        if not os.path.exists(os.path.join(ROOT, rel)):
            if rel in NOT_YET:
                pending_notes.add(rel)
                continue
            bad.append(link + " (no such file)")
        elif frag and frag not in anchors(rel):
            bad.append(link + " (no such heading)")
    s.eq(page + ": every link resolves", bad, [])
for rel in sorted(pending_notes):
    print("note: %s is not written yet; links to it were not checked" % rel)

readme = read("README.md")
docs_section = readme[readme.index("## Documentation"):]
docs_section = docs_section[:docs_section.index("\n## ", 3)]
for rel in ["docs/guide.md", "docs/reference.md", "docs/comparison.md"]:
    s.contains("README's Documentation section links " + rel, docs_section, "(" + rel + ")")

# --- reference.md against the binary ------------------------------------------------
REF = read("docs/reference.md")
first_cells = re.findall(r"^\| (.*?) \|", REF, re.M)
names = set()
for cell in first_cells:
    spans = re.findall(r"`([^`]*)`", cell)
    if spans and spans[0].startswith("assert."):
        # `assert.is_nil(v)`, `is_not_nil`, `is_true`: the later bare names are assert's too
        spans = [c if "." in c.split("(")[0] else "assert." + c for c in spans]
    for code in spans:
        for m in re.finditer(r"(?<![\w.:])([A-Za-z_]\w*)(?:([.:])([A-Za-z_]\w*))?\s*([({]?)", code):
            recv, sep, name, call = m.groups()
            if name:
                names.add((recv, sep, name))
            elif call:
                names.add((None, None, recv))

# How to get an object of each receiver named in the reference (nil: a test-file global).
RECEIVERS = {
    "Promise": "Promise", "p": "Promise.resolve()", "Channel": "Channel", "ch": "Channel.new(1)",
    "Stream": "Stream", "s": "Stream.from({})", "json": "json", "fs": "fs", "process": "process",
    "child": 'process.spawn("true", {})', "stdin": "stdin", "stdout": "stdout", "stderr": "stderr",
    "handle": "setTimeout(function() end, 0.001)", "http": "http", "llm": "llm", "llmBridge": "llmBridge",
    "coroutine": "coroutine", "assert": None,
}
OPTIONAL = {"http", "llm", "llmBridge", "fetch"}   # modules being written; skipped while absent
TEST_GLOBALS = {"describe", "it", "pending", "before_each", "after_each", "setup", "teardown"}
ignore = {"luasync", "script", "table", "then", "function", "end"}   # command lines, module names, `p["then"]`

names = {n for n in names if n[0] not in ignore}
unknown = sorted(r for r, _, _ in names if r and r not in RECEIVERS)
s.eq("reference uses only known receivers", unknown, [])
s.check("reference names many functions", len(names) > 120, "found %d" % len(names))

script, spec = [], []
for recv, sep, name in sorted(names, key=lambda t: (t[0] or "", t[2])):
    if recv is None:
        if name in ignore or name in RECEIVERS:
            continue
        label, expr = name, "_G[%r]" % name
        (spec if name in TEST_GLOBALS else script).append((label, expr, name in OPTIONAL))
        continue
    label = recv + sep + name
    if recv == "assert":
        spec.append((label, "assert[%r]" % name, False))
    else:
        script.append((label, "(%s)[%r]" % (RECEIVERS[recv], name), recv in OPTIONAL))

CHECK = """
local function check(label, get, optional)
  local ok, v = pcall(get)
  if ok and v ~= nil then print("ok " .. label)
  elseif optional then print("skip " .. label)
  else print("missing " .. label .. (ok and "" or (": " .. tostring(v)))) end
end
"""


def lua_checks(items):
    return CHECK + "".join("check(%r, function() return %s end, %s)\n" % (label, expr, "true" if opt else "false")
                           for label, expr, opt in items)


def verdicts(out):
    missing = [l for l in out.splitlines() if l.startswith("missing ")]
    skipped = [l[5:] for l in out.splitlines() if l.startswith("skip ")]
    return missing, skipped


r = s.lua(lua_checks(script))
missing, skipped = verdicts(r.out)
s.eq("reference: globals and module functions exist", (r.rc, missing), (0, []), r)
s.eq("reference: every entry was checked", r.out.count("\n"), len(script), r.out)
if skipped:
    print("note: not in this build yet: " + ", ".join(skipped))

s.write("ref_spec.lua", lua_checks(spec) + 'it("runs", function() end)\n')
r = s.run(["test", "ref_spec.lua"])
missing, _ = verdicts(r.out)
s.eq("reference: test-runner functions exist in test files", missing, [], r)
s.contains("reference: test-runner check ran", r.out, "ok assert.rejects\n", r)

# --- comparison.md snippets ---------------------------------------------------------
CMP = read("docs/comparison.md")
lua_blocks = re.findall(r"\*\*luasync\*\*\n\n```lua\n(.*?)```", CMP, re.S)
s.eq("comparison has four luasync snippets", len(lua_blocks), 4)

channels = next(b for b in lua_blocks if "Channel.new" in b)
r = s.lua(channels)
s.eq("comparison: producer/consumer", (r.rc, r.out, r.err), (0, "sum of squares:\t91\n", ""))

lines = next(b for b in lua_blocks if "stdin:lines" in b)
r = s.lua(lines, input=b"ok\nerror 1\r\nfine\nno error here\nerror 3")
s.eq("comparison: stdin line by line", (r.rc, r.out, r.err), (0, "3\tlines with errors\n", ""))
big = b"".join(b"line %d%s\n" % (i, b" error" if i % 10 == 0 else b"") for i in range(100000))
r = s.lua(lines, input=big)
s.eq("comparison: stdin line by line, 100,000 lines", (r.rc, r.out), (0, "10000\tlines with errors\n"), r.err)

# The HTTP snippets (fetch loop, timeout) against a loopback server.
import http.server  # noqa: E402
import threading  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(4)
        body = b"ok"
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
base = "http://127.0.0.1:%d" % server.server_address[1]
try:
    fetch_loop = next(b for b in lua_blocks if "Promise.map" in b)
    urls = "local urls = { %s }\n" % ", ".join('"%s/%s"' % (base, p) for p in ["a", "missing", "b"] * 4)
    r = s.lua(urls + fetch_loop)
    s.eq("comparison: concurrent fetch loop", (r.rc, r.out, r.err), (0, " ".join(["200 404 200"] * 4) + "\n", ""))

    timeout = next(b for b in lua_blocks if ":timeout(2)" in b)
    start = time.time()
    r = s.lua('local url = "%s/slow"\n' % base + timeout)
    took = time.time() - start
    s.eq("comparison: timeout around a call", (r.rc, r.out, r.err), (0, "timed out\n", ""))
    s.check("comparison: the timeout fired after about 2 s", 1.9 < took < 3.9, "took %.2f s" % took)
finally:
    server.shutdown()

s.done()
