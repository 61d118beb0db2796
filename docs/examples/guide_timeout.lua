-- guide_timeout.lua: luasync --timeout 0.1 guide_timeout.lua
local function poll()
  while true do sleep(1) end
end
print("polling")
poll()
