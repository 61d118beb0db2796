"""docs/json.md: every ```lua block followed by a ```text block prints exactly that text."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite  # noqa: E402

s = Suite()
with open(os.path.join(ROOT, "docs", "json.md"), encoding="utf-8") as f:
    doc = f.read()

pairs = re.findall(r"```lua\n(.*?)```\n```text\n(.*?)```", doc, re.S)
s.check("docs/json.md has examples", len(pairs) >= 6, "found %d" % len(pairs))
for i, (code, want) in enumerate(pairs, 1):
    r = s.lua(code)
    s.eq("docs/json.md example %d" % i, (r.rc, r.out, r.err), (0, want, ""), code)
s.done()
