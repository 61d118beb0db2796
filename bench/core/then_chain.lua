-- luasync: a chain of N andThen steps on a resolved promise, then await its end.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local n = bench.size(1000000)

local t0 = bench.now_ms()
local p = Promise.resolve(0)
for _ = 1, n do
  p = p:andThen(function(v) return v + 1 end)
end
local v = await(p)
local elapsed = bench.now_ms() - t0
bench.check(v == n, "value at the end of the chain")
bench.report{ elapsed_ms = elapsed }
