-- Bare LuaJIT floor: the same count with io.lines (blocking stdio, no event loop).
-- usage: luajit bench/io/wc_bare.lua PATH [file|stdin] [words|lines]
local path, source, what = arg[1], arg[2] or "file", arg[3] or "words"
local gsub, select = string.gsub, select
local ffi = require("ffi")
ffi.cdef [[
  struct luasync_ts { long sec; long nsec; };
  int clock_gettime(int clk, struct luasync_ts* ts);
]]
local ts = ffi.new("struct luasync_ts")
local function clock()  -- CLOCK_MONOTONIC, in seconds (wall time, as luasync's hrtime)
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.sec) + tonumber(ts.nsec) * 1e-9
end

local t0 = clock()
local it = source == "stdin" and io.stdin:lines() or io.lines(path)
local lines, words = 0, 0
if what == "words" then
  for line in it do
    lines = lines + 1
    words = words + select(2, gsub(line, "%S+", ""))
  end
else
  for _ in it do lines = lines + 1 end
end
local elapsed = clock() - t0
print("lines=" .. lines)
print("words=" .. words)
print(string.format("elapsed_ms=%.1f", elapsed * 1000))
