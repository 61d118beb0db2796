-- Bare LuaJIT: memory of N coroutines all blocked on a Lua-side channel.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local bare = require("bare")
local n = bench.size(100000)

bare.main(function()
  local ch = bare.chan(0)
  local woken = 0
  local function waiter()
    local _, ok = ch:receive()
    if not ok then woken = woken + 1 end
  end

  collectgarbage("collect")
  local base = bench.rss_kb()
  local t0 = bench.now_ms()
  for _ = 1, n do bare.spawn(waiter) end
  local elapsed = bench.now_ms() - t0
  collectgarbage("collect")
  local rss = bench.rss_kb()

  ch:close()
  while woken < n do bare.sleep(0) end
  bench.check(woken == n, "every blocked coroutine woke on close")
  bench.report{
    elapsed_ms = elapsed,
    rss_kb = rss,
    base_rss_kb = base,
    per_task_bytes = math.floor((rss - base) * 1024 / n),
  }
end)
