-- Bare LuaJIT: N coroutines sleeping 10 ms on a Lua-side timer heap.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local bare = require("bare")
local n = bench.size(100000)

local finished = 0
local function sleeper()
  bare.sleep(0.01)
  finished = finished + 1
end

local t0 = bench.now_ms()
bare.main(function()
  for _ = 1, n do bare.spawn(sleeper) end
end)
local elapsed = bench.now_ms() - t0
bench.check(finished == n, "every task finished")
bench.report{ elapsed_ms = elapsed, rss_kb = bench.rss_kb() }
