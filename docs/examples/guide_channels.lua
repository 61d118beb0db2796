-- guide_channels.lua: a worker pool with Go-style channels.
local jobs = Channel.new(10)     -- buffered: holds up to 10 values
local results = Channel.new()    -- unbuffered: a send waits for a receiver

for w = 1, 3 do
  go(function()
    for n in jobs:iter() do      -- until jobs is closed and drained
      sleep(0.001 * n)           -- pretend to work
      results:send({ worker = w, n = n, square = n * n })
    end
  end)
end

go(function()
  for n = 1, 6 do jobs:send(n) end
  jobs:close()
end)

local total = 0
for _ = 1, 6 do
  local r = results:receive()
  total = total + r.square
end
print("sum of squares:", total)

-- select waits on several channels; Channel.after bounds the wait.
local quiet = Channel.new()
local i = Channel.select({
  { quiet, "receive" },
  { Channel.after(0.02), "receive" },
})
print(i == 2 and "nothing arrived within 20 ms" or "got a value")
