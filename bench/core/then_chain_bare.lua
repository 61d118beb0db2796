-- Bare LuaJIT: the same chain on a 40-line promise with a FIFO microtask queue.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local bare = require("bare")
local n = bench.size(1000000)

bare.main(function()
  local t0 = bench.now_ms()
  local p = bare.resolved(0)
  for _ = 1, n do
    p = p:andThen(function(v) return v + 1 end)
  end
  local v = p:await()
  local elapsed = bench.now_ms() - t0
  bench.check(v == n, "value at the end of the chain")
  bench.report{ elapsed_ms = elapsed }
end)
