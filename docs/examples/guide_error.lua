-- guide_error.lua: an uncaught error ends the run with exit status 1.
local function parse(text)
  local n = tonumber(text)
  if not n then error("not a number: " .. text) end
  return n
end

local task = spawn(function(text)
  sleep(0.01)
  local n = parse(text)
  return n
end, "abc")

print(await(task))    -- raises the task's error here
