-- Counts lines and words (runs of non-space bytes, with the gsub idiom) of a
-- text file through a luasync line stream. Prints key=value lines; elapsed_ms
-- covers the count only.
--
-- usage: luasync bench/io/wc.lua PATH [fs|stdin] [words|lines]
--   fs    : fs.lines(PATH)
--   stdin : stdin:lines() (run with < PATH or from a pipe; PATH is then ignored)
local path, source, what = arg[1], arg[2] or "fs", arg[3] or "words"
local hrtime = require("luasync.core").hrtime
local gsub, select = string.gsub, select

local t0 = hrtime()
local s = source == "stdin" and stdin:lines() or fs.lines(path)
local lines, words = 0, 0
if what == "words" then
  for line in s:iter() do
    lines = lines + 1
    words = words + select(2, gsub(line, "%S+", ""))
  end
else
  for _ in s:iter() do lines = lines + 1 end
end
local elapsed = hrtime() - t0
print("lines=" .. lines)
print("words=" .. words)
print(string.format("elapsed_ms=%.1f", elapsed * 1000))
