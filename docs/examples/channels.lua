-- One producer, three consumers, one buffered channel (from the design's seed
-- examples). The producer fills the buffer, then waits whenever it is full;
-- the consumers take values in turn until the channel is closed and drained.
local ch = Channel.new(5)

-- Producer task
go(function()
  for i = 1, 10 do
    print("Producing:", i)
    ch:send(i)               -- waits only while the buffer holds 5 values
  end
  ch:close()
end)

-- Consumer tasks
for i = 1, 3 do
  go(function(id)
    while true do
      local value, ok = ch:receive()
      if not ok then
        print("Consumer", id, "done")
        break
      end
      print("Consumer", id, "received:", value)
    end
  end, i)
end
