-- Plain Lua coroutines (from the design): prints exactly what the lua interpreter prints.
-- Create coroutine
local co = coroutine.create(function(name)
    print("Coroutine started with:", name)
    
    local value = coroutine.yield("first yield")
    print("Resumed with:", value)
    
    coroutine.yield("second yield")
    
    return "done", name
end)

-- Resume coroutine
local ok, result = coroutine.resume(co, "test")
print("First resume:", ok, result)

ok, result = coroutine.resume(co, "hello")
print("Second resume:", ok, result)

ok, result1, result2 = coroutine.resume(co)
print("Final resume:", ok, result1, result2)

print("Status:", coroutine.status(co))
