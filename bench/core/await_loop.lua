-- luasync: N sequential awaits of already-resolved promises in one task.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local n = bench.size(1000000)

local run = async(function(count)
  local sum = 0
  for i = 1, count do
    sum = sum + await(Promise.resolve(i))
  end
  return sum
end)

local t0 = bench.now_ms()
local sum = await(run(n))
local elapsed = bench.now_ms() - t0
bench.check(sum == n * (n + 1) / 2, "sum of awaited values")
bench.report{ elapsed_ms = elapsed }
