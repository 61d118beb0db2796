"""The build-time embedder (tools/embed_lua.cpp): table constructors keep their room for fields set at run
time, and nothing else about them changes. The embedded bytecode of a fixture is pulled out of the
generated C++ and run by luasync."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import Suite, binary  # noqa: E402

s = Suite()
EMBED = os.path.join(os.path.dirname(binary()), "luasync_embed")

FIXTURE = """\
local function mixed(x, y) return { a = false, b = x, c = y } end
local function cnil(x) local r = { code = nil, sig = x } return r end
local function cnil_later(x, flag)
  local r = { code = nil, sig = x }
  if flag then r.code = 1 end
  return r
end
local function bracket_nil(x, flag)
  local r = { ["code2"] = nil, sig = x }
  if flag then r.code2 = 2 end
  return r
end
local function keys(t)
  local k = {}
  for key, v in pairs(t) do k[#k + 1] = key .. "=" .. tostring(v) end
  table.sort(k)
  return table.concat(k, ",")
end
print(keys(mixed(1, nil)))
print(keys(mixed(1, 2)))
print(keys(cnil("S")))
print(keys(cnil_later("S", false)))
print(keys(cnil_later("S", true)))
print(keys(bracket_nil("S", false)))
print(keys(bracket_nil("S", true)))
"""
EXPECTED = "a=false,b=1\na=false,b=1,c=2\nsig=S\nsig=S\ncode=1,sig=S\nsig=S\ncode2=2,sig=S\n"

try:
    os.makedirs(os.path.join(s.tmp, "lua"), exist_ok=True)
    s.write("lua/fixture.lua", FIXTURE)
    out_cpp = os.path.join(s.tmp, "embedded.cpp")
    env = dict(os.environ, LUASYNC_EMBED_VERBOSE="1")
    p = subprocess.run([EMBED, out_cpp, "lua/fixture.lua"], cwd=s.tmp, env=env, capture_output=True, text=True)
    s.eq("embedder exit code", p.returncode, 0, p.stderr)
    # b and c of mixed, sig of cnil, cnil_later and bracket_nil; not code or code2 (literal nils, and in cnil
    # no TSETS at all)
    s.eq("keys kept", p.stderr, "luasync_embed: lua/fixture.lua: 5 template keys kept\n")
    text = open(out_cpp).read()
    body = text[text.index("kChunk2[] = {") + len("kChunk2[] = {"):]
    body = body[:body.index("};")]
    bc = bytes(int(x) for x in re.findall(r"\d+", body))
    s.eq("bytecode header", bc[:3], b"\x1bLJ")
    s.write("fixture.bc", bc, mode="wb")
    r = s.run(["fixture.bc"])
    s.eq("the embedded chunk's tables", (r.rc, r.out, r.err), (0, EXPECTED, ""), r)
    r = s.run(["lua/fixture.lua"])
    s.eq("the same from source", (r.rc, r.out, r.err), (0, EXPECTED, ""), r)
finally:
    s.done()
