-- guide_await.lua: async functions, await, and errors as Lua errors.
local function fetchUser(id)               -- any function returning a Promise
  return Promise.delay(0.01, { id = id, name = "user" .. id })
end

local loadProfile = async(function(id)     -- async(fn): calling it starts a task
  local user = await(fetchUser(id))        -- suspends this task only
  if id < 0 then error("no such user: " .. id, 0) end
  return user.name .. " (#" .. user.id .. ")"
end)

print(await(loadProfile(7)))

-- Start several at once, then wait for all of them: about 10 ms, not 30.
local names = await(Promise.all({ loadProfile(1), loadProfile(2), loadProfile(3) }))
print(table.concat(names, ", "))

-- A rejection is raised by await, so pcall catches it.
local ok, err = pcall(await, loadProfile(-1))
print(ok, err)

-- Or chain, JavaScript style (`then` is a Lua keyword: use andThen).
loadProfile(4)
  :andThen(function(name) print("then:", name) end)
  :catch(function(e) print("failed:", e) end)
