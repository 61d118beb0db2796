-- Bare LuaJIT, the fastest ping-pong design we know of: N round trips over two unbuffered channels whose
-- operations hand over directly (a send to a waiting receiver resumes it at once; a parked coroutine
-- yields back to whoever resumed it), with no scheduler, ready queue, select, close, errors or
-- cancellation. Not a runtime: an upper bound for the ping-pong figure (bench/README.md).
--   luajit bench/core/pingpong_handoff_bare.lua [N]
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local bench = require("benchlib")
local n = bench.size(1000000)

local resume, yield, running = coroutine.resume, coroutine.yield, coroutine.running

local function run(co, v)
  local ok, err = resume(co, v)
  if not ok then error(err, 0) end
end

local Chan = {}
Chan.__index = Chan
local function chan() return setmetatable({ receiver = false, sender = false, value = false }, Chan) end

function Chan:send(v)
  local r = self.receiver
  if r then  -- hand the value over and run the receiver until it parks
    self.receiver = false
    run(r, v)
    return
  end
  self.sender, self.value = running(), v
  yield()  -- until a receiver takes the value
end

function Chan:receive()
  local s = self.sender
  if s then  -- take the value; the sender's send returns and it runs until it parks
    self.sender = false
    local v = self.value
    run(s)
    return v
  end
  self.receiver = running()
  return yield()
end

local ping, pong = chan(), chan()
local main = coroutine.create(function()
  run(coroutine.create(function()
    for _ = 1, n do pong:send(ping:receive() + 1) end
  end))
  local t0 = bench.now_ms()
  local sum = 0
  for i = 1, n do
    ping:send(i)
    sum = sum + pong:receive()
  end
  local elapsed = bench.now_ms() - t0
  bench.check(sum == n * (n + 1) / 2 + n, "sum of pongs")
  bench.report{ elapsed_ms = elapsed }
end)
run(main)
