-- Channel.select: wait on several channels at once (from the design's seed
-- examples, extended with a default case and a timeout).
local ch1 = Channel.new()
local ch2 = Channel.new()

-- Nothing is ready yet: the default case is taken at once.
local idx = Channel.select({ { ch1, "receive" }, { ch2, "receive" }, { nil, "default" } })
print("Nothing ready, took case", idx)

go(function()
  ch1:send("from ch1")
end)

go(function()
  ch2:send("from ch2")
end)

local cases = {
  { ch1, "receive" },
  { ch2, "receive" },
  { nil, "default" },
}

-- Both senders are waiting now: one of the two ready cases is chosen at random.
local first, value = Channel.select(cases)
print("Selected case", first, "with value", value)

-- The other sender is still waiting; the next select takes it.
local second, other = Channel.select(cases)
print("Then case", second, "with value", other)

-- With no default, select waits; Channel.after bounds the wait.
local quiet = Channel.new()
local which = Channel.select({ { quiet, "receive" }, { Channel.after(0.05), "receive" } })
print(which == 2 and "Timed out after 0.05s" or "Got a value")
