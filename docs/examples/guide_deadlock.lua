-- guide_deadlock.lua: waiting for something that can never happen.
local ch = Channel.new()
go(function()
  ch:send("hello")    -- sent once...
end)
print(ch:receive())
print(ch:receive())   -- ...received twice: nothing can ever send again
