-- guide_hello.lua: a first script. `arg` works as in the lua interpreter.
local name = arg[1] or "world"
print("hello, " .. name)

sleep(0.05)               -- suspends this task; the event loop keeps running
print("50 ms later")

local answer = await(Promise.delay(0.01, 42))   -- top-level await
print("the answer is", answer)
