-- Bare LuaJIT: N coroutine yield/resume round trips, the floor of a suspending await.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local n = bench.size(1000000)

local co = coroutine.create(function(count)
  local sum = 0
  for i = 1, count do
    sum = sum + coroutine.yield(i)
  end
  return sum
end)

local t0 = bench.now_ms()
local resume, status = coroutine.resume, coroutine.status
local ok, v = resume(co, n)
while status(co) ~= "dead" do
  ok, v = resume(co, v)
end
local elapsed = bench.now_ms() - t0
bench.check(ok and v == n * (n + 1) / 2, "sum of awaited values")
bench.report{ elapsed_ms = elapsed }
