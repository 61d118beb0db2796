-- A first luasync script: tasks, sleep, promises and await at top level.
local function worker(name, delay)
  sleep(delay)
  return name .. " finished after " .. delay .. "s"
end

local results = await(Promise.all({
  spawn(worker, "fast", 0.01),
  spawn(worker, "slow", 0.02),
}))
for _, line in ipairs(results) do print(line) end

local double = async(function(x)
  await(Promise.delay(0.001))
  return x * 2
end)
print("double(21) =", await(double(21)))
