-- Bare LuaJIT: the fan-in on coroutines and a Lua-side buffered channel.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local bare = require("bare")
local n = bench.size(1000000)
local producers = 8
local per = math.floor(n / producers)

bare.main(function()
  local ch = bare.chan(1024)
  local running = producers
  local t0 = bench.now_ms()
  for _ = 1, producers do
    bare.spawn(function()
      for i = 1, per do ch:send(i) end
      running = running - 1
      if running == 0 then ch:close() end
    end)
  end
  local sum, count = 0, 0
  while true do
    local v, ok = ch:receive()
    if not ok then break end
    sum = sum + v
    count = count + 1
  end
  local elapsed = bench.now_ms() - t0
  bench.check(count == per * producers, "number of values received")
  bench.check(sum == producers * per * (per + 1) / 2, "sum of values received")
  bench.report{ elapsed_ms = elapsed }
end)
