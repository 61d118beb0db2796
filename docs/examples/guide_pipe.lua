-- guide_pipe.lua: printf 'ada\ngrace\n' | luasync guide_pipe.lua
-- Each line goes through a slow call, 16 at a time; output keeps input order.
local function describe(name)
  sleep(0.01 * (#name % 3))          -- stands in for a network call
  return ("%s has %d letters\n"):format(name, #name)
end

await(stdin:lines()
  :filter(function(line) return line ~= "" end)
  :mapAsync(describe, { concurrency = 16 })
  :pipeTo(stdout))
