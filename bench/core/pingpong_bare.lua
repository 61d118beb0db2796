-- Bare LuaJIT: N round trips between two coroutines over two rendezvous channels.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local bare = require("bare")
local n = bench.size(1000000)

bare.main(function()
  local ping, pong = bare.chan(0), bare.chan(0)
  local t0 = bench.now_ms()
  bare.spawn(function()
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
end)
