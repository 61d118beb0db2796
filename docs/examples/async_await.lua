-- async/await with a simulated database (from the design).
local function queryDatabase(query)
  return Promise.new(function(resolve, reject)
    setTimeout(function()
      if query:find("INVALID", 1, true) then
        reject("syntax error in query: " .. query)
      else
        resolve("rows for [" .. query .. "]")
      end
    end, 0.01)
  end)
end

-- Define async function
local processData = async(function(id)
    print("Processing ID:", id)

    -- Await database query
    local userData = await(queryDatabase("SELECT * FROM users WHERE id = " .. id))
    print("User data:", userData)

    -- Multiple awaits
    local orders = await(queryDatabase("SELECT * FROM orders WHERE user_id = " .. id))
    print("Orders:", orders)

    -- Process results
    return {
        user = userData,
        orders = orders
    }
end)

-- Call async function (returns promise)
await(processData(123):andThen(function(result)
    print("Processing complete")
end):catch(function(err)
    print("Error:", err)
end))

-- Async function with error handling
local safeProcess = async(function(id)
    local ok, result = pcall(function()
        return await(queryDatabase("INVALID QUERY"))
    end)

    if not ok then
        print("Query failed:", result)
        return nil
    end

    return result
end)

print("safeProcess returned:", await(safeProcess(1)))
