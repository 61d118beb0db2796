-- luasync: N concurrent tasks each sleeping 10 ms, joined with Promise.all.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local n = bench.size(100000)

local finished = 0
local function sleeper()
  sleep(0.01)
  finished = finished + 1
end

local t0 = bench.now_ms()
local tasks = {}
for i = 1, n do
  tasks[i] = spawn(sleeper)
end
await(Promise.all(tasks))
local elapsed = bench.now_ms() - t0
bench.check(finished == n, "every task finished")
bench.report{ elapsed_ms = elapsed, rss_kb = bench.rss_kb() }
