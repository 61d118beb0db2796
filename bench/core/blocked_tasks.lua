-- luasync: memory of N tasks all blocked receiving on one channel, measured as
-- resident memory above the process's own baseline just before they start.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local n = bench.size(100000)

local ch = Channel.new(0)
local woken = 0
local function waiter()
  local _, ok = ch:receive()
  if not ok then woken = woken + 1 end
end

collectgarbage("collect")
local base = bench.rss_kb()
local t0 = bench.now_ms()
for _ = 1, n do
  go(waiter)
end
local elapsed = bench.now_ms() - t0
collectgarbage("collect")
local rss = bench.rss_kb()

ch:close()
while woken < n do sleep(0) end
bench.check(woken == n, "every blocked task woke on close")
bench.report{
  elapsed_ms = elapsed,
  rss_kb = rss,
  base_rss_kb = base,
  per_task_bytes = math.floor((rss - base) * 1024 / n),
}
