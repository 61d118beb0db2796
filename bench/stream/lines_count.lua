-- Counts the lines of a file through a luasync line stream.
-- usage: luasync lines_count.lua PATH [fs|stdin|io]
--   fs    : fs.lines(PATH)
--   stdin : stdin:lines() (run with < PATH)
--   io    : Stream.new over 64 KiB io.read chunks, then :lines() (the stream part alone)
local path, mode = arg[1], arg[2] or "fs"
local s
if mode == "fs" then
  s = fs.lines(path)
elseif mode == "stdin" then
  s = stdin:lines()
else
  local f = assert(io.open(path, "rb"))
  s = Stream.new(function() return f:read(65536) end, function() f:close() end):lines()
end
local t0 = os.clock()
local c0 = require("luasync.core").hrtime()
local n = 0
for _ in s:iter() do n = n + 1 end
local elapsed = require("luasync.core").hrtime() - c0
print("lines=" .. n)
print(string.format("elapsed_ms=%.1f", elapsed * 1000))
print(string.format("cpu_ms=%.1f", (os.clock() - t0) * 1000))
