-- luasync: N round trips between two tasks over two unbuffered channels.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local n = bench.size(1000000)

local ping, pong = Channel.new(0), Channel.new(0)

local t0 = bench.now_ms()
spawn(function()
  for _ = 1, n do
    local v = ping:receive()
    pong:send(v + 1)
  end
end)
local sum = 0
for i = 1, n do
  ping:send(i)
  sum = sum + pong:receive()
end
local elapsed = bench.now_ms() - t0
bench.check(sum == n * (n + 1) / 2 + n, "sum of pongs")
bench.report{ elapsed_ms = elapsed }
