-- asyncTry with err.message and err.stack (from the design).
local users = { [123] = { name = "Ada", managerId = 7 }, [7] = { name = "Grace" } }

local function queryDatabase(table_name, id)
  return Promise.delay(0.01, users[id])
end

-- Async function with error handling
local fetchUserData = async(function(userId)
    if userId < 0 then
        error("Invalid user ID")
    end

    -- Simulate async operation
    local userData = await(queryDatabase("users", userId))

    if not userData then
        error("User not found")
    end

    return userData
end)

-- Using asyncTry for error handling
await(asyncTry(
    function()
        local user = await(fetchUserData(-1))
        print("User:", user)
    end,
    function(err)
        print("Caught error:", err.message)
        print("Stack trace:")
        for i, frame in ipairs(err.stack) do
            print(string.format("  %s:%d in %s%s",
                frame.file, frame.line, frame.func,
                frame.async and " (async)" or ""))
        end
    end,
    function()
        print("Cleanup complete")
    end
))

-- Promise chain with error handling
await(fetchUserData(123)
    :andThen(function(user)
        print("User:", user.name)
        return fetchUserData(user.managerId)
    end)
    :andThen(function(manager)
        print("Manager:", manager.name)
        return fetchUserData(99)
    end)
    :catch(function(err)
        print("Chain error:", err)
    end))
