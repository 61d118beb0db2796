-- Awaiting a bridge call in a loop (from the design's test). The design's
-- bridge was a host object; here it is a Lua table whose calls settle later.
local bridge = {}
function bridge:generateAsync(prompt)
  return Promise.delay(0.001, prompt == "test prompt" and "test response" or ("response to " .. prompt))
end

local async_test = async(function()
    local result = await(bridge:generateAsync("test prompt"))
    assert(result == "test response")

    -- Multiple awaits
    local results = {}
    for i = 1, 3 do
        results[i] = await(bridge:generateAsync("prompt " .. i))
    end

    return results
end)

-- async returns a Promise: await it for the values
local results = await(async_test())
assert(#results == 3)
print(table.concat(results, "; "))
